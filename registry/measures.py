"""Measure metadata and the shape of a release: what a measure counts, which breakdowns
it allows, its denominator, a release's record, and `validate_release`, which gathers
every problem with a release's cubes and metadata before anything is written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

import polars as pl

from registry.dimensions import DIMENSION_NAMES

# Longest dimension value a cube may hold (the store's column width).
MAX_VALUE_LENGTH = 100
# Cell keys are sums of record keys modulo this (anonymise.cellkey; ONS uses 256).
KEY_MODULUS = 256

RELEASE_KINDS = ("routine", "revision")
# Ledger entries named with this prefix and a measure hold the release's change set for
# that measure (see pipelines/publish.py); the release layer reads them for materiality.
CHANGE_SET_PREFIX = "~changes/"


@dataclass(frozen=True)
class Denominator:
    """The measure that a rate divides by, tabulated with the same breakdowns and filters."""

    measure: str
    per: int = 100  # 100: a percentage; 1000: a rate per 1,000
    decimals: int = 1
    # The numerator's records are a subset of the denominator's (a share): the release
    # layer then never shows it above 100% (see docs/disclosure-control.md).
    subset: bool = False


@dataclass(frozen=True)
class MeasureMeta:
    name: str
    title: str
    definition: str
    unit: str  # what one record is: "children", "families", "referrals"
    breakdowns: tuple[str, ...]  # dimensions a table may break down or filter by
    denominator: Denominator | None = None
    max_dims: int | None = None  # most dimensions one table may fix; None: the policy's
    footnotes: tuple[str, ...] = field(default_factory=tuple)
    # A period is complete only once it ended at least this many days before the data
    # date (a measure judged six months after an event: 183). 0: once it has ended.
    complete_after_days: int = 0

    def to_row(self) -> dict[str, Any]:
        return {
            "measure": self.name,
            "title": self.title,
            "definition": self.definition,
            "unit": self.unit,
            "breakdowns": list(self.breakdowns),
            "denominator": asdict(self.denominator) if self.denominator else None,
            "max_dims": self.max_dims,
            "footnotes": list(self.footnotes),
            "complete_after_days": self.complete_after_days,
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> MeasureMeta:
        den = _json(row["denominator"])
        return cls(
            name=row["measure"],
            title=row["title"],
            definition=row["definition"],
            unit=row["unit"],
            breakdowns=tuple(_json(row["breakdowns"])),
            denominator=Denominator(**den) if den else None,
            max_dims=row["max_dims"],
            footnotes=tuple(_json(row["footnotes"]) or ()),
            complete_after_days=row.get("complete_after_days") or 0,
        )


@dataclass(frozen=True)
class ReleaseInfo:
    release_id: str
    created_at: datetime
    data_as_at: date
    policy_id: str
    status: str
    run_metadata: dict[str, Any]
    row_counts: dict[str, int]
    kind: str = "routine"  # "revision": recomputed published periods (see the note)
    key_epoch: int = 0  # record-key epoch; a revision starts a new one
    revised_through: date | None = None  # history up to here has been revised
    revision_note: str | None = None  # what changed and why (revision releases)
    cubes_removed_at: datetime | None = None  # retention removed its cubes and ledgers
    reference_release: str | None = None  # values of immaterial revised cells come from here
    materiality: int = 0  # revised cells change only when the true count moved more than this

    @property
    def is_revision(self) -> bool:
        return self.kind == "revision"


def _json(value: Any) -> Any:
    # SQLite hands JSON back already decoded by SQLAlchemy; be lenient about strings too.
    return json.loads(value) if isinstance(value, str) else value


def validate_release(
    cubes: Mapping[str, pl.DataFrame], meta: Mapping[str, MeasureMeta]
) -> list[str]:
    """Every problem with a release's cubes and metadata, gathered (empty: valid)."""
    problems: list[str] = []
    if not cubes:
        problems.append("a release needs at least one measure")
    for name in sorted(set(cubes) - set(meta)):
        problems.append(f"cube {name!r} has no measure metadata")
    for name in sorted(set(meta) - set(cubes)):
        problems.append(f"measure metadata {name!r} has no cube")
    for name, m in sorted(meta.items()):
        problems.extend(_meta_problems(name, m, meta))
    for name, cube in sorted(cubes.items()):
        if name in meta:
            problems.extend(_cube_problems(name, cube, meta[name]))
    return problems


def _meta_problems(key: str, m: MeasureMeta, meta: Mapping[str, MeasureMeta]) -> list[str]:
    p: list[str] = []
    where = f"measure {key!r}"
    if m.name != key:
        p.append(f"{where}: metadata name is {m.name!r}")
    if not key or len(key) > 64 or not key.replace("_", "").isalnum():
        p.append(f"{where}: name must be 1-64 letters, digits or underscores")
    for attr in ("title", "definition", "unit"):
        if not str(getattr(m, attr)).strip():
            p.append(f"{where}: {attr} must not be empty")
    if not m.breakdowns:
        p.append(f"{where}: needs at least one allowed breakdown")
    unknown = [d for d in m.breakdowns if d not in DIMENSION_NAMES]
    if unknown:
        p.append(f"{where}: unknown dimension(s) {unknown}; registry: {', '.join(DIMENSION_NAMES)}")
    if len(set(m.breakdowns)) != len(m.breakdowns):
        p.append(f"{where}: duplicate breakdowns {list(m.breakdowns)}")
    if m.max_dims is not None and m.max_dims < 1:
        p.append(f"{where}: max_dims must be at least 1")
    if m.complete_after_days < 0:
        p.append(f"{where}: complete_after_days must not be negative")
    den = m.denominator
    if den is not None:
        if den.measure == key:
            p.append(f"{where}: cannot be its own denominator")
        elif den.measure not in meta:
            p.append(f"{where}: denominator {den.measure!r} is not in this release")
        else:
            missing = [d for d in m.breakdowns if d not in meta[den.measure].breakdowns]
            if missing:
                p.append(
                    f"{where}: denominator {den.measure!r} lacks breakdown(s) {missing}, "
                    "so a rate could not be tabulated for every allowed table"
                )
            if meta[den.measure].denominator is not None:
                p.append(f"{where}: denominator {den.measure!r} is itself a rate")
        if den.per <= 0:
            p.append(f"{where}: denominator.per must be positive")
        if not 0 <= den.decimals <= 6:
            p.append(f"{where}: denominator.decimals must be 0..6")
    return p


def _cube_problems(name: str, cube: pl.DataFrame, m: MeasureMeta) -> list[str]:
    p: list[str] = []
    where = f"cube {name!r}"
    expected = [*m.breakdowns, "n", "ckey"]
    missing = [c for c in expected if c not in cube.columns]
    extra = [c for c in cube.columns if c not in expected]
    if missing:
        p.append(f"{where}: missing column(s) {missing}")
    if extra:
        p.append(f"{where}: column(s) {extra} are not allowed breakdowns of the measure")
    if missing:
        return p
    for d in m.breakdowns:
        col = cube[d]
        if col.dtype != pl.String:
            p.append(f"{where}: dimension {d!r} must be text, got {col.dtype}")
            continue
        if col.null_count():
            p.append(f"{where}: dimension {d!r} has {col.null_count()} missing value(s)")
        lengths = col.str.len_chars()
        if (lengths == 0).any():
            p.append(f"{where}: dimension {d!r} has empty value(s)")
        if (lengths > MAX_VALUE_LENGTH).any():
            p.append(f"{where}: dimension {d!r} has value(s) over {MAX_VALUE_LENGTH} characters")
    for c in ("n", "ckey"):
        if not cube[c].dtype.is_integer():
            p.append(f"{where}: {c!r} must be an integer column, got {cube[c].dtype}")
    if p:
        return p
    if cube["n"].null_count() or cube["ckey"].null_count():
        p.append(f"{where}: 'n' and 'ckey' must not be missing")
    if cube.height and (cube["n"].min() or 0) <= 0:  # type: ignore[operator]
        p.append(f"{where}: 'n' must be positive (empty cells are not stored)")
    if cube.height and not cube["ckey"].is_between(0, KEY_MODULUS - 1).all():
        p.append(f"{where}: 'ckey' must be in 0..255")
    if m.breakdowns and cube.select(m.breakdowns).is_duplicated().any():
        p.append(f"{where}: duplicate cells (the cube must have one row per cell)")
    return p
