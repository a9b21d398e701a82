"""Blocks every page draws with: headline titles, a chart with its table, description,
CSV and permalink, table downloads, the reader's table of a protected table, texts shipped
with the portal. Charts arrive as plotly specs from `portal.web.charts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from portal.web import charts, data, downloads, headlines, plot


def headline(title: str, subtitle: str, *, level: int = 2, anchor: str | None = None) -> None:
    """A headline title (the finding) and a statistical subtitle (what, where, when).
    Level 2 under the page title; 3 inside a section (headings must not skip a level)."""
    (st.header if level == 2 else st.subheader)(title, anchor=anchor or False)
    st.caption(subtitle)


def anchor(key: str) -> str:
    """The anchor of a chart's headline (a permalink scrolls to it)."""
    return key.replace("_", "-")


def share_link(link: str, *, key: str, what: str = "chart") -> None:
    """The permalink of a view, to copy (the code block has a copy button)."""
    with st.popover(f"Link to this {what}", icon=":material/link:", key=f"{key}_link"):
        st.caption(
            f"This link opens this {what} as it is now, with this release's figures, for "
            "anyone signed in to the portal (even after a newer release)."
        )
        st.code(link, language=None, wrap_lines=True)


def chart(
    fig: go.Figure | charts.Spec,
    shown: pl.DataFrame,
    *,
    key: str,
    title: str,
    subtitle: str,
    alt: str,
    file_name: str,
    footnotes: Sequence[str] = (),
    drawn: bool = True,
    level: int = 2,
    notes: Sequence[str] = (),
    link: str | None = None,
    table_when_open: bool = False,
) -> None:
    """A chart with its headline, alt text, table view, a CSV of exactly that table and,
    for views kept in the address, its permalink. `notes` say why the chart differs from
    what was asked (a coarser grain, fewer series). `drawn=False` (every value suppressed)
    shows a notice instead of an empty chart. `table_when_open` draws the table view only
    while it is open (pages whose filters redraw the chart)."""
    headline(title, subtitle, level=level, anchor=anchor(key) if link else None)
    for note in notes:
        st.info(note, icon=":material/info:")
    if drawn:
        # Updated in place on a filter change (portal/web/plot.py), not drawn afresh.
        plot.chart(fig, key=f"{key}_chart", alt=alt)
    else:
        st.info(
            "Every figure in this chart is suppressed (shown as c in the table): there are "
            "too few to publish at this level of detail. Try a longer period or fewer "
            "breakdowns.",
            icon=":material/visibility_off:",
        )
    label = "Show the table and a description of the chart"
    # On a page with filters the table is drawn only once opened: a closed expander's table
    # is still a live data grid in the page, drawn again on every filter change.
    more = (
        st.expander(label, key=f"{key}_more", on_change="rerun")
        if table_when_open
        else st.expander(label)
    )
    if more.open is not False:
        with more:
            st.markdown(f"**Description.** {alt}")
            st.dataframe(shown, hide_index=True, key=f"{key}_table")
            if footnotes:
                notes_block(footnotes)
    with st.container(horizontal=True):
        st.download_button(
            "Download this table (CSV)",
            lambda: downloads.csv_bytes(shown),
            file_name=f"{file_name}.csv",
            mime="text/csv",
            key=f"{key}_csv",
            on_click="ignore",
            icon=":material/download:",
        )
        if link:
            share_link(link, key=key)


def notes_block(footnotes: Sequence[str]) -> None:
    st.markdown("**Notes**\n\n" + "\n".join(f"{i}. {n}" for i, n in enumerate(footnotes, 1)))


notes = notes_block


def table_downloads(
    shown: pl.DataFrame,
    table: data.ProtectedTable,
    *,
    key: str,
    file_name: str,
    subtitle: str,
    numeric: Sequence[str] | None = None,
) -> None:
    """CSV, spreadsheet (XLSX with title and notes) and JSON of the table as shown."""
    source = (
        f"Release {table.release_id}, data as at {table.data_as_at}; "
        f"disclosure control policy {table.policy_id}."
    )
    if numeric is None:
        numeric = [c for c in shown.columns if c not in _title_columns(table)]
    cols = st.columns(3)
    cols[0].download_button(
        "CSV",
        lambda: downloads.csv_bytes(shown),
        file_name=f"{file_name}.csv",
        mime="text/csv",
        key=f"{key}_csv",
        on_click="ignore",
        icon=":material/download:",
        width="stretch",
    )
    cols[1].download_button(
        "Spreadsheet (XLSX, with title and notes)",
        lambda: downloads.xlsx_bytes(
            shown,
            title=table.title,
            subtitle=subtitle,
            source=source,
            footnotes=table.footnotes,
            numeric_columns=numeric,
        ),
        file_name=f"{file_name}.xlsx",
        mime=downloads.XLSX_MIME,
        key=f"{key}_xlsx",
        on_click="ignore",
        icon=":material/download:",
        width="stretch",
    )
    cols[2].download_button(
        "JSON",
        lambda: downloads.json_bytes(
            shown,
            title=table.title,
            measure=table.measure,
            release_id=table.release_id,
            data_as_at=table.data_as_at,
            policy_id=table.policy_id,
            footnotes=table.footnotes,
        ),
        file_name=f"{file_name}.json",
        mime="application/json",
        key=f"{key}_json",
        on_click="ignore",
        icon=":material/download:",
        width="stretch",
    )


def _title_columns(table: data.ProtectedTable) -> set[str]:
    return {data.dimension_title(d) for d in table.by}


def titles(dims: Sequence[str]) -> dict[str, str]:
    return {d: data.dimension_title(d) for d in dims}


def value_title(table: data.ProtectedTable) -> str:
    if not table.is_rate:
        return f"Number of {table.unit}"
    return "Percentage" if table.rate_per == 100 else f"Rate per {table.rate_per:,}"


def shown(
    table: data.ProtectedTable,
    dims: Sequence[str] | None = None,
    frame: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The reader's table (labels, protected counts, symbols) of a protected table, or of
    the rows of it in `frame`."""
    dims = list(table.by if dims is None else dims)
    rate_title = "Percentage" if table.rate_per == 100 else f"Rate per {table.rate_per or 0:,}"
    return headlines.shown_table(
        table.data if frame is None else frame,
        dims,
        titles(dims),
        is_rate=table.is_rate,
        rate_title=rate_title,
        count_title=f"Number of {table.unit}",
    )


CONTENT_DIR = Path(__file__).resolve().parent / "content"
DISCLOSURE_DOC = Path(__file__).resolve().parents[2] / "docs" / "disclosure-control.md"
# The page icon, shipped with the portal: a browser asks this server for it, never another.
ICON = str(CONTENT_DIR / "icon.svg")


def content(name: str, **values: str) -> str:
    """A markdown text shipped with the portal (portal/web/content/<name>.md)."""
    text = (CONTENT_DIR / f"{name}.md").read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def disclosure_method() -> str | None:
    """The reader's part of docs/disclosure-control.md (up to the implementation notes),
    or None when the docs are not shipped."""
    try:
        text = DISCLOSURE_DOC.read_text(encoding="utf-8")
    except OSError:
        return None
    body = text.split("\n", 1)[1] if text.startswith("# ") else text
    return body.split("\n## Secrets", 1)[0].replace("\n## ", "\n### ")


def frame_bar_chart(
    frame: pl.DataFrame,
    x: str,
    y: str,
    *,
    key: str,
    title: str,
    subtitle: str,
    what: str,
    series: str | None = None,
    shown: pl.DataFrame | None = None,
    file_name: str,
) -> None:
    """A bar chart of an operational table (admin page), with its table and CSV. `shown` is
    the table as published when it differs from the plotted numbers (masked small counts)."""
    chart(
        charts.bar_figure(frame, x, y, series=series, x_title=x, y_title=y, horizontal=True),
        frame if shown is None else shown,
        key=key,
        title=title,
        subtitle=subtitle,
        alt=headlines.describe_chart(
            "Bar chart", frame, x, y, what=what, x_title=x, series_dim=series
        ),
        file_name=file_name,
        level=3,
    )


def frame_table(frame: pl.DataFrame, *, key: str, file_name: str) -> None:
    """A plain table with a CSV of exactly what it shows."""
    st.dataframe(frame, hide_index=True, key=f"{key}_table")
    st.download_button(
        "Download this table (CSV)",
        lambda: downloads.csv_bytes(frame),
        file_name=f"{file_name}.csv",
        mime="text/csv",
        key=f"{key}_csv",
        on_click="ignore",
        icon=":material/download:",
    )
