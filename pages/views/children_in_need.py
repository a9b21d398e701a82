"""Children in need (planners, leadership): referrals, re-referrals, assessments,
section 47 enquiries and child protection plans, with rates and trends."""

from __future__ import annotations

import streamlit as st

from portal.web import headlines, ui

ctx = ui.page("children_in_need")
meta = ctx.measures()

MEASURES = [
    m
    for m in (
        "cin_referrals",
        "cin_rereferrals_12m",
        "assessments_completed",
        "assessments_within_45_days",
        "s47_enquiries",
        "cp_plans_started",
        "cp_plans_second_or_subsequent",
        "cp_plans_ended",
        "cp_plans_ended_2_years_plus",
        "cp_plans_at_31_march",
    )
    if m in meta
]
SPLITS = ("locality", "age_band", "sex", "ethnicity", "referral_source", "cin_category")

st.write(
    "Children's social care activity, following the national Children in Need census "
    "definitions. Percentages and rates per 10,000 children are calculated from protected "
    "counts."
)
year = ui.headline_tiles(
    ctx,
    [
        "cin_referrals",
        "cin_rereferrals_12m",
        "assessments_within_45_days",
        "s47_enquiries",
        "cp_plans_started",
        "cp_plans_at_31_march",
    ],
)
st.caption(f"Latest complete financial year: {year}; change compared with the year before.")

st.divider()
measure = st.selectbox(
    "What to show", MEASURES, format_func=lambda m: meta[m].title, key="cin_measure"
)
allowed = meta[measure].breakdowns
left, middle, right = st.columns(3)
period = left.segmented_control(
    "Time period",
    [p for p in ("quarter", "financial_year") if p in allowed],
    default="financial_year",
    format_func=lambda p: headlines.PERIOD_TITLES[p],
    required=True,
    key=f"cin_period_{measure}",
)
split = middle.selectbox(
    "Break down by",
    [None, *(d for d in SPLITS if d in allowed)],
    format_func=lambda d: "No breakdown" if d is None else ui.titles([d])[d],
    key=f"cin_split_{measure}",
)
locality = right.selectbox(
    "Locality",
    [None, *ctx.levels(measure, "locality")],
    format_func=lambda v: "All localities" if v is None else v,
    disabled=split == "locality",
    key=f"cin_locality_{measure}",
)
where = {"locality": locality} if locality and split != "locality" else {}

ui.trend_chart(ctx, measure, period or "financial_year", series=split, where=where, key="cin_trend")

years = headlines.complete_periods(
    "financial_year",
    ctx.levels(measure, "financial_year"),
    ctx.release.data_as_at if ctx.release else None,
)
if years:
    chosen = st.selectbox("Financial year for the breakdown", years[::-1], key="cin_year")
    ui.bar_chart(
        ctx,
        measure,
        split or "locality",
        where={**where, "financial_year": chosen},
        when=chosen,
        key="cin_breakdown",
    )
