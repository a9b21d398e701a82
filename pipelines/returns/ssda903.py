"""The SSDA903 return: one folder of CSV files per collection year.

The folder's name is its collection year (the year ending 31 March: `2026/` is 2025 to
2026), as councils file a year's return; the 903 CSVs themselves carry no year. Tables
are recognised by their columns (systems name the files differently), as Data to
Insight's validator does. File-level problems raise `SourceFileError` naming the file:
not a year folder, a year whose rules are not implemented, a file whose columns match
no 903 table, two files for one table, Header or Episodes missing, or any problem
ingest's CSV reader finds (encoding, delimiter, ragged rows). A row's key is
`<year>/<file name>:<line>`.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from pipelines.contracts import Column, Kind, SourceContract
from pipelines.ingest import IngestResult, SourceFileError, read_raw
from pipelines.returns.check import dfe_checked, to_result
from pipelines.returns.context import ssda903_context
from pipelines.returns.tables import (
    DATE_903,
    REQUIRED_903,
    RETURN_SOURCE,
    SSDA903_FIELDS,
    TABLE_COLUMNS,
)
from pipelines.returns.years import SSDA903_YEARS, YearRules, implemented

DATE_FIELDS = [
    "DOB", "MC_DOB", "DECOM", "DEC", "REVIEW", "DUC", "DATE_INT", "DATE_MATCH", "DATE_PLACED",
    "DATE_PLACED_CEASED", "MIS_START", "MIS_END",
    # context columns (pipelines/returns/context.py)
    "@header_dob", "@prev_DEC", "@next_DECOM", "@prev_MIS_END", "@last_DECOM",
]  # fmt: skip
_ONCE = ("AD1", "Header", "OC2", "OC3", "PrevPerm", "UASC")


def year_of(folder: Path) -> YearRules:
    if not folder.name.isdigit() or len(folder.name) != 4:
        raise SourceFileError(
            f"{folder}: an SSDA903 folder must be named by its collection year (the year "
            "ending 31 March, e.g. 2026 for 2025 to 2026)"
        )
    year = int(folder.name)
    if year not in SSDA903_YEARS:
        raise SourceFileError(
            f"{folder}: an SSDA903 return for {year - 1} to {year}; the rules of that collection "
            f"year are not implemented (implemented: {implemented(SSDA903_YEARS)}), so the files "
            "are not validated against another year's rules"
        )
    return SSDA903_YEARS[year]


def _as_text_contract(table: str) -> SourceContract:
    """A contract whose columns are the 903 table's, all text: lets ingest's CSV reader
    (encoding, delimiter, ragged rows, missing columns) read a 903 file."""
    cols = tuple(Column(c, Kind.TEXT, c) for c in TABLE_COLUMNS[table])
    return SourceContract(f"903 {table}", f"SSDA903 {table}", "SSDA903", "", cols)


def identify(path: Path) -> str:
    """The 903 table a CSV holds, from its header row."""
    with path.open("rb") as fh:
        first = fh.readline().decode("utf-8-sig", errors="replace").strip()
    cols = {c.strip().strip('"') for c in first.split(",")}
    for table, names in TABLE_COLUMNS.items():
        if cols == set(names):
            return table
    best = max(TABLE_COLUMNS, key=lambda t: len(cols & set(TABLE_COLUMNS[t])))
    missing = [c for c in TABLE_COLUMNS[best] if c not in cols]
    extra = sorted(cols - set(TABLE_COLUMNS[best]))
    raise SourceFileError(
        f"{path}: columns match no SSDA903 table (nearest: {best}, missing "
        f"{', '.join(missing) or 'none'}; unexpected {', '.join(extra) or 'none'})"
    )


def previous_episodes(folder: Path) -> pl.DataFrame | None:
    """Last year's Episodes, when the returns folder holds the year before's return (the
    rules comparing a child's first episode with last year's open one read it). Its own
    problems are that year's to report, so a return that cannot be read gives None."""
    prev = folder.parent / str(int(folder.name) - 1)
    if not prev.is_dir():
        return None
    for p in sorted(prev.glob("*.csv")):
        try:
            if identify(p) == "Episodes":
                return read_raw(p, _as_text_contract("Episodes"))
        except SourceFileError:
            continue
    return None


def read_903(folder: Path, *, as_at: date) -> dict[str, IngestResult]:
    """Every table of one year's 903, validated against that year's rules."""
    y = year_of(folder)
    files = sorted(p for p in folder.iterdir() if p.is_file())
    problems: list[str] = []
    found: dict[str, Path] = {}
    for p in files:
        if p.suffix.lower() != ".csv":
            problems.append(f"{p}: not a CSV file (an SSDA903 return is a set of CSV files)")
            continue
        try:
            table = identify(p)
        except SourceFileError as e:
            problems.append(str(e))
            continue
        if table in found:
            problems.append(f"{p}: a second {table} table (the first is {found[table].name})")
        found[table] = p
    for table in REQUIRED_903:
        if table not in found:
            problems.append(f"{folder}: no {table} table (every 903 return has one)")
    raws: dict[str, pl.DataFrame] = {}
    for table, p in found.items():
        try:
            raws[table] = read_raw(p, _as_text_contract(table))
        except SourceFileError as e:
            # A table may be empty in a year (no adoptions): header only is not a problem.
            if "no data rows" not in str(e) or table in REQUIRED_903:
                problems.append(str(e))
    if problems:
        raise SourceFileError("\n  - ".join(problems))
    last_episodes = previous_episodes(folder)
    header = raws["Header"]
    hdr = header.select(
        "CHILD", pl.col("DOB").alias("@header_dob"), pl.col("SEX").alias("@header_sex")
    ).unique("CHILD", keep="first")
    out: dict[str, IngestResult] = {}
    for table, raw in raws.items():
        df = raw.with_row_index("@line", offset=2).with_columns(pl.col("@line").cast(pl.Int64))
        if table != "Header":
            df = df.join(hdr, on="CHILD", how="left").with_columns(
                pl.col("@header_dob").is_not_null().alias("@in_header")
            )
        else:
            df = df.with_columns(pl.lit(True).alias("@in_header"))
        df = df.sort("@line")
        df = ssda903_context(table, df, raws["Episodes"], y, DATE_903, last_episodes)
        if table in _ONCE:
            df = df.with_columns(
                (pl.col("CHILD").is_not_null() & pl.col("CHILD").is_duplicated()).alias("@dup")
            )
        checked = dfe_checked(df, "ssda903", table, y, DATE_FIELDS, DATE_903)
        file = found[table]
        out[RETURN_SOURCE[table]] = to_result(
            checked,
            RETURN_SOURCE[table],
            SSDA903_FIELDS[table],
            file=file,
            row_key=pl.format("{}/{}:{}", pl.lit(folder.name), pl.lit(file.name), pl.col("@line")),
            year=y.year,
            as_at=as_at,
        )
    return out
