"""Home: headline figures for the latest complete financial year, what changed since the
previous release, and the printable report."""

from __future__ import annotations

import polars as pl
import streamlit as st

from portal.web import access, downloads, headlines, ui

ctx = ui.page("home", title="Children's services research and statistics portal")

HEADLINES = (
    "contacts",
    "eh_referrals",
    "cin_referrals",
    "cp_plans_at_31_march",
    "sf_families_worked_with",
    "sf_significant_sustained_progress",
)
FY = "financial_year"

figures = ui.tile_figures(ctx, HEADLINES)
tiles = {t.measure: t.figure for t in figures}
tables = {m: ui.guarded(ctx.table, m, (FY,)) for m in tiles}
year = ui.common_period(figures) or "no complete year yet"

st.write(
    f"Welcome, {ctx.user.name}. These are the headline figures for the latest complete "
    f"financial year of each measure (**{year}** for most), with the change on the year "
    "before. Every figure is protected by disclosure control: a count may differ slightly "
    "from the true count, and small counts are shown as **c**."
)
ui.report_button(ctx, "home")

st.header(f"Headline figures, {year} (April to March)")
ui.headline_tiles(ctx, HEADLINES)

objectors = ctx.table_or_none("objectors_excluded")
st.caption(
    "People on the objections register are left out of every figure"
    + (
        f" ({objectors.data['count'][0]} people in this release, a protected count)."
        if objectors
        else "."
    )
)

st.header("What changed since the last release")
before = ctx.previous_release()
if before is None:
    st.info(
        "This is the first published release, so there is nothing to compare it with yet. "
        "The next release will be compared with this one here."
    )
else:
    st.write(
        f"This release replaces release `{before.release_id}` (data as at "
        f"{before.data_as_at:%d %B %Y}). Figures for earlier periods can change when late "
        "records arrive or records are corrected; disclosure control then gives the changed "
        "figure a new value."
    )
    # A measure the previous release did not have compares with an empty series.
    earlier = {
        m: t.data if (t := ctx.table_or_none(m, (FY,), release_id=before.release_id)) else None
        for m in tables
    }
    changes = pl.DataFrame(
        [
            headlines.release_change_row(
                table.title,
                table.data,
                earlier[m],
                FY,
                tiles[m].period,
                is_rate=table.is_rate,
            )
            for m, table in tables.items()
        ]
    )
    st.dataframe(changes, hide_index=True, key="changes_table")
    st.download_button(
        "Download this table (CSV)",
        downloads.csv_bytes(changes),
        file_name="changes-since-last-release.csv",
        mime="text/csv",
        key="changes_csv",
        on_click="ignore",
        icon=":material/download:",
    )

st.header("Where to go next")
for spec in access.visible_pages(ctx.user):
    if spec.key != "home":
        st.page_link(spec.path, label=f"{spec.title}: {spec.summary}", icon=spec.icon)
