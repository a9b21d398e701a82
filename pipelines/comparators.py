"""Loading comparator statistics: EES data files (with their `.meta.csv`, and optionally a
`.footnotes.csv`) checked against the EES rules and stored whole (`portal comparators load`).

Every file is read and checked before anything is stored; one problem anywhere stops the
load and every problem of every file is reported together (file, row, column, problem).
Nothing is partly loaded: the files go into the store in one transaction, each replacing the
data set of the same name. After a load, `coverage_warnings` says what the council's
comparisons will lack (its region, England, its neighbours, a mapped indicator).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipelines.ees import (
    LOCAL_AUTHORITY,
    NATIONAL,
    REGIONAL,
    EesFile,
    EesFileError,
    EesProblem,
    meta_path,
    read_pair,
)
from pipelines.planning_config import PlanningConfig
from pipelines.store import Store
from pipelines.store_comparators import Dataset, replace_datasets


@dataclass(frozen=True)
class CheckedFile:
    file: EesFile
    raw: bytes
    footnotes: list[str]


def footnotes_path(data_path: Path) -> Path:
    return data_path.with_name(data_path.name.removesuffix(".csv") + ".footnotes.csv")


def _footnotes(path: Path, problems: list[EesProblem]) -> list[str]:
    """The optional footnotes file: one footnote a row, in a column named `footnote`."""
    if not path.exists():
        return []
    try:
        frame = pl.read_csv(path, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as exc:
        problems.append(EesProblem(path.name, f"is not a readable CSV file: {exc}"))
        return []
    if "footnote" not in frame.columns:
        problems.append(EesProblem(path.name, "needs a column named 'footnote'"))
        return []
    return [str(f).strip() for f in frame["footnote"].drop_nulls().to_list() if str(f).strip()]


def check_files(paths: Sequence[Path]) -> list[CheckedFile]:
    """Read and check every file; raise EesFileError with every problem of every file."""
    problems: list[EesProblem] = []
    checked: list[CheckedFile] = []
    stems: dict[str, Path] = {}
    for path in paths:
        stem = path.name.removesuffix(".csv")
        if stem in stems:
            problems.append(
                EesProblem(path.name, f"has the same name as {stems[stem]}: one data set each")
            )
            continue
        stems[stem] = path
        try:
            f = read_pair(path)
        except EesFileError as exc:
            problems += exc.problems
            continue
        notes = _footnotes(footnotes_path(path), problems)
        raw = path.read_bytes() + meta_path(path).read_bytes()
        checked.append(CheckedFile(f, raw, notes))
    if problems:
        raise EesFileError(problems)
    return checked


def load_files(store: Store, paths: Sequence[Path], *, actor: str) -> list[Dataset]:
    """Check every file, then store them all in one transaction (audited)."""
    checked = check_files(paths)
    return replace_datasets(store, [(c.file, c.raw, c.footnotes) for c in checked], actor=actor)


def coverage_warnings(files: Sequence[EesFile], config: PlanningConfig) -> list[str]:
    """What the council's comparisons will lack with these files (not errors: another file
    may supply it)."""
    a = config.authority
    out = []
    for f in files:
        d = f.data
        levels = set(d["geographic_level"].unique().to_list())
        las = (
            set(d.filter(pl.col("geographic_level") == LOCAL_AUTHORITY)["new_la_code"].to_list())
            if "new_la_code" in d.columns
            else set()
        )
        regions = (
            set(d.filter(pl.col("geographic_level") == REGIONAL)["region_code"].to_list())
            if "region_code" in d.columns
            else set()
        )
        countries = set(d.filter(pl.col("geographic_level") == NATIONAL)["country_code"].to_list())
        if NATIONAL not in levels or a.country_code not in countries:
            out.append(f"{f.name}: no National row for {a.country_name} ({a.country_code})")
        if a.region_code not in regions:
            out.append(f"{f.name}: no Regional row for {a.region_name} ({a.region_code})")
        absent = [c for c in config.neighbours if c not in las]
        if absent:
            out.append(
                f"{f.name}: {len(absent)} of the {len(config.neighbours)} statistical "
                f"neighbours have no Local authority rows ({', '.join(absent)})"
            )
        if LOCAL_AUTHORITY in levels and len(las) < 4:
            out.append(f"{f.name}: fewer than 4 authorities: quartile bands mean little")
    mapped = {c.indicator for c in config.comparisons}
    found = {i for f in files for i in f.indicators}
    if files and not mapped & found:
        out.append(
            "none of these files' indicators is mapped to a measure "
            "(pipelines/planning/comparisons.toml): they will not be shown"
        )
    return out
