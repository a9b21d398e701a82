"""Pure page machinery (no Streamlit): what a chart may draw when most of it is suppressed,
headlines that never rest on suppressed or partial periods, view addresses that round-trip,
and the printable report that references nothing outside itself."""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import parse_qs, urlsplit

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from portal.web import headlines, permalink, report

FY = "financial_year"


def _rows(period: str, labels: list[str], values: list[int | None], series=None) -> pl.DataFrame:
    data = {
        period: labels,
        "count_value": [float(v) if v is not None else None for v in values],
        "count": [str(v) if v is not None else "c" for v in values],
    }
    if series is not None:
        data["locality"] = series
    return pl.DataFrame(data)


QUARTERS = [f"2024/25 Q{q}" for q in range(1, 5)] + [f"2025/26 Q{q}" for q in range(1, 5)]


def test_a_mostly_suppressed_chart_moves_to_a_coarser_grain_and_says_why():
    quarters = _rows("quarter", QUARTERS, [None, 12, None, None, None, 14, None, None])
    years = _rows(FY, ["2024/25", "2025/26"], [31, 40])
    plan = headlines.plan_trend({"quarter": quarters, FY: years}, "quarter", None, is_rate=False)
    assert plan.period == FY
    assert (
        plan.notes and "6 of 8 shown as c" in plan.notes[0] and "financial years" in plan.notes[0]
    )
    # Mostly published: the grain asked for stays, with no note.
    fine = _rows("quarter", QUARTERS, [20, 12, None, 30, 25, 14, 11, 19])
    kept = headlines.plan_trend({"quarter": fine, FY: years}, "quarter", None, is_rate=False)
    assert kept.period == "quarter" and not kept.notes


def test_many_mostly_suppressed_series_keep_the_top_five_and_never_add_an_other():
    groups = [f"Area {i}" for i in range(8)]
    labels, values, series = [], [], []
    for i, g in enumerate(groups):
        for y in ("2024/25", "2025/26"):
            labels.append(y)
            series.append(g)
            values.append(50 + i if i >= 5 else None)  # areas 0-4 are all suppressed
    rows = _rows(FY, labels, values, series)
    plan = headlines.plan_trend({FY: rows}, FY, "locality", is_rate=False, series_title="areas")
    drawn = set(plan.drawn["locality"].to_list())
    assert len(drawn) == 5 and drawn >= {"Area 5", "Area 6", "Area 7"}
    assert len(plan.dropped) == 3 and not set(plan.dropped) & {"Area 5", "Area 6", "Area 7"}
    assert "Other" not in drawn and any("not added up" in n for n in plan.notes)
    assert plan.rows.height == rows.height, "the table beside the chart keeps every series"


def test_periods_before_a_source_starts_and_incomplete_ones_are_not_drawn():
    years = ["2020/21", "2021/22", "2022/23", "2025/26", "2026/27"]
    done = headlines.complete_periods(
        FY,
        years,
        date(2026, 11, 21),
        partial=["2025/26"],
        covers=(date(2021, 4, 1), date(2026, 3, 31)),
    )
    assert done == ["2021/22", "2022/23"]


def test_a_headline_never_describes_a_change_across_a_suppressed_or_partial_period():
    assert "rose" not in headlines.trend_headline(
        "Contacts", [("2024/25", None), ("2025/26", 120.0)], dim=FY, is_rate=False
    )
    # The last complete period leads; a partial one is never in `points` (year_points).
    figure = headlines.headline_figure(
        "Contacts",
        _rows(FY, ["2023/24", "2024/25", "2025/26"], [100, None, 126]),
        FY,
        "2025/26",
        "2024/25",
        is_rate=False,
        rate_per=None,
    )
    assert figure.value == "126" and figure.delta is None
    assert figure.note and "2024/25 is suppressed" in figure.note
    suppressed = headlines.headline_figure(
        "Contacts",
        _rows(FY, ["2024/25", "2025/26"], [100, None]),
        FY,
        "2025/26",
        "2024/25",
        is_rate=False,
        rate_per=None,
    )
    assert suppressed.value == "c" and suppressed.suppressed
    assert suppressed.delta and "suppressed" in suppressed.delta, "c explained in place"


_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=20
).filter(lambda s: ":" not in s[:1])
_name = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)


@given(
    measure=_name,
    by=st.lists(_name, max_size=3, unique=True),
    where=st.dictionaries(_name, _text, max_size=3),
    year=st.none() | st.just("2024/25"),
    totals=st.booleans(),
)
def test_a_view_address_round_trips(measure, by, where, year, totals):
    params = permalink.view(measure=measure, by=by, where=where, year=year, totals=totals)
    link = permalink.address("http://127.0.0.1:8501/table_builder", permalink.pinned(params, "r1"))
    query = parse_qs(urlsplit(link).query, keep_blank_values=True)
    back = permalink.read(query)
    assert permalink.one(back, "release") == "r1"
    assert permalink.view_with(back, release=None) == params
    assert permalink.pairs(back, "where") == {k: [v] for k, v in where.items()}


def test_junk_in_an_address_is_dropped():
    got = permalink.read(
        {"measure": ["contacts; drop"], "by": ["locality,../etc"], "release": ["a/b"], "x": ["1"]}
    )
    assert got == {}


def test_the_report_is_one_self_contained_document():
    fig = report.Figure(
        title="Contacts",
        headline="Contacts rose by 10% to 110 in 2025/26 compared with 2024/25",
        kind="line",
        points=(
            report.Point("2023/24", None, "c"),
            report.Point("2024/25", 100.0, "100"),
            report.Point("2025/26", 110.0, "110"),
        ),
        value_title="Number of contacts",
        x_title="Financial year",
        tile=("110 (2025/26)", "+10% on 2024/25", ""),
        footnotes=("Counts are protected.",),
    )
    bars = report.Figure(
        title="Progress",
        headline="Progress was highest for <Castlemere> (62.0%)",
        kind="bar",
        points=(report.Point("<Castlemere>", 62.0, "62.0"), report.Point("Ashby", None, "c")),
        value_title="Percentage",
        x_title="Locality",
        percent=True,
        footnotes=("Counts are protected.",),
    )
    html = report.render(
        report.Report(
            title="Headline figures",
            subtitle="Latest complete financial year",
            release_line="Release r1",
            figures=(fig, bars),
            disclosure=("Every figure is protected.",),
            sections=(report.Section("Comparisons", "<p>hook</p>"),),
            superseded="Superseded: release r1 has been replaced by r2.",
        )
    )
    assert html.count("<svg") == 2 and "c: suppressed" in html
    assert "<script" not in html and "@import" not in html and "<link" not in html
    urls = set(re.findall(r"(?:https?:)?//[^\s\"'<>)]+", html))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls
    assert "&lt;Castlemere&gt;" in html and "<Castlemere>" not in html, "labels escaped"
    assert "Superseded" in html and "Comparisons" in html and "Disclosure control" in html
    assert "Counts are protected." in html and "110 (2025/26)" in html
    for pct in re.findall(r">(\d+(?:\.\d+)?)%<", html):
        assert float(pct) <= 100
