"""Protected tables for documents built from several of them (comparisons, Supporting
Families claims and return, open data): every number comes from `anonymise.release.tabulate`,
the only door to published figures, asked once per table for one release."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from anonymise import cellkey
from anonymise.policy import Policy
from anonymise.release import CubeSet, ProtectedTable, tabulate
from pipelines.store import Store
from registry.periods import TIME_DIMENSIONS, period_bounds


@dataclass
class Tables:
    """The protected tables of one release, each asked for once."""

    source: Store | CubeSet
    policy: Policy
    ptable: cellkey.PerturbationTable
    release_id: str | None = None
    actor: str | None = None  # when set, every table asked for is written to the audit log
    _cache: dict[tuple[object, ...], ProtectedTable] = field(default_factory=dict)

    def get(
        self,
        measure: str,
        by: Sequence[str] = (),
        where: Mapping[str, str | Sequence[str]] | None = None,
        *,
        margins: bool = False,
    ) -> ProtectedTable:
        key = (
            measure,
            tuple(by),
            tuple(
                sorted(
                    (k, (v,) if isinstance(v, str) else tuple(v)) for k, v in (where or {}).items()
                )
            ),
            margins,
        )
        if key not in self._cache:
            self._cache[key] = tabulate(
                self.source,
                measure,
                by=tuple(by),
                where=where,
                policy=self.policy,
                margins=margins,
                release_id=self.release_id,
                ptable=self.ptable,
                actor=self.actor,
            )
        return self._cache[key]


@dataclass(frozen=True)
class Figure:
    """One published figure: a number, or the symbol shown instead."""

    value: float | None
    shown: str  # the number as published, or its GSS symbol

    @property
    def symbol(self) -> str | None:
        return None if self.value is not None else self.shown

    def public(self) -> dict[str, object]:
        return {"value": self.value, "shown": self.shown}


def complete(table: ProtectedTable, dim: str) -> list[str]:
    """The table's values of `dim` that are whole periods: not partial by the data date, and
    not begun before the data do (a first year that starts before the extracts' window
    holds only part of the year's records)."""
    late = set(table.partial_periods.get(dim, ()))
    first_day = table.covers[0] if table.covers else None
    out = []
    for v in table.data[dim].to_list():
        if v is None or v == "Total" or v in late:
            continue
        bounds = period_bounds(dim, v) if dim in TIME_DIMENSIONS else None
        if first_day is not None and bounds is not None and bounds[0] < first_day:
            continue
        out.append(str(v))
    return out


def figures(table: ProtectedTable, dim: str, *, rate: bool) -> dict[str, Figure]:
    """dim value -> the published count (or rate), as a Figure."""
    col = "rate" if rate and table.is_rate else "count"
    out = {}
    for row in table.data.select(dim, col, f"{col}_value").iter_rows():
        value = None if row[2] is None else float(row[2])
        out[str(row[0])] = Figure(value, str(row[1]))
    return out


def rate_from_counts(
    num: Figure, den: Figure, *, per: int, decimals: int, confidential: str, not_applicable: str
) -> Figure:
    """A rate computed from two published counts (never from true ones): confidential
    where either is suppressed, not applicable where the denominator is zero."""
    if num.value is None or den.value is None:
        return Figure(None, confidential)
    if den.value == 0:
        return Figure(None, not_applicable)
    value = round(num.value / den.value * per, decimals)
    return Figure(value, f"{value:.{decimals}f}")


def frame_rows(table: ProtectedTable) -> list[dict[str, object]]:
    """The table's rows as plain dicts (for JSON documents)."""
    return [dict(r) for r in table.data.iter_rows(named=True)]


def empty_frame(columns: Sequence[str]) -> pl.DataFrame:
    return pl.DataFrame(schema={c: pl.String for c in columns})
