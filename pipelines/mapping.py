"""A council's own extracts by configuration, not code: a mapping file (TOML) says how a
local export becomes a source contract.

```toml
[[source]]
contract = "early_help"            # the contract it fills (pipelines/contracts.py)
file = "EHM_Export_*.csv"          # its name in the raw folder (a glob; one match)
date_format = "%d/%m/%Y"           # or a list: every layout the system emits
[source.columns]                   # contract column = the export's column
record_id = "Episode Ref"
forename = "First Name"
[source.codes.closure_reason]      # the export's code = the contract's code
"Stepped up to CSC" = "STEP_UP_CSC"
```

A contract column left out of `columns` is looked for under its own name. Codes not in a
`codes` table pass through unchanged, so the contract's own check reports them.
`load_mapping` gathers every problem in the file (unknown contract or column, a code
mapped to a value the contract does not know, a date format with no date in it) and
raises them together; nothing is read until the mapping is sound.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl

from pipelines.contracts import CONTRACTS, Column, Kind, SourceContract


class MappingError(Exception):
    """A mapping file cannot be used; the message lists every problem."""


@dataclass(frozen=True)
class SourceMapping:
    contract: str
    file: str
    columns: dict[str, str] = field(default_factory=dict)  # contract column -> local
    date_formats: tuple[str, ...] = ()
    codes: dict[str, dict[str, str]] = field(default_factory=dict)  # column -> local -> code

    def local(self, column: str) -> str:
        return self.columns.get(column, column)


@dataclass(frozen=True)
class Mapping:
    path: Path
    sources: dict[str, SourceMapping]


_CODE_KINDS = (Kind.CODE, Kind.CODES, Kind.FLAG)


def load_mapping(path: Path) -> Mapping:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MappingError(f"{path}: no such mapping file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise MappingError(f"{path}: not a valid TOML file ({e})") from None
    problems: list[str] = []
    sources: dict[str, SourceMapping] = {}
    entries = data.get("source")
    if not isinstance(entries, list) or not entries:
        raise MappingError(f"{path}: no [[source]] tables")
    for i, entry in enumerate(entries, start=1):
        where = f"{path}: [[source]] {i}"
        sm = _source(entry, where, problems)
        if sm is None:
            continue
        if sm.contract in sources:
            problems.append(f"{where}: a second mapping for {sm.contract!r}")
        sources[sm.contract] = sm
    if problems:
        raise MappingError(
            f"{len(problems)} problem(s) in the mapping file:\n  - " + "\n  - ".join(problems)
        )
    return Mapping(path, sources)


def _source(entry: object, where: str, problems: list[str]) -> SourceMapping | None:
    if not isinstance(entry, dict):
        problems.append(f"{where}: not a table")
        return None
    unknown_keys = set(entry) - {"contract", "file", "columns", "date_format", "codes"}
    if unknown_keys:
        problems.append(f"{where}: unknown key(s) {', '.join(sorted(unknown_keys))}")
    name = entry.get("contract")
    if name not in CONTRACTS:
        problems.append(f"{where}: contract {name!r} is not a source contract "
                        f"(known: {', '.join(CONTRACTS)})")  # fmt: skip
        return None
    contract = CONTRACTS[name]
    where = f"{where} ({name})"
    file = entry.get("file")
    if not isinstance(file, str) or not file:
        problems.append(f"{where}: 'file' (the export's name, a glob) is missing")
        file = ""
    columns = entry.get("columns", {})
    known = {c.name: c for c in contract.every_column}
    if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
        problems.append(f"{where}: [columns] must map contract columns to column names")
        columns = {}
    for col in columns:
        if col not in known:
            problems.append(f"{where}: [columns] {col!r} is not a column of {name} "
                            f"(columns: {', '.join(known)})")  # fmt: skip
    locals_ = list(columns.values())
    for dup in sorted({v for v in locals_ if locals_.count(v) > 1}):
        problems.append(f"{where}: [columns] maps column {dup!r} to more than one contract column")
    formats = entry.get("date_format", [])
    formats = [formats] if isinstance(formats, str) else formats
    if not isinstance(formats, list) or not all(isinstance(f, str) for f in formats):
        problems.append(f"{where}: date_format must be a format or a list of formats")
        formats = []
    for f in formats:
        if not _is_date_format(f):
            problems.append(f"{where}: date_format {f!r} does not read a day, month and year "
                            "(e.g. '%d/%m/%Y')")  # fmt: skip
    codes = entry.get("codes", {})
    if not isinstance(codes, dict):
        problems.append(f"{where}: [codes] must hold one table per coded column")
        codes = {}
    for col, table in codes.items():
        c = known.get(col)
        if c is None or c.kind not in _CODE_KINDS:
            problems.append(f"{where}: [codes.{col}] but {col!r} is not a coded column of {name}")
            continue
        if not isinstance(table, dict):
            problems.append(f"{where}: [codes.{col}] must map the export's codes to the contract's")
            continue
        allowed = _allowed(c)
        for local, code in table.items():
            if not isinstance(code, str) or code.upper() not in allowed:
                problems.append(f"{where}: [codes.{col}] maps {local!r} to {code!r}, not one of "
                                f"{name}'s codes ({', '.join(allowed)})")  # fmt: skip
    return SourceMapping(
        contract=name,
        file=file,
        columns={k: v for k, v in columns.items() if k in known},
        date_formats=tuple(formats),
        codes={
            k: {str(a): str(b) for a, b in v.items()}
            for k, v in codes.items()
            if isinstance(v, dict)
        },  # fmt: skip
    )


def _allowed(col: Column) -> tuple[str, ...]:
    return col.codes if col.codes else ("Y", "N")


def _is_date_format(fmt: str) -> bool:
    try:
        text = date(2001, 2, 3).strftime(fmt)
    except ValueError:
        return False
    if not all(d in fmt for d in ("%d", "%m")) and "%b" not in fmt and "%B" not in fmt:
        return False
    return ("%Y" in fmt or "%y" in fmt) and bool(text)


def local_contract(contract: SourceContract, sm: SourceMapping) -> SourceContract:
    """The contract as the export names its columns: what ingest's reader checks."""

    def rename(cols: tuple[Column, ...]) -> tuple[Column, ...]:
        return tuple(
            Column(sm.local(c.name), Kind.TEXT, c.description, c.role, c.required) for c in cols
        )

    return SourceContract(
        contract.name,
        f"{contract.title} (as mapped by the mapping file)",
        contract.system,
        contract.description,
        rename(contract.columns),
        optional_columns=rename(contract.optional_columns),
    )


def apply_mapping(raw: pl.DataFrame, contract: SourceContract, sm: SourceMapping) -> pl.DataFrame:
    """Pure: the export's text columns in, the contract's text columns out: renamed, codes
    recoded, dates rewritten in the contract's first layout. A value that cannot be read
    is left as it was, so the contract's checks quarantine its row with the usual reason."""
    out: list[pl.Expr] = []
    target = contract.date_formats[0]
    for c in contract.every_column:
        v = pl.col(sm.local(c.name))
        if c.name in sm.codes:
            table = sm.codes[c.name]
            v = v.replace(table)
        if c.kind is Kind.DATE and sm.date_formats:
            parsed = pl.coalesce(
                [v.str.strptime(pl.Date, f, strict=False) for f in sm.date_formats]
            )
            v = pl.when(parsed.is_not_null()).then(parsed.dt.strftime(target)).otherwise(v)
        out.append(v.alias(c.name))
    return raw.select(out)


def find_mapped(raw_dir: Path, sm: SourceMapping) -> Path:
    from pipelines.ingest import SourceFileError

    found = sorted(p for p in raw_dir.glob(sm.file) if p.is_file())
    if not found:
        raise SourceFileError(f"{raw_dir}: no file matches {sm.file!r} (the mapping file's "
                              f"{sm.contract} export)")  # fmt: skip
    if len(found) > 1:
        raise SourceFileError(f"{raw_dir}: {len(found)} files match {sm.file!r} for "
                              f"{sm.contract} ({', '.join(p.name for p in found)}); "
                              "name one")  # fmt: skip
    return found[0]
