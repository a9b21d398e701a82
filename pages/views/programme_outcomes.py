"""Programme outcomes (leadership): the Supporting Families scorecard by quarter and
locality: families worked with, needs at entry, significant and sustained progress."""

from __future__ import annotations

import streamlit as st

from portal.web import headlines, ui

ctx = ui.page("programme_outcomes")

st.write(
    "The Supporting Families scorecard. A family counts once per Early Help episode. "
    "Significant and sustained progress means every need identified at the start showed "
    "a positive outcome that held for at least six months after the episode closed; it is "
    "shown as a percentage of the families whose progress can be judged (episodes closed "
    "at least six months before the data date)."
)
year = ui.headline_tiles(
    ctx,
    [
        "sf_families_worked_with",
        "whole_family_assessments",
        "sf_significant_sustained_progress",
    ],
)
st.caption(f"Latest complete financial year: {year}; change compared with the year before.")

left, right = st.columns(2)
period = left.segmented_control(
    "Time period",
    ["quarter", "financial_year"],
    default="quarter",
    format_func=lambda p: headlines.PERIOD_TITLES[p],
    required=True,
    key="po_period",
)
by_locality = right.toggle("One line per locality", key="po_by_locality")
split = "locality" if by_locality else None
period = period or "quarter"

ui.trend_chart(ctx, "sf_families_worked_with", period, series=split, key="po_families")
ui.trend_chart(ctx, "sf_significant_sustained_progress", period, series=split, key="po_progress")

years = headlines.complete_periods(
    "financial_year",
    ctx.levels("sf_needs_at_entry", "financial_year"),
    ctx.release.data_as_at if ctx.release else None,
)
if years:
    left, right = st.columns(2)
    chosen = left.selectbox("Financial year", years[::-1], key="po_year")
    locality = right.selectbox(
        "Locality",
        [None, *ctx.levels("sf_needs_at_entry", "locality")],
        format_func=lambda v: "All localities" if v is None else v,
        key="po_locality",
    )
    where = {"financial_year": chosen, **({"locality": locality} if locality else {})}
    ui.bar_chart(ctx, "sf_needs_at_entry", "need", where=where, when=chosen, key="po_needs")
    ui.bar_chart(
        ctx,
        "sf_significant_sustained_progress",
        "locality",
        where={"financial_year": chosen},
        when=chosen,
        key="po_progress_locality",
    )
