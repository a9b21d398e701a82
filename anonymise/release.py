"""The only door to published numbers: protected tables from a release.

`tabulate` answers "measure M, broken down by these dimensions, filtered to these
values" from the release cube of M alone, and returns a `ProtectedTable`: every
count perturbed by the cell key method, small counts suppressed, rates computed
from protected counts only, GSS symbols, footnotes, and the policy and release
that produced it. Nothing here returns a true count.

What a user can ask for is deliberately a fixed lattice of cells: each table fixes
at most `max_table_dims` dimensions (breakdowns and filters together) and a filter
either picks one value or, for a dimension that is also a breakdown, picks which
rows to show. A filter that aggregates several values into one cell (a custom
grouping) is refused: every such union would be a new, independently perturbed
cell, and enough of them let an attacker average the noise away.
"""

from __future__ import annotations

import itertools
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl

from anonymise import cellkey
from anonymise.policy import Policy
from anonymise.ports import ReleaseStore
from registry.dimensions import DIMENSIONS
from registry.errors import ReleaseValidationError, StoreError, UnknownMeasureError
from registry.measures import MeasureMeta, validate_release
from registry.periods import (
    COARSEST_FIRST,
    TIME_DIMENSIONS,
    describe,
    describe_span,
    period_bounds,
    period_start,
)

_PARENTS = {d.name: d.parents for d in DIMENSIONS}
# Documented categories in their natural order ("Under 1" before "1-4").
_ORDER = {d.name: {v: i for i, v in enumerate(d.levels)} for d in DIMENSIONS}
_TOTAL_SORT = np.iinfo(np.int32).max


class QueryError(ValueError):
    """A table request names a breakdown, filter or value the measure does not allow."""

    def __init__(self, measure: str, problems: list[str]) -> None:
        self.measure = measure
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"cannot tabulate {measure!r}:\n{lines}")


class NoReleaseError(StoreError, LookupError):
    """The store has no published release yet."""


@dataclass(frozen=True, eq=False)
class CubeSet:
    """An in-memory release (the cubes and metadata `Store.write_release` would store),
    for previews and tests. Validated exactly as a stored release is."""

    cubes: Mapping[str, pl.DataFrame]  # LazyFrames are collected on creation
    meta: Mapping[str, MeasureMeta]
    release_id: str | None = None
    data_as_at: date | None = None
    kind: str = "routine"
    revised_through: date | None = None
    revision_note: str | None = None

    def __post_init__(self) -> None:
        cubes = {
            name: c.collect() if isinstance(c, pl.LazyFrame) else c
            for name, c in self.cubes.items()
        }
        object.__setattr__(self, "cubes", cubes)
        problems = validate_release(cubes, self.meta)
        if problems:
            raise ReleaseValidationError(problems)


@dataclass(frozen=True, eq=False)
class ProtectedTable:
    """A table safe to show or download.

    `data` has one text column per breakdown (`total_label` in margin rows), then
    `count` (a number as text or a symbol) and `count_value` (Int64, null where a
    symbol is shown); for a rate measure also `denominator`, `denominator_value`,
    `rate` and `rate_value` (Float64)."""

    measure: str
    title: str
    unit: str
    by: tuple[str, ...]
    where: tuple[tuple[str, tuple[str, ...]], ...]
    margins: bool
    data: pl.DataFrame
    footnotes: tuple[str, ...]
    policy_id: str
    release_id: str | None
    data_as_at: date | None
    ptable_id: str
    is_rate: bool = False
    rate_per: int | None = None
    # First and last day the measure's published periods cover (None: no time dimension).
    covers: tuple[date, date] | None = None
    # Periods shown in (or filtered to by) this table that were not complete by the data
    # date, per time dimension: they are not comparable with whole periods and must not
    # lead a headline. Empty when every period is complete.
    partial_periods: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Rows whose share was capped at 100% (see docs/disclosure-control.md).
    capped: int = 0
    revision: bool = False  # the release is a revision (see the first footnote)
    revised_through: date | None = None  # history before this date has been revised

    @property
    def value_columns(self) -> tuple[str, ...]:
        cols: tuple[str, ...] = ("count", "count_value")
        if self.is_rate:
            cols += ("denominator", "denominator_value", "rate", "rate_value")
        return cols


# --- loading and caching cubes ------------------------------------------------------------


def _natural_key(value: str) -> tuple[tuple[int, Any], ...]:
    # "5-9" before "10-15"; "2024-02" before "2024-10".
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part.lower())
        for part in re.split(r"(\d+)", value)
        if part
    )


def _ordered(dim: str, values: Iterable[str]) -> list[str]:
    """Values in the dimension's documented order when they are all documented
    categories ("Under 1" before "1-4"), else in natural order."""
    order = _ORDER.get(dim, {})
    vals = list(values)
    if order and all(v in order for v in vals):
        return sorted(vals, key=order.__getitem__)
    return sorted(vals, key=_natural_key)


@dataclass(eq=False)
class _LoadedCube:
    release_id: str | None
    meta: MeasureMeta
    frame: pl.DataFrame  # dims as pl.Enum in natural order, n, ckey (TRUE counts)
    levels: dict[str, tuple[str, ...]]
    _combos: dict[tuple[str, ...], pl.DataFrame] = field(default_factory=dict)

    @classmethod
    def build(cls, release_id: str | None, meta: MeasureMeta, cube: pl.DataFrame) -> _LoadedCube:
        dims = list(meta.breakdowns)
        levels = {d: tuple(_ordered(d, cube[d].unique().to_list())) for d in dims}
        frame = cube.select(
            *(pl.col(d).cast(pl.Enum(levels[d])) for d in dims),
            pl.col("n").cast(pl.Int64),
            pl.col("ckey").cast(pl.Int64),
        )
        return cls(release_id, meta, frame, levels)

    def combos(self, dims: tuple[str, ...]) -> pl.DataFrame:
        """Distinct observed combinations of `dims` (as text)."""
        if dims not in self._combos:
            self._combos[dims] = (
                self.frame.select(dims)
                .unique()
                .with_columns(pl.col(d).cast(pl.String) for d in dims)
            )
        return self._combos[dims]


class _CubeCache:
    """Cubes per (store, release, measure), newest use last. Releases never change
    once committed, so an entry never goes stale."""

    def __init__(self, maxsize: int = 32) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[tuple[str, str, str], _LoadedCube] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, store: ReleaseStore, release_id: str, measure: str) -> _LoadedCube:
        key = (store.cache_key, release_id, measure)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        meta = store.read_measure_meta(release_id, measure)
        loaded = _LoadedCube.build(release_id, meta, store.read_cube(release_id, measure))
        with self._lock:
            self._items[key] = loaded
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)
        return loaded

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_STORE_CACHE = _CubeCache()
_CUBESET_CACHE: weakref.WeakKeyDictionary[CubeSet, dict[str, _LoadedCube]] = (
    weakref.WeakKeyDictionary()
)


def clear_cache() -> None:
    """Forget every cached cube (tests; a long-running portal never needs to)."""
    _STORE_CACHE.clear()
    _CUBESET_CACHE.clear()
    _CHANGES.clear()


@dataclass(frozen=True)
class _ReleaseView:
    release_id: str | None
    data_as_at: date | None
    kind: str = "routine"
    revised_through: date | None = None
    revision_note: str | None = None
    reference: str | None = None  # the release whose values stand for immaterial changes
    materiality: int = 0


def _loader(source: ReleaseStore | CubeSet, release_id: str | None) -> tuple[Any, _ReleaseView]:
    if isinstance(source, CubeSet):
        per_set = _CUBESET_CACHE.setdefault(source, {})

        def load_set(measure: str) -> _LoadedCube:
            if measure not in source.meta:
                raise QueryError(measure, [f"no measure {measure!r}; have {sorted(source.meta)}"])
            if measure not in per_set:
                per_set[measure] = _LoadedCube.build(
                    source.release_id, source.meta[measure], source.cubes[measure]
                )
            return per_set[measure]

        view = _ReleaseView(
            source.release_id,
            source.data_as_at,
            source.kind,
            source.revised_through,
            source.revision_note,
        )
        return load_set, view
    if isinstance(source, ReleaseStore):
        info = source.get_release(release_id) if release_id else source.latest_release()
        if info is None:
            raise NoReleaseError("the store has no published release yet")
        rid = info.release_id

        def load_store(measure: str) -> _LoadedCube:
            return _STORE_CACHE.get(source, rid, measure)

        view = _ReleaseView(
            rid,
            info.data_as_at,
            info.kind,
            info.revised_through,
            info.revision_note,
            info.reference_release,
            info.materiality,
        )
        return load_store, view
    raise TypeError(f"tabulate needs a Store or a CubeSet, got {type(source).__name__}")


# --- the query --------------------------------------------------------------------------


def _normalise(
    by: Sequence[str] | str, where: Mapping[str, str | Sequence[str]] | None
) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    by_t = (by,) if isinstance(by, str) else tuple(by)
    where_t: dict[str, tuple[str, ...]] = {}
    for dim, values in (where or {}).items():
        where_t[dim] = (values,) if isinstance(values, str) else tuple(values)
    return by_t, where_t


def _check_query(
    measure: str,
    cubes: Sequence[_LoadedCube],
    by: tuple[str, ...],
    where: dict[str, tuple[str, ...]],
    policy: Policy,
) -> None:
    meta = cubes[0].meta
    allowed = meta.breakdowns
    problems: list[str] = []
    if len(set(by)) != len(by):
        problems.append(f"a breakdown is repeated in {list(by)}")
    for dim in by:
        if dim not in allowed:
            problems.append(f"breakdown {dim!r} is not allowed; allowed: {', '.join(allowed)}")
    for dim, values in where.items():
        if dim not in allowed:
            problems.append(f"filter {dim!r} is not allowed; allowed: {', '.join(allowed)}")
            continue
        if not values:
            problems.append(f"filter {dim!r} has no values")
            continue
        if len(values) > 1 and dim not in by:
            problems.append(
                f"filter {dim!r} has several values but {dim!r} is not a breakdown: "
                "adding values together into one cell (a custom grouping) is not allowed; "
                f"add {dim!r} to the breakdowns or use a coarser dimension"
            )
        known = set().union(*(set(c.levels.get(dim, ())) for c in cubes))
        unknown = [v for v in values if not isinstance(v, str) or v not in known]
        if unknown:
            sample = sorted(known, key=_natural_key)[:20]
            problems.append(f"filter {dim!r}: unknown value(s) {unknown}; values include {sample}")
    for dim in by:
        if any(policy.total_label in c.levels.get(dim, ()) for c in cubes):
            problems.append(
                f"breakdown {dim!r} has a value {policy.total_label!r}, which would be "
                "mistaken for a total row"
            )
    limit = min(policy.max_table_dims, meta.max_dims or policy.max_table_dims)
    fixed = set(by) | set(where)
    if len(fixed) > limit:
        problems.append(
            f"a table may use at most {limit} dimensions (breakdowns and filters together); "
            f"this one uses {len(fixed)}: {sorted(fixed)}"
        )
    if problems:
        raise QueryError(measure, problems)


def _blocks(dims: Sequence[str]) -> list[tuple[str, ...]]:
    """Group dimensions linked by nesting (ward in locality) so the grid holds only
    combinations that exist."""
    parent = {d: d for d in dims}

    def root(d: str) -> str:
        while parent[d] != d:
            d = parent[d]
        return d

    for d in dims:
        for p in _PARENTS.get(d, ()):
            if p in parent:
                parent[root(d)] = root(p)
    groups: dict[str, list[str]] = {}
    for d in dims:
        groups.setdefault(root(d), []).append(d)
    return [tuple(g) for g in groups.values()]


def _grid(
    cubes: Sequence[_LoadedCube], by: tuple[str, ...], where: dict[str, tuple[str, ...]]
) -> pl.DataFrame:
    """Every row the table shows (as text), empty cells included."""
    grid: pl.DataFrame | None = None
    for block in _blocks([*by, *(d for d in where if d not in by)]):
        block_by = tuple(d for d in block if d in by)
        if not block_by:
            continue
        parts = [c.combos(block) for c in cubes]
        combos = pl.concat(parts).unique() if len(parts) > 1 else parts[0]
        for d in block:
            if d in where:
                combos = combos.filter(pl.col(d).is_in(where[d]))
        combos = combos.select(block_by).unique()
        grid = combos if grid is None else grid.join(combos, how="cross")
    if grid is None:
        return pl.DataFrame()
    return grid


def _cells(
    cube: _LoadedCube,
    grid: pl.DataFrame,
    by: tuple[str, ...],
    where: dict[str, tuple[str, ...]],
    margins: bool,
) -> pl.DataFrame:
    """True count and cell key of every cell of the table, margins included: each cell
    is aggregated from the cube itself (its own key), never from protected parts.

    A filter on a breakdown only selects rows (through the grid); totals over that
    breakdown cover all its values, so every total is a cell of the lattice too."""
    f = cube.frame.lazy()
    for dim, values in where.items():
        if dim in by:
            continue
        levels = set(cube.levels[dim])
        # A value known only to the denominator's cube selects nothing here.
        f = f.filter(pl.col(dim).is_in([v for v in values if v in levels]))
    sums = (pl.col("n").sum().alias("n"), pl.col("ckey").sum().alias("ckey"))
    zero = (pl.col("n").fill_null(0), pl.col("ckey").fill_null(0))
    if not by:
        return (
            f.select(*sums)
            .collect()
            .with_columns(*zero)
            .with_columns(pl.col("ckey") % cellkey.KEY_MODULUS)
        )
    agg = f.group_by(by).agg(*sums).with_columns(pl.col(d).cast(pl.String) for d in by).collect()
    parts = [grid.join(agg, on=list(by), how="left").with_columns(*zero)]
    if margins:
        for k in range(len(by) - 1, -1, -1):
            for keep in itertools.combinations(by, k):
                if keep:
                    sub = agg.group_by(keep).agg(*sums)
                    rows = grid.select(keep).unique()
                    part = rows.join(sub, on=list(keep), how="left").with_columns(*zero)
                else:
                    part = agg.select(*sums).with_columns(*zero)
                parts.append(
                    part.with_columns(pl.lit(None, pl.String).alias(d) for d in by if d not in keep)
                )
    out = pl.concat([p.select(*by, "n", "ckey") for p in parts], how="vertical")
    return out.with_columns(pl.col("ckey") % cellkey.KEY_MODULUS)


def _protect(
    cells: pl.DataFrame, ptable: cellkey.PerturbationTable, policy: Policy, prefix: str
) -> pl.DataFrame:
    """`cells` with its true count and cell key replaced by the protected value."""
    values, suppressed = cellkey.protect_counts(
        cells["n"].to_numpy(), cells["ckey"].to_numpy(), ptable, policy.threshold
    )
    shown = np.where(suppressed, policy.symbols.confidential, values.astype(str))
    hidden = pl.Series(f"_{prefix}_suppressed", suppressed, dtype=pl.Boolean)
    return cells.drop("n", "ckey").with_columns(
        pl.Series(prefix, shown, dtype=pl.String),
        pl.Series(f"{prefix}_value", values, dtype=pl.Int64).set(hidden, None),
        hidden,
    )


def _revised_history(
    cells: pl.DataFrame,
    by: tuple[str, ...],
    where: dict[str, tuple[str, ...]],
    revised_through: date,
) -> pl.Series:
    """Whether each cell covers some period before `revised_through`: a cell fixing no time
    dimension covers all time; otherwise its period starts at the latest start of the time
    values it fixes (breakdown values in the row, single-value filters)."""
    starts: list[pl.Expr] = []
    for d in TIME_DIMENSIONS:
        if d in by:
            values = cells[d].drop_nulls().unique().to_list()
            mapping = {v: period_start(d, v) for v in values}
            starts.append(pl.col(d).replace_strict(mapping, default=None, return_dtype=pl.Date))
        elif d in where and len(where[d]) == 1:
            starts.append(pl.lit(period_start(d, where[d][0]), dtype=pl.Date))
    if not starts:
        return pl.Series("_revised", [True] * cells.height, dtype=pl.Boolean)
    start = pl.max_horizontal(*starts)
    return cells.select(
        (start.is_null() | (start < pl.lit(revised_through))).alias("_revised")
    ).to_series()


def _zeros_as_confidential(
    table: pl.DataFrame, prefix: str, revised: pl.Series, symbol: str
) -> pl.DataFrame:
    """In revised history a true zero is shown as the confidential symbol."""
    zero = (table[f"{prefix}_value"] == 0).fill_null(False) & revised
    return table.with_columns(
        pl.when(zero).then(pl.lit(symbol)).otherwise(pl.col(prefix)).alias(prefix),
        pl.when(zero).then(None).otherwise(pl.col(f"{prefix}_value")).alias(f"{prefix}_value"),
        (pl.col(f"_{prefix}_suppressed") | zero).alias(f"_{prefix}_suppressed"),
    )


_MAX_REFERENCE_DEPTH = 50


def _reference_cubes(
    source: ReleaseStore | CubeSet, view: _ReleaseView, measures: Sequence[str]
) -> list[_LoadedCube]:
    """The cubes of the same measures in every release this one refers back to (its
    dimension levels and combinations stay on offer; their counts are never shown here)."""
    out: list[_LoadedCube] = []
    seen: set[str] = set()
    ref = view.reference
    while ref and isinstance(source, ReleaseStore) and ref not in seen:
        if len(seen) >= _MAX_REFERENCE_DEPTH:
            raise StoreError(
                f"release {view.release_id}: the chain of reference releases is too long"
            )
        seen.add(ref)
        load, ref_view = _loader(source, ref)
        for m in measures:
            try:
                out.append(load(m))
            except UnknownMeasureError:
                continue
        ref = ref_view.reference
    return out


def _shown(
    source: ReleaseStore | CubeSet,
    view: _ReleaseView,
    load: Any,
    measure: str,
    grid: pl.DataFrame,
    by: tuple[str, ...],
    where: dict[str, tuple[str, ...]],
    margins: bool,
    ptable: cellkey.PerturbationTable,
    policy: Policy,
    prefix: str,
    depth: int = 0,
) -> pl.DataFrame:
    """What a release shows for each cell of the table, in `_cells` order: the breakdown
    columns, `prefix`, `{prefix}_value` and `_{prefix}_suppressed`."""
    cells = _cells(load(measure), grid, by, where, margins)
    table = _protect(cells, ptable, policy, prefix)
    if view.revised_through is None:
        return table
    revised = _revised_history(cells, by, where, view.revised_through)
    table = _zeros_as_confidential(table, prefix, revised, policy.symbols.confidential)
    if not (view.materiality > 0 and view.reference and isinstance(source, ReleaseStore)):
        return table
    if depth >= _MAX_REFERENCE_DEPTH:
        raise StoreError(f"release {view.release_id}: the chain of reference releases is too long")
    changes = _CHANGES.get(source, view.release_id or "", measure)
    if changes is None:
        return table  # nothing of this measure to hold back (new in this series)
    people = _changed_people(changes, cells, by, where, margins)
    stands = (pl.Series("_revised", revised) & (people < view.materiality)).fill_null(False)
    if not stands.any():
        return table
    ref_load, ref_view = _loader(source, view.reference)
    try:
        ref = _shown(
            source, ref_view, ref_load, measure, grid, by, where, margins, ptable, policy,
            prefix, depth + 1,
        )  # fmt: skip
    except UnknownMeasureError:
        return table  # the measure was not published before: nothing stands
    cols = [prefix, f"{prefix}_value", f"_{prefix}_suppressed"]
    if by:
        ref_cols = ref.select(*by, *(pl.col(c).alias(f"{c}_ref") for c in cols))
        joined = (
            table.with_row_index("_i")
            .join(ref_cols, on=list(by), how="left", nulls_equal=True)
            .sort("_i")
        )
    else:
        joined = pl.concat(
            [table, ref.select(*(pl.col(c).alias(f"{c}_ref") for c in cols))], how="horizontal"
        )
    return joined.with_columns(
        pl.when(stands).then(pl.col(f"{c}_ref")).otherwise(pl.col(c)).alias(c) for c in cols
    ).select(table.columns)


def _changed_people(
    changes: pl.DataFrame,
    cells: pl.DataFrame,
    by: tuple[str, ...],
    where: dict[str, tuple[str, ...]],
    margins: bool,
) -> pl.Series:
    """For each cell (in `_cells` order), how many different people changed in it."""
    f = changes
    for dim, values in where.items():
        if dim not in by:
            f = f.filter(pl.col(dim).is_in(list(values)))
    people = pl.col("subject_hash").n_unique().cast(pl.Int64).alias("_people")
    if not by:
        return pl.Series("_people", [f.select(people).item() if f.height else 0], dtype=pl.Int64)
    parts = [f.group_by(list(by)).agg(people)]
    if margins:
        for k in range(len(by) - 1, -1, -1):
            for keep in itertools.combinations(by, k):
                part = f.group_by(list(keep)).agg(people) if keep else f.select(people)
                parts.append(
                    part.with_columns(pl.lit(None, pl.String).alias(d) for d in by if d not in keep)
                )
    counts = pl.concat([p.select(*by, "_people") for p in parts], how="vertical")
    return (
        cells.select(*by)
        .with_row_index("_i")
        .join(counts, on=list(by), how="left", nulls_equal=True)
        .sort("_i")["_people"]
        .fill_null(0)
    )


class _ChangeSets:
    """Change sets per (store, release, measure); like cubes, they never change."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str, str], pl.DataFrame | None] = {}
        self._lock = threading.Lock()

    def get(
        self, source: ReleaseStore | CubeSet, release_id: str, measure: str
    ) -> pl.DataFrame | None:
        if not isinstance(source, ReleaseStore):
            return None
        key = (source.cache_key, release_id, measure)
        with self._lock:
            if key in self._items:
                return self._items[key]
        found = source.read_change_set(release_id, measure)
        with self._lock:
            if len(self._items) > 256:
                self._items.clear()
            self._items[key] = found
        return found

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_CHANGES = _ChangeSets()


def _sort_keys(
    cells: pl.DataFrame, cubes: Sequence[_LoadedCube], by: tuple[str, ...]
) -> pl.DataFrame:
    keys = []
    for d in by:
        known = _ordered(d, set().union(*(set(c.levels[d]) for c in cubes)))
        order = pl.DataFrame(
            {d: known, f"_sort_{d}": list(range(len(known)))},
            schema={d: pl.String, f"_sort_{d}": pl.Int64},
        )
        keys.append(order)
    for d, order in zip(by, keys, strict=True):
        cells = cells.join(order, on=d, how="left", nulls_equal=False).with_columns(
            pl.col(f"_sort_{d}").fill_null(_TOTAL_SORT)
        )
    return cells


def tabulate(
    source: ReleaseStore | CubeSet,
    measure: str,
    by: Sequence[str] | str = (),
    where: Mapping[str, str | Sequence[str]] | None = None,
    *,
    policy: Policy,
    margins: bool = False,
    release_id: str | None = None,
    ptable: cellkey.PerturbationTable | None = None,
    actor: str | None = None,
) -> ProtectedTable:
    """A protected table of `measure` broken down by `by`, filtered by `where`.

    source: a Store (the latest published release unless `release_id` is given)
    or a CubeSet. margins: add total rows for every breakdown (each total is its
    own perturbed cell). ptable: defaults to the one generated from the secret in
    the environment (`cellkey.load_sdc_secret`). actor: when given and the source
    is a Store, the query is written to the audit log."""
    by_t, where_t = _normalise(by, where)
    load, view = _loader(source, release_id)
    rid, data_as_at = view.release_id, view.data_as_at
    num = load(measure)
    meta = num.meta
    cubes = [num]
    den = None
    if meta.denominator is not None:
        den = load(meta.denominator.measure)
        cubes.append(den)
    # Levels never disappear from a revised series: a value that only the removed records
    # had would otherwise vanish from the table (a certain statement, like a zero).
    cubes += _reference_cubes(source, view, [c.meta.name for c in cubes])
    _check_query(measure, cubes, by_t, where_t, policy)
    if ptable is None:
        ptable = cellkey.ptable_for(policy.max_noise, policy.variance)
    elif (ptable.max_noise, ptable.variance) != (policy.max_noise, policy.variance):
        raise ValueError("the perturbation table does not match the policy's max_noise/variance")

    grid = _grid(cubes, by_t, where_t)
    args = (grid, by_t, where_t, margins, ptable, policy)
    table = _shown(source, view, load, measure, *args, "count")
    sym = policy.symbols
    capped = 0
    if den is not None and meta.denominator is not None:
        d = _shown(source, view, load, meta.denominator.measure, *args, "denominator")
        # Margin rows hold null in their total columns, hence nulls_equal.
        table = (
            table.join(d, on=list(by_t), how="left", nulls_equal=True)
            if by_t
            else pl.concat([table, d], how="horizontal")
        )
        per, decimals = meta.denominator.per, meta.denominator.decimals
        if meta.denominator.subset:
            table = _cap_shares(table, sym.confidential)
            capped = int(table["_capped"].sum())
        rate = (pl.col("count_value") / pl.col("denominator_value") * per).round(decimals)
        table = table.with_columns(
            pl.when(pl.col("_count_suppressed") | pl.col("_denominator_suppressed"))
            .then(None)
            .when(pl.col("denominator_value") == 0)
            .then(None)
            .otherwise(rate)
            .alias("rate_value")
        ).with_columns(
            pl.when(pl.col("_count_suppressed") | pl.col("_denominator_suppressed"))
            .then(pl.lit(sym.confidential))
            .when(pl.col("denominator_value") == 0)
            .then(pl.lit(sym.not_applicable))
            .otherwise(
                pl.col("rate_value").map_elements(
                    lambda x: f"{x:.{decimals}f}", return_dtype=pl.String
                )
            )
            .alias("rate")
        )
    table = _sort_keys(table, cubes, by_t)
    sort_cols = [f"_sort_{d}" for d in by_t]
    if sort_cols:
        table = table.sort(sort_cols, maintain_order=True)
    value_cols = ["count", "count_value"]
    if den is not None:
        value_cols += ["denominator", "denominator_value", "rate", "rate_value"]
    table = table.with_columns(pl.col(d).fill_null(policy.total_label) for d in by_t).select(
        *by_t, *value_cols
    )

    covers = _coverage(num, data_as_at)
    partial = _partial_periods(meta, table, by_t, where_t, data_as_at, policy.total_label)
    notes = list(_footnotes(meta, by_t, where_t, policy, view, den is not None))
    notes[-1:-1] = _period_notes(meta, covers, partial, by_t, where_t, data_as_at, capped)
    result = ProtectedTable(
        measure=measure,
        title=meta.title,
        unit=meta.unit,
        by=by_t,
        where=tuple(sorted(where_t.items())),
        margins=margins,
        data=table,
        footnotes=tuple(notes),
        policy_id=policy.ref,
        release_id=rid,
        data_as_at=data_as_at,
        ptable_id=ptable.fingerprint,
        is_rate=den is not None,
        rate_per=meta.denominator.per if meta.denominator else None,
        covers=covers,
        partial_periods=partial,
        capped=capped,
        revision=view.kind == "revision",
        revised_through=view.revised_through,
    )
    if actor is not None and isinstance(source, ReleaseStore):
        source.audit(
            actor,
            "table_query",
            {
                "measure": measure,
                "by": list(by_t),
                "where": {k: list(v) for k, v in where_t.items()},
                "margins": margins,
                "policy_id": policy.ref,
                "rows": table.height,
            },
            release_id=rid,
        )
    return result


def _footnotes(
    meta: MeasureMeta,
    by: tuple[str, ...],
    where: dict[str, tuple[str, ...]],
    policy: Policy,
    view: _ReleaseView,
    is_rate: bool,
) -> tuple[str, ...]:
    sym = policy.symbols
    release_id, data_as_at = view.release_id, view.data_as_at
    notes = []
    if view.kind == "revision":
        notes.append(
            view.revision_note
            or "Revised: this release recalculates every period from current records."
        )
    notes += [
        f"Counts are protected by the cell key method: each count may differ from the true "
        f"count by up to {policy.max_noise}, and the same cell always shows the same value.",
        "Totals are protected separately from the cells inside them, so they may not equal "
        "the sum of the rows shown.",
        f"{sym.confidential} = confidential: fewer than {policy.threshold} after protection "
        "(suppressed). 0 = none (zeros are not changed).",
    ]
    if is_rate and meta.denominator is not None:
        per = "percentage" if meta.denominator.per == 100 else f"rate per {meta.denominator.per:,}"
        notes.append(
            f"The {per} is calculated from protected counts; {sym.confidential} where the "
            f"count or the denominator is suppressed, {sym.not_applicable} where the "
            "denominator is zero."
        )
    filters = {k: v for k, v in where.items() if k not in by}
    rows = {k: v for k, v in where.items() if k in by}
    if filters:
        parts = "; ".join(f"{k} = {', '.join(v)}" for k, v in sorted(filters.items()))
        notes.append(f"Filtered to: {parts}.")
    if rows:
        parts = "; ".join(f"{k} = {', '.join(v)}" for k, v in sorted(rows.items()))
        notes.append(f"Showing only rows for {parts}; totals cover all values.")
    if view.revised_through is not None:
        notes.append(
            f"Figures for periods before {view.revised_through:%d %B %Y} have been revised; "
            f"in those periods a true zero is shown as {sym.confidential}, so that a revision "
            "never reveals that records were removed."
        )
    else:
        notes.append(
            "Figures for periods that had ended by an earlier release's data date are "
            "published as they were then; late records, corrections and objections reach "
            "them only in a scheduled revision."
        )
    notes.extend(meta.footnotes)
    source = f"Release {release_id}" if release_id else "Unpublished preview"
    if view.kind == "revision":
        source = f"Revision release {release_id}" if release_id else "Revision preview"
    if data_as_at:
        source += f", data as at {data_as_at.isoformat()}"
    notes.append(f"{source}; disclosure control policy {policy.ref}.")
    return tuple(notes)


# --- shares and periods -----------------------------------------------------------------


def _cap_shares(table: pl.DataFrame, confidential: str) -> pl.DataFrame:
    """A share whose numerator is a subset of its denominator: never above 100%.

    Perturbation can push a count above its denominator (14 of 12). Where both are shown,
    the count becomes the denominator, so the share reads 100%; where the denominator is
    suppressed the count is too (a shown 12 "of fewer than 10" would be impossible, and
    would narrow the suppressed value). Either way the shown values are a function of
    values already decided for publication, so nothing new is revealed. `_capped` marks
    the capped rows. Counts are never negative, so no share is below 0%."""
    hide = ~pl.col("_count_suppressed") & pl.col("_denominator_suppressed")
    shown = ~pl.col("_count_suppressed") & ~pl.col("_denominator_suppressed")
    over = shown & (pl.col("count_value") > pl.col("denominator_value"))
    return table.with_columns(over.fill_null(False).alias("_capped"), hide.alias("_hide")).select(
        pl.exclude("count", "count_value", "_count_suppressed", "_hide"),
        pl.when(pl.col("_hide"))
        .then(pl.lit(confidential))
        .when(pl.col("_capped"))
        .then(pl.col("denominator"))
        .otherwise(pl.col("count"))
        .alias("count"),
        pl.when(pl.col("_hide"))
        .then(None)
        .when(pl.col("_capped"))
        .then(pl.col("denominator_value"))
        .otherwise(pl.col("count_value"))
        .alias("count_value"),
        (pl.col("_count_suppressed") | pl.col("_hide")).alias("_count_suppressed"),
    )


def _coverage(num: _LoadedCube, data_as_at: date | None) -> tuple[date, date] | None:
    """First and last day of the measure's published periods, at its coarsest time grain
    (a month without a record is not a gap in the data), never past the data date."""
    for dim in COARSEST_FIRST:
        bounds = [b for v in num.levels.get(dim, ()) if (b := period_bounds(dim, v))]
        if bounds:
            end = max(b[1] for b in bounds)
            return min(b[0] for b in bounds), min(end, data_as_at) if data_as_at else end
    return None


def _partial_periods(
    meta: MeasureMeta,
    table: pl.DataFrame,
    by: tuple[str, ...],
    where: Mapping[str, tuple[str, ...]],
    data_as_at: date | None,
    total_label: str,
) -> dict[str, tuple[str, ...]]:
    """Periods in the table (rows or filters) that had not ended, with the measure's
    settling time, by the data date."""
    if data_as_at is None:
        return {}
    complete_by = data_as_at - timedelta(days=meta.complete_after_days)
    out: dict[str, tuple[str, ...]] = {}
    for dim in TIME_DIMENSIONS:
        if dim in by:
            values = [v for v in table[dim].unique(maintain_order=True).to_list() if v]
        elif dim in where:
            values = list(where[dim])
        else:
            continue
        late = tuple(
            v
            for v in values
            if v != total_label and (b := period_bounds(dim, v)) is not None and b[1] > complete_by
        )
        if late:
            out[dim] = late
    return out


def _period_notes(
    meta: MeasureMeta,
    covers: tuple[date, date] | None,
    partial: Mapping[str, tuple[str, ...]],
    by: tuple[str, ...],
    where: Mapping[str, tuple[str, ...]],
    data_as_at: date | None,
    capped: int,
) -> list[str]:
    notes = []
    timed = [d for d in TIME_DIMENSIONS if d in meta.breakdowns]
    if covers is not None:
        span = describe_span(*covers)
        if timed and not any(d in by or d in where for d in timed):
            notes.append(
                f"This table has no time breakdown: it adds together every period from "
                f"{span}. Choose a period to see one year or quarter."
            )
        else:
            notes.append(
                f"Periods with data: {span}. Earlier periods are not published (no data), "
                "which is not the same as zero."
            )
    for values in partial.values():
        wait = (
            f", and this measure counts a period only {meta.complete_after_days} days after it ends"
            if meta.complete_after_days
            else ""
        )
        when = describe(data_as_at) if data_as_at else "the data date"
        notes.append(
            f"Not yet complete: {', '.join(values)} (the data run to {when}{wait}). Do not "
            "compare it with whole periods."
        )
    if capped:
        notes.append(
            f"{capped} percentage{'s' if capped > 1 else ''} capped at 100%: disclosure "
            "control made the count exceed its denominator, so the count shown is the "
            "denominator."
        )
    return notes
