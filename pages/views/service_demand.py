"""Service demand (planners): Front Door contacts, Early Help referrals, step-up,
step-down and closures, by locality, age band, referral source and period. The view is kept
in the address (a bookmark or link reopens it)."""

from __future__ import annotations

import streamlit as st

from portal.web import headlines, permalink, ui

ctx = ui.page("service_demand")
meta = ctx.measures()
url = ctx.url

MEASURES = [
    m
    for m in ("contacts", "eh_referrals", "eh_step_up", "eh_step_down", "eh_closures")
    if m in meta
]
SPLITS = ("locality", "age_band", "referral_source", "decision", "closure_reason")

st.write(
    "Demand on the Front Door and on Early Help over time. Choose what to show, how to "
    "break it down and which locality; every chart has a table, a CSV download and a link "
    "that reopens it."
)


def body() -> None:
    """The controls and what they show: a change reruns only this (`ctx.body`)."""
    asked = permalink.one(url, "measure")
    ctx.start("sd_measure", ui.pick(asked, MEASURES))
    measure = st.selectbox(
        "What to show", MEASURES, format_func=lambda m: meta[m].title, key="sd_measure"
    )
    allowed = meta[measure].breakdowns
    periods = [p for p in ("month", "quarter", "financial_year") if p in allowed]
    splits = [ui.ALL, *(d for d in SPLITS if d in allowed)]
    localities = [ui.ALL, *ctx.levels(measure, "locality")]
    asked_split = (permalink.listed(url, "by") or [None])[0]
    asked_locality = permalink.pairs(url, "where").get("locality", [None])[0]
    ctx.start(f"sd_period_{measure}", ui.pick(permalink.one(url, "period"), periods, "quarter"))
    ctx.start(f"sd_split_{measure}", ui.pick(asked_split, splits))
    ctx.start(f"sd_locality_{measure}", ui.pick(asked_locality, localities))

    left, middle, right = st.columns(3)
    period = left.segmented_control(
        "Time period",
        periods,
        format_func=lambda p: headlines.PERIOD_TITLES[p],
        required=True,
        key=f"sd_period_{measure}",
    )
    split = middle.selectbox(
        "Break down by",
        splits,
        format_func=lambda d: "No breakdown" if d == ui.ALL else ui.titles([d])[d],
        key=f"sd_split_{measure}",
    )
    locality = right.selectbox(
        "Locality",
        localities,
        format_func=lambda v: "All localities" if v == ui.ALL else v,
        disabled=split == "locality",
        key=f"sd_locality_{measure}",
    )
    where = {"locality": locality} if locality and split != "locality" else {}
    trend = st.container()

    years = ctx.complete_levels(measure, "financial_year", where)
    year = None
    if years:
        asked_year = permalink.one(url, "year")
        ctx.start(f"sd_year_{measure}", ui.pick(asked_year, years, years[-1]))
        year = st.selectbox(
            "Financial year for the breakdown", years[::-1], key=f"sd_year_{measure}"
        )

    view = permalink.view(
        measure=measure,
        period=period,
        by=[split] if split else [],
        where=where,
        year=year,
    )
    ctx.keep_view(view)
    with trend:
        ui.trend_chart(
            ctx, measure, period or "quarter", series=split, where=where, key="sd_trend", view=view
        )
    if year:
        ui.bar_chart(
            ctx,
            measure,
            split or "locality",
            where={**where, "financial_year": year},
            when=year,
            key="sd_breakdown",
            view=view,
        )


ctx.body(body)
