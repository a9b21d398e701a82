"""Time periods: how a date becomes a published period label, and a label its dates.

The one place that says when a period starts and ends. Derive writes the labels, the
release layer reads them back (to say which periods a table covers and which had not
ended by the data date), and publishing closes a period once a release's data as-at
date is past its end (a routine release then never changes its cells).

Councils plan and report in financial years (1 April to 31 March), so quarters are
financial quarters: "2025/26 Q1" is April to June 2025 and "2025/26 Q4" is January
to March 2026, as in DfE's and the Supporting Families quarterly returns.

| dimension | label | covers |
|---|---|---|
| financial_year | `2025/26` | 1 April 2025 to 31 March 2026 |
| quarter | `2025/26 Q1` | April to June 2025 (Q2 Jul-Sep, Q3 Oct-Dec, Q4 Jan-Mar 2026) |
| month | `2025-04` | April 2025 |
| year | `2025` | calendar year 2025 |

`period_bounds` also reads the calendar spelling of a quarter ("2025-Q1", January to
March), which releases made before quarters became financial hold, so that the revisions
policy can still date their cells. `FORMATS` accepts only the published spellings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, timedelta

import polars as pl

TIME_DIMENSIONS = ("financial_year", "year", "quarter", "month")
# The grain that says what span a measure covers: a financial year with data covers all
# of it, whereas a month without a record is not a gap in the data.
COARSEST_FIRST = ("financial_year", "quarter", "month", "year")
# Finest first: the dimension whose value dates a counted unit most precisely.
FINEST_FIRST = ("month", "quarter", "financial_year", "year")

FORMATS: dict[str, re.Pattern[str]] = {
    "financial_year": re.compile(r"^(\d{4})/(\d{2})$"),
    "quarter": re.compile(r"^(\d{4})/(\d{2}) Q([1-4])$"),
    "month": re.compile(r"^(\d{4})-(\d{2})$"),
    "year": re.compile(r"^(\d{4})$"),
}
_CALENDAR_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December",
)  # fmt: skip


def period_exprs(col: str) -> list[pl.Expr]:
    """financial_year, year, quarter (financial) and month of the date column `col`."""
    d = pl.col(col)
    fy_start = pl.when(d.dt.month() >= 4).then(d.dt.year()).otherwise(d.dt.year() - 1)
    fy = pl.format("{}/{}", fy_start, ((fy_start + 1) % 100).cast(pl.Utf8).str.zfill(2))
    quarter = (d.dt.month() + 8) % 12 // 3 + 1  # April-June 1 ... January-March 4
    return [
        fy.alias("financial_year"),
        d.dt.year().cast(pl.Utf8).alias("year"),
        pl.format("{} Q{}", fy, quarter).alias("quarter"),
        d.dt.strftime("%Y-%m").alias("month"),
    ]


def financial_year(d: date) -> str:
    start = d.year if d.month >= 4 else d.year - 1
    return f"{start}/{(start + 1) % 100:02d}"


def _month_end(year: int, month: int) -> date:
    return date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)


def _fy_start(m: re.Match[str]) -> int | None:
    start = int(m[1])
    return start if (start + 1) % 100 == int(m[2]) else None


def period_bounds(dim: str, value: str) -> tuple[date, date] | None:
    """First and last day of a period label; None when `dim` is not a time dimension or
    `value` is not a period (e.g. "Not known", or "2025/27")."""
    if dim == "quarter" and (c := _CALENDAR_QUARTER.match(value)):
        year, q = int(c[1]), int(c[2])
        return date(year, 3 * q - 2, 1), _month_end(year, 3 * q)
    pattern = FORMATS.get(dim)
    m = pattern.match(value) if pattern else None
    if m is None:
        return None
    if dim == "financial_year":
        start = _fy_start(m)
        return None if start is None else (date(start, 4, 1), date(start + 1, 3, 31))
    if dim == "quarter":
        start = _fy_start(m)
        if start is None:
            return None
        first_month = 3 * int(m[3]) + 1  # Q1 -> 4 (April) ... Q4 -> 13 (January next year)
        year = start + (first_month - 1) // 12
        month = (first_month - 1) % 12 + 1
        return date(year, month, 1), _month_end(year, month + 2)
    if dim == "month":
        year, month = int(m[1]), int(m[2])
        return (date(year, month, 1), _month_end(year, month)) if 1 <= month <= 12 else None
    year = int(m[1])
    return date(year, 1, 1), date(year, 12, 31)


def period_end(dim: str, value: str) -> date | None:
    bounds = period_bounds(dim, value)
    return bounds[1] if bounds else None


def period_start(dim: str, value: str) -> date | None:
    bounds = period_bounds(dim, value)
    return bounds[0] if bounds else None


def finest_time_dim(dims: Iterable[str]) -> str | None:
    """The time dimension that dates a measure's units most precisely (None: untimed)."""
    present = set(dims)
    return next((d for d in FINEST_FIRST if d in present), None)


def describe(d: date) -> str:
    """ "1 April 2021"."""
    return f"{d.day} {_MONTH_NAMES[d.month - 1]} {d.year}"


def describe_span(start: date, end: date) -> str:
    """ "April 2021 to March 2026" for whole months, else exact days."""
    if start.day == 1 and end == _month_end(end.year, end.month):
        first = f"{_MONTH_NAMES[start.month - 1]} {start.year}"
        last = f"{_MONTH_NAMES[end.month - 1]} {end.year}"
        return first if first == last else f"{first} to {last}"
    return f"{describe(start)} to {describe(end)}"
