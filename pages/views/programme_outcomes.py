"""Programme outcomes (leadership): the Supporting Families scorecard by quarter and
locality: families worked with, needs at entry, significant and sustained progress; and the
printable report. The view is kept in the address (a bookmark or link reopens it)."""

from __future__ import annotations

import streamlit as st

from portal.web import headlines, permalink, ui

ctx = ui.page("programme_outcomes")
url = ctx.url

st.write(
    "The Supporting Families scorecard. A family counts once per Early Help episode. "
    "Significant and sustained progress means every need identified at the start showed "
    "a positive outcome that held for at least six months after the episode closed; it is "
    "shown as a percentage of the families whose progress can be judged (episodes closed "
    "at least six months before the data date)."
)
ui.report_button(ctx, "programme")
year = ui.headline_tiles(
    ctx,
    [
        "sf_families_worked_with",
        "whole_family_assessments",
        "sf_significant_sustained_progress",
    ],
)
st.caption(
    f"Latest complete financial year: {year}; change compared with the year before (never "
    "across a suppressed or incomplete year). Progress can be judged only six months after "
    "a family's episode closes, so its latest complete year can be earlier."
)


def body() -> None:
    """The controls and what they show: a change reruns only this (`ctx.body`)."""
    ctx.start("po_period", ui.pick(permalink.one(url, "period"), ["quarter", "financial_year"]))
    ctx.start("po_by_locality", permalink.listed(url, "by") == ["locality"])
    left, right = st.columns(2)
    period = left.segmented_control(
        "Time period",
        ["quarter", "financial_year"],
        format_func=lambda p: headlines.PERIOD_TITLES[p],
        required=True,
        key="po_period",
    )
    by_locality = right.toggle("One line per locality", key="po_by_locality")
    split = "locality" if by_locality else None
    period = period or "quarter"
    trends = st.container()

    years = ctx.complete_levels("sf_needs_at_entry", "financial_year")
    chosen = locality = None
    if years:
        localities = [ui.ALL, *ctx.levels("sf_needs_at_entry", "locality")]
        asked_locality = permalink.pairs(url, "where").get("locality", [None])[0]
        ctx.start("po_year", ui.pick(permalink.one(url, "year"), years, years[-1]))
        ctx.start("po_locality", ui.pick(asked_locality, localities))
        left, right = st.columns(2)
        chosen = left.selectbox("Financial year", years[::-1], key="po_year")
        locality = right.selectbox(
            "Locality",
            localities,
            format_func=lambda v: "All localities" if v == ui.ALL else v,
            key="po_locality",
        )

    view = permalink.view(
        period=period,
        by=[split] if split else [],
        where={"locality": locality} if locality else {},
        year=chosen,
    )
    ctx.keep_view(view)
    with trends:
        ui.trend_chart(
            ctx, "sf_families_worked_with", period, series=split, key="po_families", view=view
        )
        ui.trend_chart(
            ctx,
            "sf_significant_sustained_progress",
            period,
            series=split,
            key="po_progress",
            view=view,
        )
    if chosen:
        where = {"financial_year": chosen, **({"locality": locality} if locality else {})}
        ui.bar_chart(
            ctx, "sf_needs_at_entry", "need", where=where, when=chosen, key="po_needs", view=view
        )
        # Progress is judged six months after an episode closes: its own latest complete year.
        progress_years = ctx.complete_levels("sf_significant_sustained_progress", "financial_year")
        progress_year = chosen if chosen in progress_years else (progress_years or [chosen])[-1]
        ui.bar_chart(
            ctx,
            "sf_significant_sustained_progress",
            "locality",
            where={"financial_year": progress_year},
            when=progress_year,
            key="po_progress_locality",
            view=view,
        )


ctx.body(body)
