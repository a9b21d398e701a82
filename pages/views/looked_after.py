"""Looked-after children and care leavers (planners, leadership): DfE's national measures
from the SSDA903 return, with rates and trends."""

from __future__ import annotations

import streamlit as st

from portal.web import headlines, ui

ctx = ui.page("looked_after")
meta = ctx.measures()

MEASURES = [
    m
    for m in (
        "lac_at_31_march",
        "lac_started",
        "lac_ceased",
        "lac_3_placements",
        "adoptions",
        "lac_missing_incidents",
        "lac_went_missing",
        "care_leavers",
        "care_leavers_eet",
        "care_leavers_suitable_accommodation",
    )
    if m in meta
]
SPLITS = ("locality", "age_band", "sex", "ethnicity", "cin_category", "outcome")

st.write(
    "Children looked after by the council and young people who have left its care, "
    "following DfE's definitions for the SSDA903 return. Percentages and rates per 10,000 "
    "children are calculated from protected counts."
)
if not MEASURES:
    st.info("This release has no looked-after children figures (no SSDA903 return was given).")
    st.stop()
year = ui.headline_tiles(
    ctx,
    [
        m
        for m in (
            "lac_at_31_march",
            "lac_started",
            "lac_ceased",
            # No "3+ placements" tile: 4 of 62 looked after at the 50k demo, under 10, reads c.
            "care_leavers_eet",
            "care_leavers_suitable_accommodation",
        )
        if m in meta
    ],
)
st.caption(f"Latest complete financial year: {year}; change compared with the year before.")

st.divider()


def body() -> None:
    """The controls and what they show: a change reruns only this (`ctx.body`)."""
    measure = st.selectbox(
        "What to show", MEASURES, format_func=lambda m: meta[m].title, key="lac_measure"
    )
    allowed = meta[measure].breakdowns
    left, middle, right = st.columns(3)
    period = left.segmented_control(
        "Time period",
        [p for p in ("quarter", "financial_year") if p in allowed],
        default="financial_year",
        format_func=lambda p: headlines.PERIOD_TITLES[p],
        required=True,
        key=f"lac_period_{measure}",
    )
    split = middle.selectbox(
        "Break down by",
        [None, *(d for d in SPLITS if d in allowed)],
        format_func=lambda d: "No breakdown" if d is None else ui.titles([d])[d],
        key=f"lac_split_{measure}",
    )
    locality = right.selectbox(
        "Locality",
        [None, *ctx.levels(measure, "locality")],
        format_func=lambda v: "All localities" if v is None else v,
        disabled=split == "locality",
        key=f"lac_locality_{measure}",
    )
    where = {"locality": locality} if locality and split != "locality" else {}

    ui.trend_chart(
        ctx, measure, period or "financial_year", series=split, where=where, key="lac_trend"
    )

    years = headlines.complete_periods(
        "financial_year",
        ctx.levels(measure, "financial_year"),
        ctx.release.data_as_at if ctx.release else None,
    )
    if years:
        chosen = st.selectbox("Financial year for the breakdown", years[::-1], key="lac_year")
        ui.bar_chart(
            ctx,
            measure,
            split or "locality",
            where={**where, "financial_year": chosen},
            when=chosen,
            key="lac_breakdown",
        )


ctx.body(body)
