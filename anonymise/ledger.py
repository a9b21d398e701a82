"""What a project already holds: the release ledger as the extract builder sees it (pure).

Every extract released to a project is recorded with its variables, the level each
quasi-identifier was released at, and the released quasi-identifier frame itself:
the project's person pseudonym (and family pseudonym, when released) with the
generalised values exactly as the researcher received them. It is pseudonymous and
generalised, and only the pipeline and the release service hold it.

A new extract is checked as if joined to every earlier one on the project's
pseudonyms (see `joined_view` and docs/research-extracts.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

NOT_RELEASED = "(not released)"


def output_paths(out: Path) -> list[Path]:
    """The files one extract written to `out` consists of: the data file, and its dictionary
    and certificates beside it. The ledger records `out`; retention deletes them together."""
    stem = out.with_suffix("")
    return [
        out,
        Path(f"{stem}.dictionary.csv"),
        Path(f"{stem}.certificate.json"),
        Path(f"{stem}.certificate.txt"),
    ]


PERSON = "person_id"
FAMILY = "family_id"


@dataclass(frozen=True)
class PriorExtract:
    """One earlier extract of the project."""

    extract_no: int
    variables: tuple[str, ...]
    levels: Mapping[str, int]  # every released variable: its hierarchy level (0: the base)
    level_names: Mapping[str, str]
    quasi_identifiers: tuple[str, ...]
    frame: pl.DataFrame = field(repr=False)  # person_id, [family_id], released QI values

    def column(self, qi: str) -> str:
        return f"e{self.extract_no}:{qi}"


@dataclass(frozen=True)
class ReleaseHistory:
    """Everything already released that a new extract must be checked against."""

    earlier: tuple[PriorExtract, ...] = ()
    # Other projects: their id -> variables they hold, with the level of each.
    elsewhere: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def fixed_levels(self) -> dict[str, int]:
        """A variable already released to the project keeps the level it was first released at."""
        fixed: dict[str, int] = {}
        for e in sorted(self.earlier, key=lambda e: e.extract_no):
            for v, level in e.levels.items():
                fixed.setdefault(v, level)
        return fixed

    def shared_elsewhere(self, variables: Sequence[str]) -> dict[str, list[str]]:
        """Variable -> the other projects that hold it."""
        out: dict[str, list[str]] = {}
        for project, held in sorted(self.elsewhere.items()):
            for v in variables:
                if v in held:
                    out.setdefault(v, []).append(project)
        return out

    @property
    def next_extract_no(self) -> int:
        return max((e.extract_no for e in self.earlier), default=0) + 1

    def released_family_links(self) -> bool:
        return any(FAMILY in e.frame.columns for e in self.earlier)


def joined_view(persons: pl.Series, history: ReleaseHistory) -> tuple[pl.DataFrame, list[str]]:
    """For each person (project pseudonym), every earlier extract's released QI values.

    A person absent from an earlier extract gets NOT_RELEASED in its columns: absence is
    something an intruder sees too. Returns the frame (person_id first) and its columns."""
    view = pl.DataFrame({PERSON: persons})
    columns: list[str] = []
    for e in history.earlier:
        cols = {q: e.column(q) for q in e.quasi_identifiers}
        part = e.frame.select(
            PERSON, *[pl.col(q).cast(pl.String).alias(c) for q, c in cols.items()]
        )
        view = view.join(part, on=PERSON, how="left")
        columns.extend(cols.values())
    if columns:
        view = view.with_columns(pl.col(c).fill_null(NOT_RELEASED) for c in columns)
    return view, columns


def population(history: ReleaseHistory) -> pl.Series:
    """Every person pseudonym released to the project so far."""
    frames = [e.frame.select(PERSON) for e in history.earlier]
    if not frames:
        return pl.Series(PERSON, [], dtype=pl.String)
    return pl.concat(frames).unique(maintain_order=True)[PERSON]


@dataclass(frozen=True)
class NewLedgerEntry:
    """What the extract door records for one released extract."""

    project_id: str
    extract_no: int
    researcher: str
    variables: tuple[str, ...]
    quasi_identifiers: tuple[str, ...]
    levels: dict[str, int]
    level_names: dict[str, str]
    pseudonym_columns: tuple[str, ...]
    sha256: str
    records: int
    frame: pl.DataFrame
    file_path: str | None = None
