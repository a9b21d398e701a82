"""Children in need (planners, leadership): referrals, re-referrals, assessments,
section 47 enquiries and child protection plans, with rates and trends. The view is kept in
the address (a bookmark or link reopens it)."""

from __future__ import annotations

import streamlit as st

from portal.web import headlines, permalink, ui

ctx = ui.page("children_in_need")
meta = ctx.measures()
url = ctx.url

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
st.caption(
    f"Latest complete financial year: {year}; change compared with the year before (never "
    "across a suppressed or incomplete year)."
)

st.divider()


def body() -> None:
    """The controls and what they show: a change reruns only this (`ctx.body`)."""
    asked = permalink.one(url, "measure")
    ctx.start("cin_measure", ui.pick(asked, MEASURES))
    measure = st.selectbox(
        "What to show", MEASURES, format_func=lambda m: meta[m].title, key="cin_measure"
    )
    allowed = meta[measure].breakdowns
    periods = [p for p in ("quarter", "financial_year") if p in allowed]
    splits = [ui.ALL, *(d for d in SPLITS if d in allowed)]
    localities = [ui.ALL, *ctx.levels(measure, "locality")]
    asked_split = (permalink.listed(url, "by") or [None])[0]
    asked_locality = permalink.pairs(url, "where").get("locality", [None])[0]
    ctx.start(
        f"cin_period_{measure}", ui.pick(permalink.one(url, "period"), periods, "financial_year")
    )
    ctx.start(f"cin_split_{measure}", ui.pick(asked_split, splits))
    ctx.start(f"cin_locality_{measure}", ui.pick(asked_locality, localities))

    left, middle, right = st.columns(3)
    period = left.segmented_control(
        "Time period",
        periods,
        format_func=lambda p: headlines.PERIOD_TITLES[p],
        required=True,
        key=f"cin_period_{measure}",
    )
    split = middle.selectbox(
        "Break down by",
        splits,
        format_func=lambda d: "No breakdown" if d == ui.ALL else ui.titles([d])[d],
        key=f"cin_split_{measure}",
    )
    locality = right.selectbox(
        "Locality",
        localities,
        format_func=lambda v: "All localities" if v == ui.ALL else v,
        disabled=split == "locality",
        key=f"cin_locality_{measure}",
    )
    where = {"locality": locality} if locality and split != "locality" else {}
    trend = st.container()

    years = ctx.complete_levels(measure, "financial_year", where)
    chosen = None
    if years:
        ctx.start(f"cin_year_{measure}", ui.pick(permalink.one(url, "year"), years, years[-1]))
        chosen = st.selectbox(
            "Financial year for the breakdown", years[::-1], key=f"cin_year_{measure}"
        )

    view = permalink.view(
        measure=measure, period=period, by=[split] if split else [], where=where, year=chosen
    )
    ctx.keep_view(view)
    with trend:
        ui.trend_chart(
            ctx,
            measure,
            period or "financial_year",
            series=split,
            where=where,
            key="cin_trend",
            view=view,
        )
    if chosen:
        ui.bar_chart(
            ctx,
            measure,
            split or "locality",
            where={**where, "financial_year": chosen},
            when=chosen,
            key="cin_breakdown",
            view=view,
        )


ctx.body(body)
