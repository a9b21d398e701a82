"""The floor of a filter change: the service-demand page's controls and its two charts
(the portal's own chart component, `portal.web.plot`, and specs, `portal.web.charts`) in a
fragment, and nothing else. No sign-in or session check, no release service, no headline
sentences, table views, downloads or links: protected tables computed beforehand by
`bench_portal.py --floor` (through the release library, from the same release) and read
from the folder named by $BENCH_FLOOR_TABLES.

What a change costs here is what Streamlit (the fragment rerun, its select box) and
plotly.js (two charts) cost on their own: the part of the portal's time that no change to
the portal's pages can remove.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import streamlit as st

from portal.web import charts, plot

MEASURES = ("contacts", "eh_referrals", "eh_step_up", "eh_step_down", "eh_closures")
SPLITS = ("locality", "age_band", "referral_source", "decision", "closure_reason")
PERIODS = {"month": "Month", "quarter": "Quarter", "financial_year": "Financial year"}
FOLDER_VARIABLE = "BENCH_FLOOR_TABLES"


def table_name(measure: str, dims: tuple[str, ...]) -> str:
    return f"{measure}--{'-'.join(dims)}.parquet"


@st.cache_resource
def tables() -> dict[str, pl.DataFrame]:
    folder = Path(os.environ[FOLDER_VARIABLE])
    return {p.name: pl.read_parquet(p) for p in folder.glob("*.parquet")}


def body() -> None:
    have = tables()
    measures = [m for m in MEASURES if table_name(m, ("quarter",)) in have]
    measure = st.selectbox("What to show", measures, key="measure")
    splits = [None, *(s for s in SPLITS if table_name(measure, ("quarter", s)) in have)]
    left, middle, right = st.columns(3)
    period = left.segmented_control(
        "Time period",
        list(PERIODS),
        default="quarter",
        format_func=PERIODS.__getitem__,
        required=True,
        key=f"period_{measure}",
    )
    split = middle.selectbox(
        "Break down by",
        splits,
        format_func=lambda s: "No breakdown" if s is None else s,
        key=f"split_{measure}",
    )
    right.selectbox("Locality", ["All localities"], key=f"locality_{measure}")
    grain = period or "quarter"
    trend = have[table_name(measure, (grain, split) if split else (grain,))]
    st.header("Trend")
    plot.chart(
        charts.line_figure(trend, grain, "count_value", series=split, x_title=PERIODS[grain]),
        key="trend_chart",
        alt="trend",
    )
    st.selectbox("Financial year for the breakdown", ["2025/26"], key=f"year_{measure}")
    dim = split or "locality"
    st.header("Breakdown")
    plot.chart(
        charts.bar_figure(
            have[table_name(measure, (dim,))], dim, "count_value", x_title=dim, horizontal=True
        ),
        key="bar_chart",
        alt="breakdown",
    )


if __name__ == "__main__":  # run by Streamlit (floor_web.py), not when bench_portal imports it
    st.title("Service demand")
    st.fragment(body)()
