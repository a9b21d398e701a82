"""Service demand (planners): Front Door contacts, Early Help referrals, step-up,
step-down and closures, by locality, age band, referral source and period."""

from __future__ import annotations

import streamlit as st

from portal.web import headlines, ui

ctx = ui.page("service_demand")
meta = ctx.measures()

MEASURES = [
    m
    for m in ("contacts", "eh_referrals", "eh_step_up", "eh_step_down", "eh_closures")
    if m in meta
]
SPLITS = ("locality", "age_band", "referral_source", "decision", "closure_reason")

st.write(
    "Demand on the Front Door and on Early Help over time. Choose what to show, how to "
    "break it down and which locality; every chart has a table and a CSV download."
)
measure = st.selectbox(
    "What to show", MEASURES, format_func=lambda m: meta[m].title, key="sd_measure"
)
allowed = meta[measure].breakdowns
left, middle, right = st.columns(3)
period = left.segmented_control(
    "Time period",
    [p for p in ("month", "quarter", "financial_year") if p in allowed],
    default="quarter",
    format_func=lambda p: headlines.PERIOD_TITLES[p],
    required=True,
    key=f"sd_period_{measure}",
)
split = middle.selectbox(
    "Break down by",
    [None, *(d for d in SPLITS if d in allowed)],
    format_func=lambda d: "No breakdown" if d is None else ui.titles([d])[d],
    key=f"sd_split_{measure}",
)
locality = right.selectbox(
    "Locality",
    [None, *ctx.levels(measure, "locality")],
    format_func=lambda v: "All localities" if v is None else v,
    disabled=split == "locality",
    key=f"sd_locality_{measure}",
)
where = {"locality": locality} if locality and split != "locality" else {}

ui.trend_chart(ctx, measure, period or "quarter", series=split, where=where, key="sd_trend")

years = headlines.complete_periods(
    "financial_year",
    ctx.levels(measure, "financial_year"),
    ctx.release.data_as_at if ctx.release else None,
)
if years:
    year = st.selectbox("Financial year for the breakdown", years[::-1], key="sd_year")
    ui.bar_chart(
        ctx,
        measure,
        split or "locality",
        where={**where, "financial_year": year},
        when=year,
        key="sd_breakdown",
    )
