"""Generalisation hierarchies as data: one row per leaf value, one column per level.

A hierarchy is a table in ARX's layout. Column 0 holds the leaves (the values that
appear in the data); each further column holds the leaf's ancestor at that level,
usually ending in a single ``*`` (the value fully suppressed). Every value at a
level has exactly one parent at the next level, so generalising level by level and
generalising straight from the leaves agree.

Values are held as strings, as ARX holds them; a data column is cast to text
(dates to ISO ``YYYY-MM-DD``) before it is matched against the leaves. A missing
value (null) is not a leaf: it stays null at every level except a level with a
single value, where it joins everybody else (``*``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path

import numpy as np
import polars as pl

__all__ = [
    "Hierarchy",
    "HierarchyError",
    "UnknownValuesError",
    "age_hierarchy",
    "date_hierarchy",
    "find_hierarchy_files",
    "flat_hierarchy",
    "geography_hierarchy",
    "hierarchy_from_mapping",
    "load_arx_hierarchies",
    "load_arx_hierarchy",
    "normalise_postcode",
]

SUPPRESSED = "*"


class HierarchyError(ValueError):
    """A hierarchy table is malformed (duplicate leaves, a value with two parents, gaps)."""


class UnknownValuesError(ValueError):
    """A data column holds values that are not leaves of its hierarchy."""


@dataclass(frozen=True, eq=False)
class Hierarchy:
    """A generalisation hierarchy: ``table`` has one text column per level, leaves first."""

    name: str
    table: pl.DataFrame
    levels: tuple[str, ...] = ()
    normalise: Callable[[pl.Expr], pl.Expr] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        table = self.table.select(pl.all().cast(pl.String))
        problems: list[str] = []
        if table.width == 0 or table.height == 0:
            raise HierarchyError(f"hierarchy {self.name!r} is empty")
        levels = self.levels or tuple(f"level {i}" for i in range(table.width))
        if len(levels) != table.width:
            problems.append(f"{len(levels)} level names for {table.width} levels")
        table = table.rename(
            dict(zip(table.columns, [f"l{i}" for i in range(table.width)], strict=True))
        )
        nulls = [i for i, c in enumerate(table.columns) if table[c].null_count()]
        if nulls:
            problems.append(f"empty cells at level(s) {nulls}")
        duplicated = table.height - table["l0"].n_unique()
        if duplicated:
            problems.append(f"{duplicated} leaf value(s) listed more than once")
        for i in range(table.width - 1):
            parents = table.group_by(f"l{i}").agg(pl.col(f"l{i + 1}").n_unique().alias("n"))
            several = parents.filter(pl.col("n") > 1).height
            if several:
                problems.append(
                    f"{several} value(s) at level {i} have more than one parent at level {i + 1}"
                )
        if problems:
            raise HierarchyError(f"hierarchy {self.name!r}: " + "; ".join(problems))
        object.__setattr__(self, "table", table)
        object.__setattr__(self, "levels", tuple(levels))

    def __repr__(self) -> str:
        return f"Hierarchy({self.name!r}, levels={list(self.levels)}, leaves={self.table.height})"

    @property
    def height(self) -> int:
        """The highest level index (levels are 0..height)."""
        return self.table.width - 1

    @property
    def leaves(self) -> pl.Series:
        return self.table["l0"].alias(self.name)

    @cached_property
    def _codes(self) -> tuple[tuple[np.ndarray, pl.Series, np.ndarray], ...]:
        # Per level: the code of each leaf's ancestor, the distinct values (in code
        # order), and how many leaves sit under each leaf's ancestor.
        out = []
        for column in self.table.columns:
            values = self.table[column].to_numpy().astype(str)
            uniques, first, inverse, counts = np.unique(
                values, return_index=True, return_inverse=True, return_counts=True
            )
            # Codes follow first appearance, so the level reads in the file's order.
            order = np.argsort(first, kind="stable")
            rank = np.empty_like(order)
            rank[order] = np.arange(order.size)
            codes = rank[inverse].astype(np.int64)
            labels = pl.Series(column, uniques[order].tolist(), dtype=pl.String)
            out.append((codes, labels, counts[inverse].astype(np.int64)))
        return tuple(out)

    def level_codes(self, level: int) -> np.ndarray:
        """For each leaf (in table order), the integer code of its ancestor at ``level``."""
        return self._codes[self._check(level)][0]

    def level_values(self, level: int) -> pl.Series:
        """The distinct values at ``level``; value ``i`` has code ``i``."""
        return self._codes[self._check(level)][1]

    def cardinality(self, level: int) -> int:
        return self._codes[self._check(level)][1].len()

    def leaves_under(self, level: int) -> np.ndarray:
        """For each leaf, how many leaves share its ancestor at ``level`` (1 at level 0)."""
        return self._codes[self._check(level)][2]

    def _check(self, level: int) -> int:
        if not 0 <= level <= self.height:
            raise ValueError(f"hierarchy {self.name!r} has levels 0..{self.height}, not {level}")
        return level

    def leaf_codes(self, column: pl.Series) -> np.ndarray:
        """Index of each value among the leaves; -1 for null. Raises on unknown values."""
        text = _to_text(column)
        if self.normalise is not None:
            text = pl.select(self.normalise(pl.lit(text))).to_series()
        leaves = self.table["l0"]
        matched = text.replace_strict(
            leaves,
            pl.int_range(leaves.len(), eager=True, dtype=pl.Int64),
            default=-2,
            return_dtype=pl.Int64,
        )
        codes = (
            pl.select(pl.when(text.is_null()).then(-1).otherwise(matched).alias("c"))
            .to_series()
            .to_numpy()
        )
        unknown = codes == -2
        if unknown.any():
            distinct = text.filter(pl.Series(unknown)).n_unique()
            # Counts only: the values themselves may identify someone.
            raise UnknownValuesError(
                f"column {column.name!r}: {int(unknown.sum())} record(s) with {distinct} "
                f"distinct value(s) that are not leaves of hierarchy {self.name!r}"
            )
        return codes

    def generalise(self, column: pl.Series, level: int) -> pl.Series:
        """Map a data column to ``level``: the ancestor of each value, as text."""
        codes = self.leaf_codes(column)
        return self.labels_for_codes(codes, level).alias(column.name)

    def labels_for_codes(self, leaf_codes: np.ndarray, level: int) -> pl.Series:
        """Labels at ``level`` for leaf codes from :meth:`leaf_codes` (-1 for null)."""
        ancestors = self.level_codes(level)
        labels = self.level_values(level)
        # Missing values stay missing unless the level has a single value (``*``).
        filler = labels[0] if labels.len() == 1 else None
        lookup = pl.concat([labels, pl.Series(labels.name, [filler], dtype=pl.String)])
        index = np.where(leaf_codes >= 0, ancestors[np.maximum(leaf_codes, 0)], labels.len())
        return lookup.gather(pl.Series(index, dtype=pl.Int64))

    def expr(self, column: str, level: int) -> pl.Expr:
        """A lazy expression generalising ``column`` to ``level``; unknown values become ``*``."""
        ancestors = self.level_values(level).gather(pl.Series(self.level_codes(level)))
        filler = ancestors[0] if self.cardinality(level) == 1 else None
        source = pl.col(column).cast(pl.String)
        if self.normalise is not None:
            source = self.normalise(source)
        # Lazily there is no raising: an unknown value is fully suppressed, never kept.
        mapped = source.replace_strict(
            self.table["l0"], ancestors, default=SUPPRESSED, return_dtype=pl.String
        )
        return (
            pl.when(source.is_null())
            .then(pl.lit(filler, pl.String))
            .otherwise(mapped)
            .alias(column)
        )


def _to_text(column: pl.Series) -> pl.Series:
    dtype = column.dtype
    if dtype == pl.Datetime:
        column = column.cast(pl.Date)
    elif dtype.is_float():
        whole = column.drop_nulls()
        if whole.len() and bool((whole == whole.round(0)).all()):
            column = column.cast(pl.Int64)
    return column.cast(pl.String)


# --- reading ARX files -------------------------------------------------------------------------


def load_arx_hierarchy(
    path: str | Path, *, name: str | None = None, separator: str = ";"
) -> Hierarchy:
    """Read one hierarchy CSV in ARX's layout: no header, a row per leaf, a column per level."""
    path = Path(path)
    table = pl.read_csv(
        path,
        separator=separator,
        has_header=False,
        infer_schema=False,
        encoding="utf8-lossy",
        truncate_ragged_lines=False,
    )
    # Some exports end each line with the separator: an empty trailing column.
    while table.width > 1 and table[table.columns[-1]].null_count() == table.height:
        table = table.drop(table.columns[-1])
    # A UTF-8 byte order mark on the first leaf would make it unmatchable.
    first = table.columns[0]
    table = table.with_columns(pl.col(first).str.strip_prefix("\ufeff"))
    return Hierarchy(name or path.stem, table)


def find_hierarchy_files(directory: str | Path, names: Iterable[str]) -> dict[str, Path]:
    """Find ``<name>.csv`` or ``<prefix>[_-.]<name>.csv`` per name; raise if none or several."""
    directory = Path(directory)
    files = sorted(p for p in directory.glob("*.csv") if p.is_file())
    found: dict[str, Path] = {}
    problems: list[str] = []
    for name in names:
        matches = [
            p
            for p in files
            if p.stem == name or (p.stem.endswith(name) and p.stem[-len(name) - 1] in "_-.")
        ]
        exact = [p for p in matches if p.stem == name]
        if exact:
            matches = exact
        elif len(matches) > 1:
            # Prefer the shortest prefix: "adult_hierarchy_status" loses to "..._marital-status"
            # only when the names differ; ties are ambiguous.
            shortest = min(len(p.stem) for p in matches)
            matches = [p for p in matches if len(p.stem) == shortest]
        if not matches:
            problems.append(f"no hierarchy file for {name!r}")
        elif len(matches) > 1:
            problems.append(f"several hierarchy files for {name!r}: {[p.name for p in matches]}")
        else:
            found[name] = matches[0]
    if problems:
        raise HierarchyError(f"in {directory}: " + "; ".join(problems))
    return found


def load_arx_hierarchies(
    directory: str | Path,
    prefix: str = "",
    *,
    names: Iterable[str] | None = None,
    separator: str = ";",
) -> dict[str, Hierarchy]:
    """Read every ``<prefix><name>.csv`` in ``directory``, keyed by ``name``.

    With ``names`` and no ``prefix``, each name's file is found by
    :func:`find_hierarchy_files` (so ``adult_hierarchy_age.csv`` serves ``age``).
    """
    directory = Path(directory)
    if names is not None and not prefix:
        paths = find_hierarchy_files(directory, names)
    else:
        paths = {
            p.stem[len(prefix) :]: p
            for p in sorted(directory.glob(f"{glob_escape(prefix)}*.csv"))
            if p.is_file()
        }
        if names is not None:
            wanted = list(names)
            missing = [n for n in wanted if n not in paths]
            if missing:
                raise HierarchyError(f"in {directory}: no hierarchy file for {missing}")
            paths = {n: paths[n] for n in wanted}
    return {
        name: load_arx_hierarchy(p, name=name, separator=separator) for name, p in paths.items()
    }


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


# --- built-in hierarchies ----------------------------------------------------------------------


def flat_hierarchy(name: str, values: Iterable[object]) -> Hierarchy:
    """Two levels: the value itself, then ``*``. For a quasi-identifier with no natural grouping."""
    leaves = pl.Series("l0", [str(v) for v in dict.fromkeys(values) if v is not None])
    return Hierarchy(
        name,
        pl.DataFrame({"l0": leaves, "l1": [SUPPRESSED] * leaves.len()}),
        levels=(name, SUPPRESSED),
    )


def age_hierarchy(
    name: str = "age",
    *,
    max_age: int = 120,
    band_width: int = 5,
    broad_edges: Sequence[int] = (0, 10, 20, 40, 65),
) -> Hierarchy:
    """Age in years → ``band_width``-year band → broad band → ``*``, for ages 0..max_age.

    Broad bands start at ``broad_edges`` (the last one is open: ``65+``); each edge must be
    a multiple of ``band_width`` so that every narrow band sits inside one broad band.
    """
    edges = sorted(set(broad_edges))
    problems = []
    if band_width < 1 or max_age < 0:
        problems.append("band_width must be at least 1 and max_age at least 0")
    if not edges or edges[0] != 0:
        problems.append("broad_edges must start at 0")
    misaligned = [e for e in edges if band_width >= 1 and e % band_width]
    if misaligned:
        problems.append(f"broad_edges {misaligned} are not multiples of band_width {band_width}")
    if problems:
        raise HierarchyError(f"age hierarchy: {'; '.join(problems)}")
    ages = np.arange(max_age + 1)
    lows = ages // band_width * band_width
    bands = [_span(lo, min(lo + band_width - 1, max_age)) for lo in lows]
    which = np.searchsorted(np.asarray(edges), ages, side="right") - 1
    broad = []
    for i in which:
        lo = edges[i]
        broad.append(_span(lo, edges[i + 1] - 1) if i + 1 < len(edges) else f"{lo}+")
    table = pl.DataFrame(
        {
            "l0": [str(a) for a in ages],
            "l1": bands,
            "l2": broad,
            "l3": [SUPPRESSED] * ages.size,
        }
    )
    return Hierarchy(name, table, levels=("year", f"{band_width}-year band", "broad band", "*"))


def date_hierarchy(
    name: str = "date", *, start: date, end: date, year_start_month: int = 1
) -> Hierarchy:
    """Day → month → quarter → year → ``*`` for every day from ``start`` to ``end``.

    ``year_start_month=4`` gives UK financial years (``2024-25``) and their quarters
    (``2024-25 Q1`` is April to June).
    """
    if not 1 <= year_start_month <= 12:
        raise HierarchyError("year_start_month must be 1..12")
    if end < start:
        raise HierarchyError("date hierarchy: end is before start")
    days = pl.date_range(start, end, interval="1d", eager=True).alias("day")
    frame = pl.DataFrame({"day": days}).with_columns(
        y=pl.col("day").dt.year(), m=pl.col("day").dt.month()
    )
    shift = year_start_month - 1
    frame = frame.with_columns(
        fy=pl.when(pl.col("m") >= year_start_month).then(pl.col("y")).otherwise(pl.col("y") - 1),
        fq=((pl.col("m") - 1 - shift) % 12) // 3 + 1,
    )
    if year_start_month == 1:
        year = pl.col("fy").cast(pl.String)
    else:
        year = pl.format(
            "{}-{}", pl.col("fy"), ((pl.col("fy") + 1) % 100).cast(pl.String).str.zfill(2)
        )
    table = frame.select(
        l0=pl.col("day").dt.strftime("%Y-%m-%d"),
        l1=pl.col("day").dt.strftime("%Y-%m"),
        l2=pl.format("{}{}Q{}", year, pl.lit("-" if year_start_month == 1 else " "), pl.col("fq")),
        l3=year,
        l4=pl.lit(SUPPRESSED),
    )
    return Hierarchy(name, table, levels=("day", "month", "quarter", "year", "*"))


def _span(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}-{hi}"


def normalise_postcode(expr: pl.Expr) -> pl.Expr:
    """Upper case, one space before the inward code (``sw1a1aa`` → ``SW1A 1AA``)."""
    compact = expr.cast(pl.String).str.to_uppercase().str.replace_all(r"\s+", "")
    return (
        pl.when(compact.str.len_chars() > 3)
        .then(
            pl.format(
                "{} {}", compact.str.slice(0, compact.str.len_chars() - 3), compact.str.slice(-3)
            )
        )
        .otherwise(compact)
    )


GEOGRAPHY_LEVELS = ("postcode", "lsoa", "ward", "locality", "county")


def geography_hierarchy(
    lookup: pl.DataFrame, *, name: str = "postcode", levels: Sequence[str] = GEOGRAPHY_LEVELS
) -> Hierarchy:
    """Postcode → LSOA → ward → locality → county → ``*`` from a lookup table.

    ``lookup`` has one row per postcode and a column per level. LSOAs do not always nest
    in wards: use a best-fit lookup (one ward per LSOA), or the hierarchy is refused.
    """
    missing = [c for c in levels if c not in lookup.columns]
    if missing:
        raise HierarchyError(f"geography lookup lacks column(s) {missing}")
    table = (
        lookup.select(pl.col(c).cast(pl.String) for c in levels)
        .with_columns(normalise_postcode(pl.col(levels[0])))
        .unique(maintain_order=True)
        .with_columns(pl.lit(SUPPRESSED).alias("*"))
    )
    return Hierarchy(name, table, levels=(*levels, SUPPRESSED), normalise=normalise_postcode)


def hierarchy_from_mapping(name: str, rows: Mapping[str, Sequence[str]]) -> Hierarchy:
    """Build a hierarchy from ``{leaf: [level1, level2, ...]}`` (handy in tests and notebooks)."""
    width = {len(v) for v in rows.values()}
    if len(width) != 1:
        raise HierarchyError(f"hierarchy {name!r}: rows have different numbers of levels")
    (depth,) = width
    data: dict[str, list[str]] = {"l0": list(rows)}
    for i in range(depth):
        data[f"l{i + 1}"] = [v[i] for v in rows.values()]
    return Hierarchy(name, pl.DataFrame(data))


# --- disclosure treatments of research variables ----------------------------------------------
# Each research variable is released through a treatment (anonymise/catalogue.py): a base
# step that no researcher can undo (a count banded and top-coded, a date to its quarter) and
# a hierarchy above it that the lattice search may climb. These build the hierarchies; their
# leaves are the base values, so every value the base step can produce is a leaf.

NOT_RECORDED = "not recorded"

COUNT_BANDS: tuple[tuple[int, int | None, str], ...] = (
    (0, 0, "0"),
    (1, 1, "1"),
    (2, 2, "2"),
    (3, 5, "3-5"),
    (6, 10, "6-10"),
    (11, None, "11+"),
)
_COUNT_COARSE = {"0": "0", "1": "1-2", "2": "1-2", "3-5": "3+", "6-10": "3+", "11+": "3+"}


def count_band_expr(expr: pl.Expr) -> pl.Expr:
    """A count as its band (``0``, ``1``, ``2``, ``3-5``, ``6-10``, ``11+``): top-coded at 11."""
    out = pl.lit(None, pl.String)
    for lo, hi, label in reversed(COUNT_BANDS):
        cond = expr >= lo if hi is None else expr.is_between(lo, hi)
        out = pl.when(cond).then(pl.lit(label)).otherwise(out)
    return pl.when(expr.is_null()).then(pl.lit("0")).otherwise(out)


def count_band_hierarchy(name: str) -> Hierarchy:
    """Count band → ``0``/``1-2``/``3+`` → ``0``/``1+`` → ``*``."""
    leaves = [label for *_, label in COUNT_BANDS]
    coarse = [_COUNT_COARSE[v] for v in leaves]
    table = pl.DataFrame(
        {
            "l0": leaves,
            "l1": coarse,
            "l2": ["0" if v == "0" else "1+" for v in leaves],
            "l3": [SUPPRESSED] * len(leaves),
        }
    )
    return Hierarchy(name, table, levels=("band", "0 / 1-2 / 3+", "none or any", SUPPRESSED))


PERCENT_BANDS: tuple[tuple[float, float, str], ...] = (
    (0.0, 5.0, "0-<5%"),
    (5.0, 10.0, "5-<10%"),
    (10.0, 20.0, "10-<20%"),
    (20.0, 50.0, "20-<50%"),
    (50.0, math.inf, "50%+"),
)


def percent_band_expr(expr: pl.Expr) -> pl.Expr:
    """A percentage as its band; missing is ``not recorded`` (a value, counted like any other)."""
    out = pl.lit(None, pl.String)
    for lo, hi, label in reversed(PERCENT_BANDS):
        out = pl.when((expr >= lo) & (expr < hi)).then(pl.lit(label)).otherwise(out)
    return pl.when(expr.is_null()).then(pl.lit(NOT_RECORDED)).otherwise(out)


def percent_band_hierarchy(name: str) -> Hierarchy:
    """Band → under 10% / 10% or more (the persistent-absence line) → ``*``."""
    leaves = [label for *_, label in PERCENT_BANDS]
    coarse = ["<10%" if hi <= 10.0 else "10%+" for _, hi, _ in PERCENT_BANDS]
    table = pl.DataFrame(
        {
            "l0": [*leaves, NOT_RECORDED],
            "l1": [*coarse, NOT_RECORDED],
            "l2": [SUPPRESSED] * (len(leaves) + 1),
        }
    )
    return Hierarchy(name, table, levels=("band", "under or over 10%", SUPPRESSED))


def quarter_expr(expr: pl.Expr) -> pl.Expr:
    """A ``YYYY-MM`` month or a date as its calendar quarter ``YYYY-Qn``; missing is ``none``."""
    text = expr.cast(pl.String)
    year = text.str.slice(0, 4)
    month = text.str.slice(5, 2).cast(pl.Int64, strict=False)
    quarter = pl.format("{}-Q{}", year, ((month - 1) // 3 + 1).cast(pl.String))
    return pl.when(expr.is_null()).then(pl.lit("none")).otherwise(quarter)


def quarter_hierarchy(name: str, *, first_year: int, last_year: int) -> Hierarchy:
    """Quarter → year → ``*`` for every quarter of the years given, plus ``none`` (no event)."""
    quarters = [f"{y}-Q{q}" for y in range(first_year, last_year + 1) for q in range(1, 5)]
    table = pl.DataFrame(
        {
            "l0": [*quarters, "none"],
            "l1": [*(q[:4] for q in quarters), "none"],
            "l2": [SUPPRESSED] * (len(quarters) + 1),
        }
    )
    return Hierarchy(name, table, levels=("quarter", "year", SUPPRESSED))


def code_set_expr(expr: pl.Expr, codes: Sequence[str]) -> pl.Expr:
    """A ``;``-separated list of codes as the sorted set of known codes: never free text.

    Anything that is not one of ``codes`` becomes ``other``, so a typed note can never reach
    a researcher; nothing recorded is ``not recorded``."""
    known = list(codes)
    parts = (
        expr.cast(pl.String)
        .str.split(";")
        .list.eval(
            pl.when(pl.element().str.strip_chars().is_in(known))
            .then(pl.element().str.strip_chars())
            .otherwise(pl.lit("other"))
        )
    )
    joined = parts.list.unique().list.sort().list.join(";")
    missing = expr.is_null() | expr.cast(pl.String).is_in([NOT_RECORDED, ""])
    return pl.when(missing).then(pl.lit(NOT_RECORDED)).otherwise(joined)


def code_set_hierarchy(name: str, values: Iterable[str]) -> Hierarchy:
    """Set of codes → how many (``1``, ``2``, ``3+``) → ``*``; ``not recorded`` kept apart."""
    leaves = sorted({str(v) for v in values if v is not None} | {NOT_RECORDED})

    def how_many(v: str) -> str:
        if v == NOT_RECORDED:
            return NOT_RECORDED
        n = len(v.split(";"))
        return f"{n} need{'s' if n > 1 else ''}" if n < 3 else "3+ needs"

    table = pl.DataFrame(
        {
            "l0": leaves,
            "l1": [how_many(v) for v in leaves],
            "l2": [SUPPRESSED] * len(leaves),
        }
    )
    return Hierarchy(name, table, levels=("codes", "number of codes", SUPPRESSED))


def fixed_level_hierarchy(name: str, values: Iterable[object], level_name: str) -> Hierarchy:
    """One level only: the values as already released. The lattice cannot move it.

    Used for a quasi-identifier a project already holds (its level is fixed for the
    project) and for the columns of earlier extracts joined to a new one."""
    leaves = [str(v) for v in dict.fromkeys(values) if v is not None]
    if not leaves:
        leaves = [SUPPRESSED]
    return Hierarchy(name, pl.DataFrame({"l0": leaves}), levels=(level_name,))
