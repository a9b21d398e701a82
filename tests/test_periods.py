"""Period labels: financial years and financial quarters, and the dates behind a label."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.periods import (
    FORMATS,
    TIME_DIMENSIONS,
    describe_span,
    financial_year,
    period_bounds,
    period_exprs,
)


def _labels(d: date) -> dict[str, str]:
    return pl.DataFrame({"d": [d]}).select(period_exprs("d")).row(0, named=True)


def test_quarters_are_financial_and_labelled_by_financial_year():
    assert _labels(date(2025, 4, 1))["quarter"] == "2025/26 Q1"
    assert _labels(date(2025, 6, 30))["quarter"] == "2025/26 Q1"
    assert _labels(date(2025, 7, 1))["quarter"] == "2025/26 Q2"
    assert _labels(date(2025, 12, 31))["quarter"] == "2025/26 Q3"
    assert _labels(date(2026, 1, 1))["quarter"] == "2025/26 Q4"
    assert _labels(date(2026, 3, 31)) == {
        "financial_year": "2025/26",
        "year": "2026",
        "quarter": "2025/26 Q4",
        "month": "2026-03",
    }
    assert _labels(date(1999, 12, 1))["financial_year"] == "1999/00"


def test_bounds_of_each_kind_of_label():
    assert period_bounds("quarter", "2025/26 Q1") == (date(2025, 4, 1), date(2025, 6, 30))
    assert period_bounds("quarter", "2025/26 Q4") == (date(2026, 1, 1), date(2026, 3, 31))
    assert period_bounds("financial_year", "2025/26") == (date(2025, 4, 1), date(2026, 3, 31))
    assert period_bounds("month", "2024-02") == (date(2024, 2, 1), date(2024, 2, 29))
    assert period_bounds("year", "2025") == (date(2025, 1, 1), date(2025, 12, 31))
    # A calendar quarter (releases made before quarters became financial) is read, but is
    # not a published label.
    assert period_bounds("quarter", "2026-Q1") == (date(2026, 1, 1), date(2026, 3, 31))
    assert not FORMATS["quarter"].match("2026-Q1")
    # Not labels: an inconsistent year pair, a month 13.
    assert period_bounds("financial_year", "2025/27") is None
    assert period_bounds("month", "2025-13") is None
    assert period_bounds("locality", "2025") is None


@settings(deadline=None)  # one polars call per example: slow only on a loaded machine
@given(st.dates(min_value=date(1990, 1, 1), max_value=date(2090, 12, 31)))
def test_every_date_lies_inside_each_of_its_periods(d: date):
    labels = _labels(d)
    assert labels["financial_year"] == financial_year(d)
    for dim in TIME_DIMENSIONS:
        assert FORMATS[dim].match(labels[dim]), (dim, labels[dim])
        bounds = period_bounds(dim, labels[dim])
        assert bounds is not None and bounds[0] <= d <= bounds[1], (dim, labels[dim])
    # Quarters tile their financial year: the next day after a quarter's end is the next
    # quarter's start.
    q_end = period_bounds("quarter", labels["quarter"])[1]  # type: ignore[index]
    nxt = _labels(q_end + timedelta(days=1))["quarter"]
    assert period_bounds("quarter", nxt)[0] == q_end + timedelta(days=1)  # type: ignore[index]


def test_spans_read_as_months_or_days():
    assert describe_span(date(2021, 4, 1), date(2026, 3, 31)) == "April 2021 to March 2026"
    assert describe_span(date(2025, 4, 1), date(2025, 4, 30)) == "April 2025"
    assert describe_span(date(2025, 4, 1), date(2025, 11, 21)) == "1 April 2025 to 21 November 2025"
