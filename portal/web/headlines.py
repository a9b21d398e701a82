"""Pure helpers that turn protected tables into what a page says: which periods are whole,
what a chart can honestly draw, headline sentences and tiles, and the table shown beside a
chart.

Everything here works on `ProtectedTable.data` (already protected); nothing computes a
count, only differences and ratios of protected values. Three rules hold throughout:

- a period is *complete* once it has ended by the data date and the table does not list it
  among its `partial_periods` (which also knows a measure's settling time, such as the six
  months sustained progress must hold); periods before the measure's coverage starts are
  "no data", never zero;
- a headline describes a change only between two consecutive complete periods that are
  both published: never across a suppressed (`c`) or incomplete one;
- when most of a chart's cells are suppressed, it is drawn at a coarser grain or with fewer
  series, and says why (`plan_notes`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

PERIODS = ("financial_year", "year", "quarter", "month")
PERIOD_TITLES = {
    "financial_year": "Financial year",
    "year": "Calendar year",
    "quarter": "Quarter",
    "month": "Month",
}
# How a grain reads in a sentence: ("quarterly", "quarters").
GRAIN_WORDS = {
    "financial_year": ("annual", "financial years"),
    "year": ("annual", "calendar years"),
    "quarter": ("quarterly", "quarters"),
    "month": ("monthly", "months"),
}
# The next coarser grain a trend chart falls back to when most of its cells are suppressed.
COARSER = {"month": "quarter", "quarter": "financial_year"}
# "Most cells suppressed": more than this share of the points a chart would draw.
MOSTLY_SUPPRESSED = 0.5
# At most this many series on one chart once it has to shed some.
TOP_SERIES = 5

_FY = re.compile(r"^(\d{4})/(\d{2})$")
# Financial quarters: "2025/26 Q1" is April to June 2025 ... "Q4" January to March 2026.
_Q = re.compile(r"^(\d{4})/(\d{2}) Q([1-4])$")
_M = re.compile(r"^(\d{4})-(\d{2})$")
_Y = re.compile(r"^(\d{4})$")
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_MONTH_NAMES = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
]  # fmt: skip


def _quarter_months(m: re.Match[str]) -> tuple[int, int, int]:
    """(year, first month, last month) of a financial quarter label."""
    first = 3 * int(m[3]) + 1  # Q1 -> April (4) ... Q4 -> January of the next year (13)
    year = int(m[1]) + (first - 1) // 12
    month = (first - 1) % 12 + 1
    return year, month, month + 2


def _month_end(year: int, month: int) -> date:
    return date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)


def period_bounds(dim: str, value: str) -> tuple[date, date] | None:
    """First and last day of a period label ("2025/26", "2025/26 Q4", "2026-03", "2026");
    None for anything else (a total row, a calendar quarter label)."""
    if dim == "financial_year" and (m := _FY.match(value)):
        return date(int(m[1]), 4, 1), date(int(m[1]) + 1, 3, 31)
    if dim == "quarter" and (m := _Q.match(value)):
        year, first, last = _quarter_months(m)
        return date(year, first, 1), _month_end(year, last)
    if dim == "month" and (m := _M.match(value)) and 1 <= int(m[2]) <= 12:
        return date(int(m[1]), int(m[2]), 1), _month_end(int(m[1]), int(m[2]))
    if dim == "year" and (m := _Y.match(value)):
        return date(int(m[1]), 1, 1), date(int(m[1]), 12, 31)
    return None


def period_end(dim: str, value: str) -> date | None:
    """The last day of a period label."""
    bounds = period_bounds(dim, value)
    return bounds[1] if bounds else None


def complete_periods(
    dim: str,
    values: Iterable[str],
    data_as_at: date | None,
    *,
    partial: Iterable[str] = (),
    covers: tuple[date, date] | None = None,
) -> list[str]:
    """The periods, in the order given, that had ended by the data date, that the table does
    not list as incomplete (`partial`), and that start inside the measure's coverage (before
    it there is no data, which is not zero)."""
    late = set(partial)
    out = []
    for v in values:
        bounds = period_bounds(dim, v)
        if bounds is None or v in late:
            continue
        if data_as_at is not None and bounds[1] > data_as_at:
            continue
        if covers is not None and bounds[0] < covers[0]:
            continue
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


def describe_span(start: date, end: date) -> str:
    """ "April 2021 to March 2026" for whole months, else exact days."""
    if start.day == 1 and end == _month_end(end.year, end.month):
        first = f"{_MONTH_NAMES[start.month - 1]} {start.year}"
        last = f"{_MONTH_NAMES[end.month - 1]} {end.year}"
        return first if first == last else f"{first} to {last}"
    return f"{_day(start)} to {_day(end)}"


def _day(d: date) -> str:
    return f"{d.day} {_MONTH_NAMES[d.month - 1]} {d.year}"


def join_words(items: Sequence[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


# --- what a chart may draw ------------------------------------------------------------------


def value_column(is_rate: bool) -> str:
    return "rate_value" if is_rate else "count_value"


def shown_column(is_rate: bool) -> str:
    return "rate" if is_rate else "count"


def suppressed(data: pl.DataFrame, *, is_rate: bool, symbol: str = "c") -> pl.Series:
    """Which rows show the confidential symbol (a rate is `c` when its count or its
    denominator is; `z`, a zero denominator, is not a suppressed figure)."""
    return (data[shown_column(is_rate)] == symbol).fill_null(False)


def suppressed_share(data: pl.DataFrame, *, is_rate: bool, symbol: str = "c") -> float:
    if data.height == 0:
        return 0.0
    return float(suppressed(data, is_rate=is_rate, symbol=symbol).sum()) / data.height


def chartable(
    data: pl.DataFrame,
    period: str,
    series: str | None,
    *,
    data_as_at: date | None,
    partial: Iterable[str] = (),
    covers: tuple[date, date] | None = None,
    total_label: str = "Total",
) -> pl.DataFrame:
    """The rows a trend chart draws: complete periods inside the measure's coverage, no
    total rows."""
    periods = complete_periods(
        period,
        data[period].unique(maintain_order=True).to_list(),
        data_as_at,
        partial=partial,
        covers=covers,
    )
    out = data.filter(pl.col(period).is_in(periods))
    if series is not None:
        out = out.filter(pl.col(series) != total_label)
    return out


def top_series(
    data: pl.DataFrame, series: str, *, is_rate: bool, symbol: str = "c", n: int = TOP_SERIES
) -> tuple[list[str], list[str]]:
    """(kept, dropped): the `n` series with the most published (not suppressed) points, ties
    broken by their published total; kept in the table's own (natural) order."""
    flagged = data.with_columns(
        suppressed(data, is_rate=is_rate, symbol=symbol).alias("_c"),
        pl.col(value_column(is_rate)).fill_null(0).alias("_v"),
    )
    ranked = (
        flagged.group_by(series, maintain_order=True)
        .agg((~pl.col("_c")).sum().alias("shown"), pl.col("_v").sum().alias("total"))
        .sort(["shown", "total"], descending=True, maintain_order=True)
    )
    keep = set(ranked[series].head(n).to_list())
    order = data[series].unique(maintain_order=True).to_list()
    return [s for s in order if s in keep], [s for s in order if s not in keep]


@dataclass(frozen=True)
class TrendView:
    """What a trend chart ends up drawing, and why it differs from what was asked."""

    period: str
    rows: pl.DataFrame  # every series at that grain (the table beside the chart)
    drawn: pl.DataFrame  # the rows plotted (top series only, if some were shed)
    dropped: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def shed(
    rows: pl.DataFrame, series: str | None, *, is_rate: bool, symbol: str = "c"
) -> tuple[pl.DataFrame, list[str], float]:
    """(drawn rows, series dropped, share of drawn points suppressed): all but the top five
    series are dropped when most points are suppressed and there are more than five."""
    share = suppressed_share(rows, is_rate=is_rate, symbol=symbol)
    if series is None or share <= MOSTLY_SUPPRESSED or rows[series].n_unique() <= TOP_SERIES:
        return rows, [], share
    kept, dropped = top_series(rows, series, is_rate=is_rate, symbol=symbol)
    drawn = rows.filter(pl.col(series).is_in(kept))
    return drawn, dropped, suppressed_share(drawn, is_rate=is_rate, symbol=symbol)


def mostly_suppressed(
    rows: pl.DataFrame, series: str | None, *, is_rate: bool, symbol: str = "c"
) -> bool:
    """Whether more than half of what a chart would draw is suppressed, even after dropping
    all but the top five series."""
    return shed(rows, series, is_rate=is_rate, symbol=symbol)[2] > MOSTLY_SUPPRESSED


def plan_trend(
    tables: dict[str, pl.DataFrame],
    asked: str,
    series: str | None,
    *,
    is_rate: bool,
    symbol: str = "c",
    series_title: str = "",
) -> TrendView:
    """Choose the grain and series of a trend chart. `tables` maps each grain tried (the
    one asked for, then each coarser one, as `COARSER` chains them) to its chartable rows;
    the first grain at which at most half the drawn points are suppressed wins, shedding
    all but the top five series first where there are more. "Other" is not drawn: it could
    only be the total minus the series shown, a difference that would undo suppression."""
    notes: list[str] = []
    grain = asked
    while True:
        rows = tables[grain]
        drawn, dropped, share = shed(rows, series, is_rate=is_rate, symbol=symbol)
        nxt = COARSER.get(grain)
        if share <= MOSTLY_SUPPRESSED or nxt is None or nxt not in tables:
            break
        k = int(suppressed(drawn, is_rate=is_rate, symbol=symbol).sum())
        notes.append(
            f"Most {GRAIN_WORDS[grain][0]} figures for this selection are suppressed ({k} of "
            f"{drawn.height} shown as c), so the chart shows {GRAIN_WORDS[nxt][1]} instead."
        )
        grain = nxt
    if dropped and series is not None:
        notes.append(
            f"The chart shows the {drawn[series].n_unique()} {series_title or 'series'} with "
            f"the most published figures; the other {len(dropped)} ({join_words(dropped)}) "
            "are mostly suppressed and are in the table below. They are not added up as "
            '"other": that would be the total minus the groups shown, which could reveal '
            "suppressed figures."
        )
    if share > MOSTLY_SUPPRESSED and drawn.height:
        notes.append(
            f"Even so, most figures here are suppressed ({share:.0%}): there are too few to "
            "publish at this level of detail. Suppressed figures are marked on the chart."
        )
    return TrendView(grain, rows, drawn, tuple(dropped), tuple(notes))


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


def fmt_value(value: float, *, is_rate: bool, unit: str = "") -> str:
    return f"{value:.1f}{unit}" if is_rate else f"{value:,.0f}"


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
    """One sentence about the last two complete periods of a series (`points` holds complete
    periods only, consecutive, None where suppressed). A change is described only when both
    are published."""
    if not points:
        return f"{label}: no complete periods in this release"
    last, value = points[-1]
    if value is None:
        return f"{label}: the figure for {last} is suppressed (too few to publish)"
    shown = fmt_value(value, is_rate=is_rate, unit=unit)
    if len(points) == 1:
        return f"{label}: {shown} in {last}"
    prev_p, prev_v = points[-2]
    if prev_v is None:
        return f"{label}: {shown} in {last} (no change given: {prev_p} is suppressed)"
    phrase = change_phrase(Change(value, prev_v), is_rate=is_rate, unit=unit)
    if not is_rate and phrase.startswith(("rose", "fell", "stayed")):
        phrase += f" to {shown}" if not phrase.startswith("stayed") else f" at {shown}"
    return f"{label} {phrase} in {last} compared with {prev_p}"


# --- what a chart and its table show --------------------------------------------------


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


def cross_tab(shown: pl.DataFrame, rows: Sequence[str], column: str, value: str) -> pl.DataFrame:
    """`shown` (a reader's table) with one column per value of `column` and `value` in its
    cells, exactly as published (symbols included), rows and columns in the table's own
    order."""
    order = shown[column].unique(maintain_order=True).to_list()
    if not rows:
        wide = shown.select(column, value).transpose(column_names=column)
        return wide.select(order)
    wide = shown.pivot(on=column, index=list(rows), values=value, aggregate_function=None)
    return wide.select(*rows, *[c for c in order if c in wide.columns])


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
    suppressed_rows: int | None = None,
) -> str:
    """Alt text: what is plotted, the range, the highest and lowest points, and how many
    values are suppressed (marked c on the chart)."""
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
    hidden = data.height - valid.height if suppressed_rows is None else suppressed_rows
    if hidden:
        parts.append(
            f"{hidden} value{'s' if hidden != 1 else ''} suppressed (c), marked with a cross "
            "on the axis"
        )
    return "; ".join(parts) + ". The same figures are in the table below the chart."


# --- headline figures and release comparison ---------------------------------------------


def latest_two(
    dim: str,
    values: Sequence[str],
    data_as_at: date | None,
    *,
    partial: Iterable[str] = (),
    covers: tuple[date, date] | None = None,
) -> tuple[str | None, str | None]:
    """The latest complete period and the one before it (None where there is none)."""
    done = complete_periods(dim, values, data_as_at, partial=partial, covers=covers)
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
    period: str | None = None
    suppressed: bool = False  # the value is `c`: the delta line says why, in place
    note: str | None = None  # shown under the figure (no comparison, an incomplete year)


def headline_figure(
    title: str,
    data: pl.DataFrame,
    dim: str,
    current: str | None,
    previous: str | None,
    *,
    is_rate: bool,
    rate_per: int | None,
    threshold: int = 10,
    partial: Sequence[str] = (),
) -> Headline:
    """A metric tile: the protected value for `current` and its change from `previous`
    (never across a suppressed or incomplete year)."""
    values = dict(series(data, dim, is_rate=is_rate))
    cur = values.get(current) if current else None
    prev = values.get(previous) if previous else None
    later = [p for p in partial if p not in (current, previous)]
    note = (
        f"{join_words(later)} {'is' if len(later) == 1 else 'are'} not complete yet."
        if later
        else None
    )
    if current is None:
        # GSS "x": not available (no complete year yet), not a suppressed figure.
        return Headline(title, "x", None, f"{title}: no complete financial year yet.", None,
                        note=note)  # fmt: skip
    if cur is None:
        based = "based on fewer than" if is_rate else "fewer than"
        return Headline(
            title,
            "c",
            f"suppressed: {based} {threshold} in {current}, too few to publish",
            f"{title}, {current}: c means suppressed by disclosure control.",
            current,
            suppressed=True,
            note=note,
        )
    if is_rate:
        unit = rate_unit(rate_per)
        value = f"{cur:.1f}{unit}"
        diff = Change(cur, prev).difference
        delta = (
            None
            if diff is None
            else f"{diff:+.1f}{' percentage points' if unit == '%' else unit} on {previous}"
        )
    else:
        value = fmt_number(cur)
        ratio = Change(cur, prev).ratio
        delta = None if ratio is None else f"{ratio:+.0%} on {previous}"
    if previous is not None and prev is None:
        note = f"No change given: {previous} is suppressed." + (f" {note}" if note else "")
    return Headline(title, value, delta, f"{title}, {current}.", current, note=note)


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
