"""Every statutory return under `<raw>/returns/`, as ingest results.

Layout (what `portal synth` writes, and what a council copies its returns into):
    returns/cin_census/*.xml     one CIN census file per collection year
    returns/ssda903/<YYYY>/*.csv one folder of 903 tables per collection year

Each source (a CIN table, a 903 table) gets one result across all years; its rows keep
their `collection_year`. File-level problems across every file are gathered and raised
together, as `ingest_all` does for the other sources.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pipelines.ingest import IngestResult, SourceFileError
from pipelines.returns.check import merge
from pipelines.returns.cin import read_cin
from pipelines.returns.ssda903 import read_903

RETURNS_DIR = "returns"
CIN_DIR = "cin_census"
SSDA903_DIR = "ssda903"


def return_files(raw_dir: Path) -> tuple[list[Path], list[Path]]:
    """The CIN census files and the 903 year folders under `raw_dir/returns/`."""
    root = raw_dir / RETURNS_DIR
    cin = sorted((root / CIN_DIR).glob("*")) if (root / CIN_DIR).is_dir() else []
    ssda = sorted(p for p in (root / SSDA903_DIR).glob("*") if p.is_dir()) if (
        root / SSDA903_DIR
    ).is_dir() else []  # fmt: skip
    return [p for p in cin if p.is_file()], ssda


def read_returns(raw_dir: Path, *, as_at: date) -> tuple[dict[str, IngestResult], list[str]]:
    """(results by source, file-level problems). Nothing raised: the caller gathers."""
    cin, ssda = return_files(raw_dir)
    parts: dict[str, list[IngestResult]] = {}
    problems: list[str] = []
    for p in cin:
        if p.suffix.lower() != ".xml":
            problems.append(f"{p}: not an XML file (the CIN census is one XML file per year)")
            continue
        try:
            for source, res in read_cin(p, as_at=as_at).items():
                parts.setdefault(source, []).append(res)
        except SourceFileError as e:
            problems.append(str(e))
    for folder in ssda:
        try:
            for source, res in read_903(folder, as_at=as_at).items():
                parts.setdefault(source, []).append(res)
        except SourceFileError as e:
            problems.append(str(e))
    root = raw_dir / RETURNS_DIR
    results = {s: merge(rs, s, root) for s, rs in parts.items()}
    return results, problems


def ingest_returns(raw_dir: Path, *, as_at: date) -> dict[str, IngestResult]:
    """The returns' results, or SourceFileError with every file-level problem."""
    results, problems = read_returns(raw_dir, as_at=as_at)
    if problems:
        plural = "s" if len(problems) > 1 else ""
        raise SourceFileError(
            f"{len(problems)} return file problem{plural}; nothing was written:\n  - "
            + "\n  - ".join(problems)
        )
    return results
