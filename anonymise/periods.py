"""Time-dimension values and the periods they stand for: the one place that says when a
period starts and ends.

The revisions policy needs it twice: publishing closes a period once a release's data
as-at date is past its end (and then never changes its cells in a routine release), and
the release layer shows a true zero as `c` in any cell covering a period that a revision
has rewritten. Quarters come in two spellings, calendar ("2025-Q1", January to March)
and financial ("2025/26 Q1", April to June 2025); both are read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date

TIME_DIMS = ("month", "quarter", "year", "financial_year")
# Finest first: the dimension whose value dates a counted unit most precisely.
FINEST_FIRST = ("month", "quarter", "financial_year", "year")

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_CAL_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_FIN_QUARTER = re.compile(r"^(\d{4})/(\d{2}) Q([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")
_FIN_YEAR = re.compile(r"^(\d{4})/(\d{2})$")


def _month_end(year: int, month: int) -> date:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    return date.fromordinal(nxt.toordinal() - 1)


def period_bounds(dim: str, value: str) -> tuple[date, date] | None:
    """First and last day of a time-dimension value; None if `dim` is not a time
    dimension or the value is not a period (e.g. "Not known")."""
    if dim == "month" and (m := _MONTH.match(value)) and 1 <= int(m[2]) <= 12:
        y, mo = int(m[1]), int(m[2])
        return date(y, mo, 1), _month_end(y, mo)
    if dim == "quarter" and (m := _CAL_QUARTER.match(value)):
        y, q = int(m[1]), int(m[2])
        return date(y, 3 * q - 2, 1), _month_end(y, 3 * q)
    if dim == "quarter" and (m := _FIN_QUARTER.match(value)):
        y, q = int(m[1]), int(m[3])
        first = 3 * q + 1  # financial Q1 starts in April
        year = y + (first > 12)
        first = (first - 1) % 12 + 1
        return date(year, first, 1), _month_end(year, first + 2)
    if dim == "year" and (m := _YEAR.match(value)):
        return date(int(m[1]), 1, 1), date(int(m[1]), 12, 31)
    if dim == "financial_year" and (m := _FIN_YEAR.match(value)):
        y = int(m[1])
        return date(y, 4, 1), date(y + 1, 3, 31)
    return None


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
