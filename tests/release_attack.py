"""The attacker who compares two releases, cell by cell.

Shared by tests/test_revisions_attack.py and benchmarks/bench_release_attack.py, and
deliberately independent of the release code it attacks (it only asks `tabulate` for
tables, as any user can), so the same code measures the releases before and after the
revisions policy.

What the attacker does:
1. publishes everything: every measure by every allowed breakdown, alone and in pairs
   (`by=(a, b)` with margins gives the 2-D cells, both 1-D margins and the total), for
   both releases;
2. differences them: which cells changed, which went from a number or `c` to `0`
   (a certain statement that every unit once counted there is gone), and which of the
   changed cells lie in periods the first release had already closed;
3. the averaging attack on a removed person's characteristics: a removed person lowers
   the true count by one in every cell containing him, so the signed differences summed
   over every cell with `ward = w` (1-D and 2-D cells, every measure) are lowest for his
   ward, even if each cell's noise was redrawn. The guess is the value with the lowest
   sum (rule "sum") or the lowest sum per square root of the cells summed (rule "z",
   which does not favour values with many cells); `c` is read as the middle of its range
   and `0` as 0, and a `0` that became `c` (the rule for zeros of revised history, not a
   change) is left out.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import polars as pl

Cell = frozenset[tuple[str, str]]
Key = tuple[str, Cell]  # (measure, cell)
TIME_DIMS = ("month", "quarter", "year", "financial_year")
ATTRIBUTES = ("ward", "age_band", "sex", "ethnicity")

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_CAL_Q = re.compile(r"^(\d{4})-Q([1-4])$")
_FIN_Q = re.compile(r"^(\d{4})/(\d{2}) Q([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")
_FY = re.compile(r"^(\d{4})/(\d{2})$")


def _month_end(year: int, month: int) -> date:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    return date.fromordinal(nxt.toordinal() - 1)


def period_end(dim: str, value: str) -> date | None:
    """The last day of a time-dimension value (the attacker's own copy, so that this
    module does not depend on the code it attacks)."""
    if dim == "month" and (m := _MONTH.match(value)):
        return _month_end(int(m[1]), int(m[2]))
    if dim == "quarter" and (m := _CAL_Q.match(value)):
        return _month_end(int(m[1]), 3 * int(m[2]))
    if dim == "quarter" and (m := _FIN_Q.match(value)):
        month = 3 * int(m[3]) + 3  # financial Q1 = April to June
        return _month_end(int(m[1]) + (month > 12), (month - 1) % 12 + 1)
    if dim == "year" and (m := _YEAR.match(value)):
        return date(int(m[1]), 12, 31)
    if dim == "financial_year" and (m := _FY.match(value)):
        return date(int(m[1]) + 1, 3, 31)
    return None


def cell_period_end(cell: Cell) -> date | None:
    """End of the period a cell is confined to (None: it covers all time)."""
    ends = [e for d, v in cell if d in TIME_DIMS and (e := period_end(d, v)) is not None]
    return min(ends) if ends else None


# --- publishing every table ----------------------------------------------------------------


AskTable = Callable[[str, tuple[str, ...]], pl.DataFrame]  # (measure, by) -> table.data


def table_plan(
    breakdowns: Mapping[str, Sequence[str]], max_dims: int = 2
) -> list[tuple[str, tuple[str, ...]]]:
    """Every (measure, by) the attacker asks: each combination of `max_dims` breakdowns
    with margins (which also yields every smaller combination and the total)."""
    plan = []
    for measure, dims in sorted(breakdowns.items()):
        k = min(max_dims, len(dims))
        plan.extend((measure, combo) for combo in itertools.combinations(dims, k))
    return plan


def published_cells(
    ask: AskTable,
    breakdowns: Mapping[str, Sequence[str]],
    *,
    max_dims: int = 2,
    total_label: str = "Total",
    only_with: Sequence[str] = (),
) -> dict[Key, str]:
    """Every published cell of every measure (margins included), as shown. only_with: ask
    only for tables that break down by at least one of these (what an attack on those
    characteristics uses)."""
    out: dict[Key, str] = {}
    for measure, by in table_plan(breakdowns, max_dims):
        if only_with and not set(by) & set(only_with):
            continue
        data = ask(measure, by)
        for row in data.select(*by, "count").iter_rows(named=True):
            cell = frozenset((d, row[d]) for d in by if row[d] != total_label)
            out[(measure, cell)] = row["count"]
    return out


def true_cells(cubes: Mapping[str, pl.DataFrame], keys: Iterable[Key]) -> dict[Key, int]:
    """The true count of each (measure, cell) from the release cubes (`n`)."""
    by_measure: dict[str, list[Cell]] = {}
    for measure, cell in keys:
        by_measure.setdefault(measure, []).append(cell)
    out: dict[Key, int] = {}
    for measure, cells in by_measure.items():
        cube = cubes[measure]
        groups: dict[tuple[str, ...], list[Cell]] = {}
        for cell in cells:
            groups.setdefault(tuple(sorted(d for d, _ in cell)), []).append(cell)
        for dims, group in groups.items():
            if not dims:
                total = int(cube["n"].sum()) if cube.height else 0
                for cell in group:
                    out[(measure, cell)] = total
                continue
            sums = cube.group_by(list(dims)).agg(pl.col("n").sum())
            lookup = {tuple(r[:-1]): int(r[-1]) for r in sums.iter_rows()}
            for cell in group:
                values = dict(cell)
                out[(measure, cell)] = lookup.get(tuple(values[d] for d in dims), 0)
    return out


def release_cubes(store: Any, release_id: str) -> dict[str, pl.DataFrame]:
    """Every true-count cube of a release: what the evaluation (not the attacker) uses to
    say which changed cells really contain a removed person."""
    return {m: store.read_cube(release_id, m) for m in store.read_meta(release_id)}


# --- differencing ---------------------------------------------------------------------------


@dataclass
class Comparison:
    cells_before: int
    cells_after: int
    common: int
    changed: int
    changed_closed: int  # changed cells confined to periods closed by the first release
    to_zero: int  # a number or c -> 0
    c_to_zero: int
    number_to_zero: int
    changed_cells: list[Key] = field(default_factory=list)
    to_zero_cells: list[Key] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.changed:,} of {self.common:,} cells changed "
            f"({self.changed_closed:,} in periods closed by the first release); "
            f"{self.to_zero:,} went to 0 ({self.c_to_zero:,} from c, "
            f"{self.number_to_zero:,} from a number); "
            f"{self.cells_before:,} cells before, {self.cells_after:,} after"
        )


def compare(
    before: Mapping[Key, str],
    after: Mapping[Key, str],
    *,
    closed_before: date | None,
    symbol: str = "c",
) -> Comparison:
    common = [k for k in before if k in after]
    changed = [k for k in common if before[k] != after[k]]
    to_zero = [k for k in changed if after[k] == "0"]
    closed = [
        k
        for k in changed
        if closed_before is not None
        and (end := cell_period_end(k[1])) is not None
        and end < closed_before
    ]
    return Comparison(
        cells_before=len(before),
        cells_after=len(after),
        common=len(common),
        changed=len(changed),
        changed_closed=len(closed),
        to_zero=len(to_zero),
        c_to_zero=sum(before[k] == symbol for k in to_zero),
        number_to_zero=sum(before[k] != symbol for k in to_zero),
        changed_cells=changed,
        to_zero_cells=to_zero,
    )


# --- the averaging attack on characteristics ---------------------------------------------------


def _as_number(value: str, *, symbol: str, threshold: int, max_noise: int) -> float:
    if value == symbol:
        return (1 + threshold - 1 + max_noise) / 2  # the middle of c's range
    return float(value)


def attribute_scores(
    before: Mapping[Key, str],
    after: Mapping[Key, str],
    attribute: str,
    *,
    symbol: str,
    threshold: int,
    max_noise: int,
    max_cell_dims: int = 2,
    closed_before: date | None = None,
    value_map: Mapping[str, str] | None = None,
    rule: str = "sum",
) -> dict[str, float]:
    """Sum, over every cell with `attribute = v` published in both releases, of the signed
    change; one score per value v (lowest: where the removed records most likely were).
    rule "z": the sum divided by the square root of the number of cells, so that a value
    with many cells (and so much more noise in its sum) is not picked for its noise.

    closed_before: use only cells confined to periods that ended before this date, where
    new records cannot arrive, so every change is a removal, a correction or noise.
    value_map: codes to the attacker's categories (e.g. ethnicity codes to major groups)."""
    scores: dict[str, float] = {}
    counts: dict[str, int] = {}
    for key, old in before.items():
        new = after.get(key)
        if new is None:
            continue
        cell = dict(key[1])
        if attribute not in cell or len(cell) > max_cell_dims:
            continue
        if closed_before is not None:
            end = cell_period_end(key[1])
            if end is None or end >= closed_before:
                continue
        if old == "0" and new == symbol:
            continue  # a zero of revised history shown as c: the rule, not a change
        diff = _as_number(
            new, symbol=symbol, threshold=threshold, max_noise=max_noise
        ) - _as_number(old, symbol=symbol, threshold=threshold, max_noise=max_noise)
        v = cell[attribute]
        v = value_map.get(v, v) if value_map else v
        scores[v] = scores.get(v, 0.0) + diff
        counts[v] = counts.get(v, 0) + 1
    if rule == "z":
        return {v: scores[v] / counts[v] ** 0.5 for v in scores}
    return scores


def guess(scores: Mapping[str, float], prior: Mapping[str, float]) -> str | None:
    """The value with the lowest score; ties go to the likelier value a priori."""
    if not scores:
        return None
    return min(scores, key=lambda v: (scores[v], -prior.get(v, 0.0), v))


@dataclass
class AttributeResult:
    attribute: str
    targets: int
    hits: int  # the attacker's guess equals the target's value
    chance_hits: float  # expected hits of the best blind guess (the population's mode)
    mode: str
    mode_share: float
    mode_hits: int = 0  # hits the blind guess actually scored on these same targets

    @property
    def rate(self) -> float:
        return self.hits / self.targets if self.targets else 0.0

    def summary(self) -> str:
        return (
            f"{self.attribute}: attacker right for {self.hits} of {self.targets} "
            f"({self.rate:.1%}); chance (always guess the population's mode "
            f"{self.mode!r}, {self.mode_share:.1%} of people) {self.chance_hits:.1f} expected, "
            f"{self.mode_hits} on these targets"
        )


def score_attack(
    trials: Sequence[tuple[Mapping[str, str | None], Mapping[str, Mapping[str, str]]]],
    priors: Mapping[str, Mapping[str, float]],
) -> dict[str, AttributeResult]:
    """trials: (attacker's guess per attribute, {target: {attribute: true value}}).
    priors: the population's share of each value per attribute."""
    out = {}
    for attribute, prior in priors.items():
        mode = max(prior, key=lambda v: (prior[v], v))
        hits = targets = mode_hits = 0
        for guesses, people in trials:
            for values in people.values():
                truth = values.get(attribute)
                if truth is None:
                    continue
                targets += 1
                hits += guesses.get(attribute) == truth
                mode_hits += truth == mode
        out[attribute] = AttributeResult(
            attribute, targets, hits, targets * prior[mode], mode, prior[mode], mode_hits
        )
    return out


def shares(values: Iterable[str]) -> dict[str, float]:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    total = sum(counts.values())
    return {k: c / total for k, c in counts.items()}
