"""Pure helpers that turn protected tables into what a page says: complete periods,
headline sentences, the rows a chart plots and the table shown beside it.

Everything here works on `ProtectedTable.data` (already protected); nothing computes a
count, only differences and ratios of protected values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import polars as pl

PERIODS = ("financial_year", "year", "quarter", "month")
PERIOD_TITLES = {
    "financial_year": "Financial year",
    "year": "Calendar year",
    "quarter": "Quarter",
    "month": "Month",
}
_FY = re.compile(r"^(\d{4})/(\d{2})$")
# Financial quarters: "2025/26 Q1" is April to June 2025 ... "Q4" January to March 2026.
_Q = re.compile(r"^(\d{4})/(\d{2}) Q([1-4])$")


def _quarter_months(m: re.Match[str]) -> tuple[int, int, int]:
    """(year, first month, last month) of a financial quarter label."""
    first = 3 * int(m[3]) + 1  # Q1 -> April (4) ... Q4 -> January of the next year (13)
    year = int(m[1]) + (first - 1) // 12
    month = (first - 1) % 12 + 1
    return year, month, month + 2


_M = re.compile(r"^(\d{4})-(\d{2})$")
_Y = re.compile(r"^(\d{4})$")
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def period_end(dim: str, value: str) -> date | None:
    """The last day of a period label ("2025/26", "2025/26 Q4", "2026-03", "2026")."""
    if dim == "financial_year" and (m := _FY.match(value)):
        return date(int(m[1]) + 1, 3, 31)
    if dim == "quarter" and (m := _Q.match(value)):
        year, _, last = _quarter_months(m)
        return _month_end(year, last)
    if dim == "month" and (m := _M.match(value)):
        return _month_end(int(m[1]), int(m[2]))
    if dim == "year" and (m := _Y.match(value)):
        return date(int(m[1]), 12, 31)
    return None


def _month_end(year: int, month: int) -> date:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    return date.fromordinal(nxt.toordinal() - 1)


def complete_periods(dim: str, values: Iterable[str], data_as_at: date | None) -> list[str]:
    """The periods that had ended by the data date, in the order given."""
    out = []
    for v in values:
        end = period_end(dim, v)
        if end is not None and (data_as_at is None or end <= data_as_at):
            out.append(v)
    return out


def period_label(dim: str, value: str) -> str:
    """A reader's label: "Jan 2026", "Jan to Mar 2026", "April 2025 to March 2026"."""
    if dim == "month" and (m := _M.match(value)):
        return f"{_MONTHS[int(m[2]) - 1]} {m[1]}"
    if dim == "quarter" and (m := _Q.match(value)):
        year, first, last = _quarter_months(m)
        return f"{_MONTHS[first - 1]} to {_MONTHS[last - 1]} {year}"
    if dim == "financial_year" and (m := _FY.match(value)):
        return f"April {m[1]} to March {int(m[1]) + 1}"
    return value


def span(dim: str, values: Sequence[str]) -> str:
    """ "April 2021 to March 2026" for a run of periods."""
    if not values:
        return "no complete periods"
    first, last = values[0], values[-1]
    start = period_label(dim, first).split(" to ")[0]
    end = period_label(dim, last).split(" to ")[-1]
    if dim == "quarter" and (m := _Q.match(first)):
        year, month, _ = _quarter_months(m)
        start = f"{_MONTHS[month - 1]} {year}"
    return start if first == last else f"{start} to {end}"


# --- headline sentences ----------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    current: float | None
    previous: float | None

    @property
    def ratio(self) -> float | None:
        if self.current is None or self.previous in (None, 0):
            return None
        assert self.previous is not None
        return self.current / self.previous - 1

    @property
    def difference(self) -> float | None:
        if self.current is None or self.previous is None:
            return None
        return self.current - self.previous


def fmt_number(value: float | None, *, percent: bool = False, decimals: int = 0) -> str:
    if value is None:
        return "c"
    if percent:
        return f"{value:.{decimals}f}%"
    return f"{value:,.{decimals}f}"


def change_phrase(change: Change, *, is_rate: bool, unit: str = "") -> str:
    """ "rose by 5%", "fell from 41.9% to 38.2%", "stayed about the same"."""
    if is_rate:
        diff = change.difference
        if diff is None or change.current is None or change.previous is None:
            return "cannot be compared (a figure is suppressed)"
        if abs(diff) < 0.05:
            return f"was unchanged at {change.current:.1f}{unit}"
        verb = "rose" if diff > 0 else "fell"
        return f"{verb} from {change.previous:.1f}{unit} to {change.current:.1f}{unit}"
    ratio = change.ratio
    if ratio is None:
        return "cannot be compared (a figure is suppressed or zero)"
    if abs(ratio) < 0.01:
        return "stayed about the same"
    return f"{'rose' if ratio > 0 else 'fell'} by {abs(ratio):.0%}"


def value_column(is_rate: bool) -> str:
    return "rate_value" if is_rate else "count_value"


def series(data: pl.DataFrame, dim: str, *, is_rate: bool) -> list[tuple[str, float | None]]:
    col = value_column(is_rate)
    return [(str(k), v) for k, v in data.select(dim, col).iter_rows()]


def trend_headline(
    label: str,
    points: Sequence[tuple[str, float | None]],
    *,
    dim: str,
    is_rate: bool,
    unit: str = "",
) -> str:
    """One sentence about the last two periods of a series."""
    if not points:
        return f"{label}: no complete periods in this release"
    if len(points) == 1 or points[-1][1] is None:
        last, value = points[-1]
        shown = fmt_number(value, decimals=1 if is_rate else 0)
        return f"{label}: {shown}{unit if value is not None else ''} in {last}"
    (prev_p, prev_v), (cur_p, cur_v) = points[-2], points[-1]
    phrase = change_phrase(Change(cur_v, prev_v), is_rate=is_rate, unit=unit)
    return f"{label} {phrase} in {cur_p} compared with {prev_p}"


# --- what a chart and its table show --------------------------------------------------


def keep_rows(data: pl.DataFrame, dim: str, values: Sequence[str]) -> pl.DataFrame:
    return data.filter(pl.col(dim).is_in(list(values)))


def drop_totals(data: pl.DataFrame, dims: Sequence[str], total_label: str) -> pl.DataFrame:
    if not dims:
        return data
    return data.filter(pl.all_horizontal(pl.col(d) != total_label for d in dims))


def shown_table(
    data: pl.DataFrame,
    dims: Sequence[str],
    titles: dict[str, str],
    *,
    is_rate: bool,
    rate_title: str = "Rate",
    count_title: str = "Count",
    denominator_title: str = "Denominator",
) -> pl.DataFrame:
    """The table a reader sees (and downloads): breakdown labels and the protected values
    as published, symbols included."""
    cols = [pl.col(d).alias(titles.get(d, d)) for d in dims]
    cols.append(pl.col("count").alias(count_title))
    if is_rate:
        cols.append(pl.col("denominator").alias(denominator_title))
        cols.append(pl.col("rate").alias(rate_title))
    return data.select(cols)


def describe_chart(
    kind: str,
    data: pl.DataFrame,
    x: str,
    y: str,
    *,
    what: str,
    x_title: str,
    series_dim: str | None = None,
    percent: bool = False,
) -> str:
    """Alt text: what is plotted, the range, the highest and lowest points, and how many
    values are suppressed (and so not drawn)."""
    parts = [f"{kind} of {what} by {x_title.lower()}"]
    if series_dim:
        n = data[series_dim].n_unique()
        mark = "line" if kind.startswith("Line") else "bar"
        parts[0] += f", one {mark} per {series_dim.replace('_', ' ')} ({n})"
    xs = data[x].unique(maintain_order=True).to_list()
    if xs:
        parts.append(f"from {xs[0]} to {xs[-1]}" if len(xs) > 1 else f"for {xs[0]}")
    valid = data.filter(pl.col(y).is_not_null())
    if valid.height:
        top = valid.sort(y, descending=True).row(0, named=True)
        low = valid.sort(y).row(0, named=True)
        d = 1 if percent or not float(top[y]).is_integer() else 0

        def where(row: dict[str, object]) -> str:
            s = str(row[x])
            return f"{row[series_dim]}, {s}" if series_dim else s

        parts.append(
            f"highest {fmt_number(top[y], decimals=d)}{'%' if percent else ''} ({where(top)}), "
            f"lowest {fmt_number(low[y], decimals=d)}{'%' if percent else ''} ({where(low)})"
        )
    hidden = data.height - valid.height
    if hidden:
        parts.append(f"{hidden} value{'s' if hidden != 1 else ''} suppressed (c) and not drawn")
    return "; ".join(parts) + ". The same figures are in the table below the chart."


# --- headline figures and release comparison ---------------------------------------------


def latest_two(
    dim: str, values: Sequence[str], data_as_at: date | None
) -> tuple[str | None, str | None]:
    """The latest complete period and the one before it (None where there is none)."""
    done = complete_periods(dim, values, data_as_at)
    current = done[-1] if done else None
    previous = done[-2] if len(done) > 1 else None
    return current, previous


def rate_unit(rate_per: int | None) -> str:
    return "%" if rate_per == 100 else f" per {rate_per or 0:,}"


@dataclass(frozen=True)
class Headline:
    label: str
    value: str
    delta: str | None
    help: str


def headline_figure(
    title: str,
    data: pl.DataFrame,
    dim: str,
    current: str | None,
    previous: str | None,
    *,
    is_rate: bool,
    rate_per: int | None,
) -> Headline:
    """A metric tile: the protected value for `current` and its change from `previous`."""
    values = dict(series(data, dim, is_rate=is_rate))
    cur = values.get(current) if current else None
    prev = values.get(previous) if previous else None
    change = Change(cur, prev)
    if current is None:
        # GSS "x": not available (no complete year yet), not a suppressed figure.
        return Headline(title, "x", None, f"{title}: no complete financial year yet.")
    if is_rate:
        unit = rate_unit(rate_per)
        value = "c" if cur is None else f"{cur:.1f}{unit}"
        diff = change.difference
        delta = (
            None
            if diff is None
            else f"{diff:+.1f}{' percentage points' if unit == '%' else unit} on {previous}"
        )
    else:
        value = fmt_number(cur)
        ratio = change.ratio
        delta = None if ratio is None else f"{ratio:+.0%} on {previous}"
    return Headline(title, value, delta, f"{title}, {current or 'no complete year'}.")


def release_change_row(
    title: str,
    now: pl.DataFrame,
    then: pl.DataFrame | None,
    dim: str,
    current: str | None,
    *,
    is_rate: bool,
) -> dict[str, str]:
    """How one measure's published series differs between two releases (`then` None: the
    earlier release did not have the measure)."""
    col = value_column(is_rate)
    then = now.clear() if then is None else then
    joined = now.select(dim, pl.col(col).alias("now")).join(
        then.select(dim, pl.col(col).alias("then")), on=dim, how="full", coalesce=True
    )
    revised = joined.filter(pl.col("now").ne_missing(pl.col("then")))[dim].to_list()
    now_v = dict(zip(joined[dim], joined["now"], strict=True))
    then_v = dict(zip(joined[dim], joined["then"], strict=True))
    d = 1 if is_rate else 0
    new = [p for p in now[dim].to_list() if p not in set(then[dim].to_list())]
    return {
        "Measure": title,
        "New periods": ", ".join(new) or "none",
        "Periods revised": ", ".join(p for p in revised if p not in new) or "none",
        "Latest complete year": current or "none",
        "Value now": fmt_number(now_v.get(current), decimals=d) if current else "",
        "Value in the previous release": (
            fmt_number(then_v.get(current), decimals=d)
            if current and current in then_v
            else "not published"
        ),
    }


# --- readable labels for coded values ----------------------------------------------------

LABELS: dict[str, dict[str, str]] = {
    "referral_source": {
        "ANON": "Anonymous",
        "GP": "GP",
        "HEALTH_VISITOR": "Health visitor",
        "SELF": "Self-referral",
        "SOCIAL_CARE": "Children's social care",
    },
    "decision": {
        "EARLY_HELP": "Early Help",
        "INFO_ADVICE": "Information and advice",
        "NFA": "No further action",
        "SOCIAL_CARE": "Children's social care",
    },
    "closure_reason": {
        "DISENGAGED": "Family disengaged",
        "OUTCOMES_MET": "Outcomes met",
        "STEP_UP_CSC": "Stepped up to social care",
        "UNIVERSAL_SERVICES": "Stepped down to universal services",
    },
    "sex": {"F": "Female", "M": "Male", "U": "Not recorded"},
}


def pretty(dim: str, value: str) -> str:
    """A reader's label for a coded value (codes in capitals become sentence case)."""
    known = LABELS.get(dim, {}).get(value)
    if known:
        return known
    if value.isupper() and len(value) > 2:
        return value.replace("_", " ").capitalize()
    return value


def relabel(data: pl.DataFrame, dims: Sequence[str]) -> pl.DataFrame:
    """Readable labels in the breakdown columns (a total row keeps its label)."""
    return data.with_columns(
        pl.col(d).replace_strict(
            {v: pretty(d, v) for v in data[d].unique().to_list() if v is not None},
            default=pl.col(d),
            return_dtype=pl.String,
        )
        for d in dims
        if d in LABELS or data[d].str.contains(r"^[A-Z_]{3,}$").any()
    )


def bar_headline(
    title: str,
    unit: str,
    data: pl.DataFrame,
    dim: str,
    *,
    is_rate: bool,
    rate_per: int | None,
    when: str,
) -> str:
    """The finding of a bar chart: which category is largest."""
    col = value_column(is_rate)
    valid = data.filter(pl.col(col).is_not_null())
    if not valid.height:
        return f"{title}, {when}: every figure is suppressed"
    top = valid.sort(col, descending=True, maintain_order=True).row(0, named=True)
    if not top[col]:
        return f"{title}: none in {when}"
    if is_rate:
        value = f"{top[col]:.1f}{rate_unit(rate_per)}"
        return f"{title} was highest for {top[dim]} ({value}) in {when}"
    share = ""
    total = valid[col].sum()
    if total and valid.height > 1:
        share = f", about {top[col] / total:.0%} of those shown"
    return f"{top[dim]} accounted for the most {unit} in {when} ({fmt_number(top[col])}{share})"
