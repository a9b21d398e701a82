"""Ingest: read each source extract, validate it against its contract,
standardise it, and quarantine the rows that cannot be used.

Two kinds of problem, handled differently:
- file-level (missing file, empty file, not CSV/Parquet, not UTF-8, wrong
  delimiter, missing columns, ragged rows) stop the run: `SourceFileError`
  names the file and the problem, every such problem across all files is
  gathered into one message, and nothing is written anywhere;
- row-level problems quarantine the row with machine-readable reasons
  (`missing_required:dob`, `bad_date:referral_date`, `formula_like_cell:forename`,
  ...). Invariant, checked here: rows in = rows accepted + rows quarantined.

Identifiers that fail their checksum are not a reason to lose a row when the
row has other ways to be linked (name, date of birth, address): the bad value
is blanked and a data-quality flag (`invalid_nhs_number`) is kept. Where the
identifier is the only way to link the row (health's NHS number) the row is
quarantined instead.

The objections register is validated differently (`validate_objections`): an
objection must never be lost, so no field problem quarantines its row. A bad
field is blanked and kept as a warning; the row is used while any identifier is
usable (NHS, NI or UPN number with a valid checksum, the social care person
number, or name with date of birth, and postcode when there is one, for the
linkage model). A row with no usable
identifier is quarantined with `no_usable_identifier`, and the run refuses to
publish while any such row exists. A received date after the data as-at date is
normal (objections apply from the day they are received, whatever the data
date); one after the run date is a warning, never a reason to drop the row.
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl

from anonymise.hierarchies import normalise_postcode
from pipelines.contracts import (
    OBJECTION_SCOPES,
    SCOPE_PLANNING_AND_RESEARCH,
    Column,
    Kind,
    SourceContract,
    all_contracts,
)
from pipelines.identifiers import is_valid_nhs_number, is_valid_ni_number, is_valid_upn
from pipelines.mapping import Mapping, apply_mapping, find_mapped, local_contract
from pipelines.partitioned import ON_DRIVER, MapRows

# A cell a spreadsheet would execute: '=', '+', '-', '@', or a leading tab/CR
# (OWASP's CSV injection list). Such a cell is never legitimate in an extract.
FORMULA_RE = r"^[=+\-@\t\r]"
POSTCODE_RE = r"^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}$"
EARLIEST_DATE = date(1900, 1, 1)


class SourceFileError(Exception):
    """A source file cannot be read as its contract describes; the run stops."""


@dataclass(frozen=True)
class IngestResult:
    source: str
    file: Path
    rows_in: int
    accepted: pl.DataFrame  # source, record_id, typed contract columns, dq_flags
    quarantined: pl.DataFrame  # source, line, raw columns (text), reasons

    def __post_init__(self) -> None:
        if self.accepted.height + self.quarantined.height != self.rows_in:
            raise AssertionError(
                f"{self.source}: {self.rows_in} rows in but {self.accepted.height} accepted "
                f"+ {self.quarantined.height} quarantined"
            )


# ---------------------------------------------------------------- reading ---


def find_extract(raw_dir: Path, contract: SourceContract) -> Path:
    for ext in ("csv", "parquet"):
        p = raw_dir / f"{contract.file_stem}.{ext}"
        if p.exists():
            return p
    others = sorted(p.name for p in raw_dir.glob(f"{contract.file_stem}.*"))
    if others:
        raise SourceFileError(
            f"{raw_dir / others[0]}: not a CSV or Parquet file; export {contract.title} "
            f"as {contract.file_stem}.csv or {contract.file_stem}.parquet"
        )
    raise SourceFileError(
        f"{raw_dir}: no extract for {contract.title} "
        f"(looked for {contract.file_stem}.csv and {contract.file_stem}.parquet)"
    )


def read_raw(path: Path, contract: SourceContract) -> pl.DataFrame:
    """Read an extract as text columns, or raise SourceFileError saying why not."""
    data = path.read_bytes()
    if not data.strip():
        raise SourceFileError(f"{path}: the file is empty")
    if path.suffix == ".parquet":
        if data[:4] != b"PAR1":
            raise SourceFileError(f"{path}: not a Parquet file (no PAR1 header)")
        df = pl.read_parquet(io.BytesIO(data))
        df = df.select(pl.all().cast(pl.Utf8))
    else:
        if data[:4] == b"PK\x03\x04" or data[:4] == b"PAR1" or b"\x00" in data[:4096]:
            raise SourceFileError(
                f"{path}: not a CSV file (binary content; a spreadsheet or Parquet file "
                "saved with a .csv name?)"
            )
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            line = data[: e.start].count(b"\n") + 1
            raise SourceFileError(
                f"{path}: not valid UTF-8 at line {line} (byte 0x{data[e.start]:02X}); "
                "re-export the extract as UTF-8"
            ) from None
        header = text.split("\n", 1)[0].rstrip("\r")
        if "," not in header:
            for delim, label in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
                if delim in header:
                    raise SourceFileError(
                        f"{path}: columns are separated by {label}, expected commas"
                    )
        try:
            df = pl.read_csv(io.StringIO(text), infer_schema=False)
        except pl.exceptions.PolarsError as e:
            first = str(e).strip().splitlines()[0]
            raise SourceFileError(f"{path}: cannot be parsed as CSV ({first})") from None
    if df.height == 0:
        raise SourceFileError(f"{path}: has a header but no data rows")
    _check_columns(path, df.columns, contract)
    # Blank cells are missing values, whatever the exporting system wrote.
    return df.select(
        pl.col(c.name).str.strip_chars().replace("", None).alias(c.name)
        if c.name in df.columns
        else pl.lit(None, pl.Utf8).alias(c.name)
        for c in contract.every_column
    )


def _check_columns(path: Path, found: list[str], contract: SourceContract) -> None:
    missing = [c for c in contract.column_names if c not in found]
    if not missing:
        return
    known = {c.name for c in contract.every_column}
    extra = [c for c in found if c not in known]
    hint = f"; unexpected column(s) {', '.join(map(repr, extra))} (renamed?)" if extra else ""
    raise SourceFileError(
        f"{path}: missing column(s) {', '.join(map(repr, missing))} required by the "
        f"{contract.title} contract{hint}"
    )


# ------------------------------------------------------- standardisation ---


def standardise_name(value: str | None) -> str | None:
    """Upper case, diacritics removed, punctuation except hyphen/apostrophe removed."""
    if value is None:
        return None
    v = unicodedata.normalize("NFKD", value)
    v = "".join(ch for ch in v if not unicodedata.combining(ch))
    v = v.replace("Ł", "L").replace("ł", "l").replace("Ø", "O").replace("ø", "o")
    v = re.sub(r"[^A-Za-z' -]", "", v).upper()
    v = re.sub(r"\s+", " ", v).strip(" -'")
    return v or None


def per_distinct(fn: Callable[[str], Any], dtype: pl.DataType) -> Callable[[pl.Series], pl.Series]:
    """`fn` applied once per distinct non-null value of a column, nulls kept null (what
    `map_elements` gives, since it skips nulls). A county repeats each forename, surname
    and identifier across many records, and calling Python once per row was most of the
    ingest time (measured in docs/scale.md)."""

    def apply(s: pl.Series) -> pl.Series:
        keys = s.drop_nulls().unique()
        values = pl.Series([fn(k) for k in keys], dtype=dtype)
        return s.replace_strict(keys, values, default=None, return_dtype=dtype)

    return apply


def name_expr(col: str) -> pl.Expr:
    return pl.col(col).map_batches(
        per_distinct(standardise_name, pl.Utf8()), pl.Utf8, is_elementwise=True
    )


def phone_expr(col: str) -> pl.Expr:
    """A UK telephone number in national form (01234 567890 -> 01234567890, +44 7700
    900123 -> 07700900123), or null when it is not 10 or 11 digits starting with 0: a
    school writes numbers with spaces, brackets, dashes and the country code, and two
    contacts share a number only if the digits agree."""
    digits = pl.col(col).str.replace_all(r"[\s()\-.]", "")
    national = (
        pl.when(digits.str.starts_with("+44"))
        .then(pl.lit("0") + digits.str.slice(3).str.strip_chars_start("0"))
        .when(digits.str.starts_with("0044"))
        .then(pl.lit("0") + digits.str.slice(4).str.strip_chars_start("0"))
        .otherwise(digits)
    )
    return pl.when(national.str.contains(r"^0\d{9,10}$")).then(national).otherwise(None).alias(col)


def _date_expr(col: str, formats: Iterable[str]) -> pl.Expr:
    return pl.coalesce(
        [pl.col(col).str.strptime(pl.Date, fmt, strict=False, exact=True) for fmt in formats]
    )


def _with_optional_columns(raw: pl.DataFrame, contract: SourceContract) -> pl.DataFrame:
    """An optional column the file does not carry is a column of missing values."""
    absent = [c.name for c in contract.optional_columns if c.name not in raw.columns]
    return raw.with_columns(pl.lit(None, pl.Utf8).alias(c) for c in absent) if absent else raw


_ID_CHECKS = {
    Kind.NHS_NUMBER: ("invalid_nhs_number", is_valid_nhs_number),
    Kind.NI_NUMBER: ("invalid_ni_number", is_valid_ni_number),
    Kind.UPN: ("invalid_upn", is_valid_upn),
}


def _id_clean(col: Column) -> pl.Expr:
    if col.kind is Kind.NHS_NUMBER:
        return pl.col(col.name).str.replace_all(r"[\s-]", "")
    return pl.col(col.name).str.replace_all(r"\s", "").str.to_uppercase()


def validate(
    raw: pl.DataFrame,
    contract: SourceContract,
    *,
    file: Path,
    as_at: date,
    map_rows: MapRows = ON_DRIVER,
) -> IngestResult:
    """Pure: raw text columns in, accepted (typed, standardised) and quarantined rows out.

    Two parts: `row_checks`, each row's own checks and standardisation, which `map_rows`
    may run on Spark partitions (pipelines/partitioned.py); then the rules that compare
    rows (a repeated record id, a repeated row), applied here over the whole file."""
    raw = _with_optional_columns(raw, contract)
    n = raw.height
    # The file's row numbers, given before any partitioning: quarantine names the line.
    df = raw.with_row_index("_row").with_columns(pl.col("_row").cast(pl.Int64))
    typed = map_rows(df, partial(row_checks, contract=contract, as_at=as_at), order="_row")
    return _whole_file_checks(df, typed, contract, file=file, rows_in=n)


def row_checks(df: pl.DataFrame, *, contract: SourceContract, as_at: date) -> pl.DataFrame:
    """Each row's checks and standardisation: `_row`, `_fatal` (reasons before and
    including the record id's own, `_fatal_rest` the others), `dq_flags` and the
    standardised columns. Row-wise (every output row depends on its input row alone), so
    its result over the whole file is the union of its results over any split of it."""
    std: list[pl.Expr] = []
    fatal: list[pl.Expr] = []
    flags: list[pl.Expr] = []
    # A standardised value the checks read more than once (a date parsed in three formats,
    # an identifier's checksum) is computed once into a working column: an eager frame
    # does not share common subexpressions, so each use would compute it again.
    once: list[pl.Expr] = []

    def computed_once(expr: pl.Expr, name: str) -> pl.Expr:
        once.append(expr.alias(f"_once:{name}"))
        return pl.col(f"_once:{name}")

    def reason(cond: pl.Expr, code: str) -> pl.Expr:
        return pl.when(cond).then(pl.lit(code)).otherwise(pl.lit(None, pl.Utf8))

    split_at = 0
    for col in contract.every_column:
        c = col.name
        v = pl.col(c)
        present = v.is_not_null()
        if col.kind not in (Kind.DATE, Kind.INT):
            formula = v.str.contains(FORMULA_RE)
            if col.kind is Kind.PHONE:
                # "+44 7700 900123" is how people write a number, not a formula.
                formula = formula & ~v.str.contains(r"^\+[0-9 ()\-]+$")
            fatal.append(reason(present & formula, f"formula_like_cell:{c}"))
        if col.kind is Kind.RECORD_ID:
            std.append(v.alias("record_id"))
            fatal.append(reason(~present, f"missing_required:{c}"))
            # A repeated id compares rows: `_whole_file_checks` puts it here, between this
            # column's reasons and the next columns'.
            split_at = len(fatal)
            continue
        if col.kind is Kind.NAME:
            s = name_expr(c)
        elif col.kind is Kind.DATE:
            s = computed_once(_date_expr(c, contract.date_formats), c)
            fatal.append(reason(present & s.is_null(), f"bad_date:{c}"))
            fatal.append(
                reason(
                    s.is_not_null() & ((s < pl.lit(EARLIEST_DATE)) | (s > pl.lit(as_at))),
                    f"impossible_date:{c}",
                )
            )
        elif col.kind is Kind.INT:
            s = v.cast(pl.Int64, strict=False)
            fatal.append(reason(present & (s.is_null() | (s < 0)), f"bad_int:{c}"))
        elif col.kind in (Kind.CODE, Kind.FLAG):
            s = v.str.to_uppercase()
            allowed = list(col.codes) if col.codes else ["Y", "N"]
            fatal.append(reason(present & ~s.is_in(allowed), f"bad_code:{c}"))
        elif col.kind is Kind.CODES:
            s = v.str.to_uppercase().str.replace_all(r"\s", "")
            bad = s.str.split(";").list.eval(pl.element().is_in(list(col.codes)).not_()).list.any()
            fatal.append(reason(present & bad, f"bad_code:{c}"))
        elif col.kind is Kind.POSTCODE:
            pc = computed_once(normalise_postcode(v), c)
            ok = pc.str.contains(POSTCODE_RE)
            flags.append(reason(present & ~ok, "invalid_postcode"))
            s = pl.when(ok).then(pc).otherwise(None)
        elif col.kind is Kind.PHONE:
            phone = computed_once(phone_expr(c), c)
            flags.append(reason(present & phone.is_null(), f"invalid_phone:{c}"))
            s = phone
        elif col.kind in _ID_CHECKS:
            code, check = _ID_CHECKS[col.kind]
            cleaned = computed_once(_id_clean(col), c)
            ok = computed_once(
                _id_clean(col).map_batches(
                    per_distinct(check, pl.Boolean()), pl.Boolean, is_elementwise=True
                ),
                f"{c}:ok",
            ).fill_null(False)
            if col.required:
                fatal.append(reason(present & ~ok, code))
            else:
                flags.append(reason(present & ~ok, code))
            s = pl.when(ok).then(cleaned).otherwise(None)
        else:
            s = v.str.replace_all(r"\s+", " ")
        if col.required and col.kind is not Kind.RECORD_ID:
            fatal.append(reason(~present, f"missing_required:{c}"))
        std.append(s.alias(c))

    def reasons(exprs: list[pl.Expr], name: str) -> pl.Expr:
        if not exprs:
            return pl.lit([], pl.List(pl.Utf8)).alias(name)
        return pl.concat_list(exprs).list.drop_nulls().alias(name)

    checked = (
        df.with_columns(once)
        .with_columns(
            reasons(fatal[:split_at], "_fatal"),
            reasons(fatal[split_at:], "_fatal_rest"),
            reasons(flags, "dq_flags"),
        )
        .with_columns(std_cols=pl.struct(std))
    )
    typed = checked.select(
        "_row", "_fatal", "_fatal_rest", "dq_flags", pl.col("std_cols").struct.unnest()
    )

    # Cross-field: a date of birth after the event it is recorded against.
    event = contract.event_date
    if event and "dob" in contract.column_names:
        after = (
            (pl.col("dob") > pl.col(event))
            & pl.col("dob").is_not_null()
            & pl.col(event).is_not_null()
        )
        typed = typed.with_columns(
            pl.when(after)
            .then(pl.col("_fatal_rest").list.concat(pl.lit(["impossible_date:dob_after_event"])))
            .otherwise(pl.col("_fatal_rest"))
            .alias("_fatal_rest")
        )
    return typed


def _whole_file_checks(
    df: pl.DataFrame, typed: pl.DataFrame, contract: SourceContract, *, file: Path, rows_in: int
) -> IngestResult:
    """The rules that compare rows, over the whole file in file order (`typed`: the
    `row_checks` of every row, sorted by `_row`), then the split into accepted and
    quarantined rows (`df`: the raw rows, for the quarantine's text)."""
    # Not the first row with this id (one hash pass; a window over the id was slower).
    rid = pl.col("record_id")
    repeated_id = rid.is_not_null() & ~rid.is_first_distinct()
    typed = typed.with_columns(
        pl.concat_list(
            "_fatal",
            pl.when(repeated_id)
            .then(pl.lit(["duplicate_record_id"]))
            .otherwise(pl.lit([], pl.List(pl.Utf8))),
            "_fatal_rest",
        ).alias("_fatal")
    ).drop("_fatal_rest")
    # Exact duplicates of an earlier row (all columns but the record key).
    content = [c for c in contract.column_names if c != contract.record_id]
    repeated = ~pl.struct(content).is_first_distinct() if content else pl.lit(False)
    typed = typed.with_columns(
        pl.when(repeated)
        .then(pl.col("_fatal").list.concat(pl.lit(["duplicate_row"])))
        .otherwise(pl.col("_fatal"))
        .alias("_fatal")
    )

    bad_rows = typed.filter(pl.col("_fatal").list.len() > 0)
    accepted = (
        typed.filter(pl.col("_fatal").list.len() == 0)
        .drop("_fatal", "_row")
        .with_columns(pl.lit(contract.name).alias("source"))
        .select(
            "source",
            "record_id",
            *[c.name for c in contract.every_column if c.name != contract.record_id],
            "dq_flags",
        )
    )
    quarantined = (
        df.join(bad_rows.select("_row", "_fatal"), on="_row", how="inner")
        .sort("_row")
        .select(
            pl.lit(contract.name).alias("source"),
            pl.lit(str(file)).alias("file"),
            # Line in the file: the header is line 1.
            (pl.col("_row") + 2).cast(pl.Int64).alias("line"),
            pl.col("_fatal").list.join(";").alias("reasons"),
            *[c.name for c in contract.every_column],
        )
    )
    return IngestResult(contract.name, file, rows_in, accepted, quarantined)


# --------------------------------------------------------- objections ---

STRONG_OBJECTION_IDS = ("nhs_number", "ni_number", "upn", "lcs_person_id")


def _warn(cond: pl.Expr, code: str) -> pl.Expr:
    return pl.when(cond).then(pl.lit(code)).otherwise(pl.lit(None, pl.Utf8))


def validate_objections(
    raw: pl.DataFrame, contract: SourceContract, *, file: Path, run_date: date
) -> IngestResult:
    """Pure: the objections register in, every row it can use out (see the module
    docstring). Accepted rows carry `line` (the row's line in the file, for reports),
    typed and standardised fields (a bad one blanked) and their warnings in `dq_flags`;
    rows with no usable identifier are quarantined with `no_usable_identifier`."""
    raw = _with_optional_columns(raw, contract)
    # Padding is never meaningful in a register (read_raw strips files; callers may not).
    raw = raw.with_columns(pl.col(pl.Utf8).str.strip_chars().replace("", None))
    n = raw.height
    df = raw.with_row_index("_row")
    warnings: list[pl.Expr] = []
    std: list[pl.Expr] = []
    for col in contract.every_column:
        c = col.name
        v = pl.col(c)
        present = v.is_not_null()
        formula = present & v.str.contains(FORMULA_RE)
        if col.kind is Kind.RECORD_ID:
            continue
        if col.kind is not Kind.DATE:
            warnings.append(_warn(formula, f"formula_like_cell:{c}"))
            v = pl.when(formula).then(None).otherwise(v)
            present = v.is_not_null()
        if col.kind is Kind.NAME:
            s = pl.when(formula).then(None).otherwise(name_expr(c))
        elif col.kind is Kind.DATE:
            s = _date_expr(c, contract.date_formats)
            warnings.append(_warn(present & s.is_null(), f"bad_date:{c}"))
            if c == "dob":
                impossible = s.is_not_null() & (
                    (s < pl.lit(EARLIEST_DATE)) | (s > pl.lit(run_date))
                )
                warnings.append(_warn(impossible, "impossible_date:dob"))
                s = pl.when(impossible).then(None).otherwise(s)
            else:
                # Received after the data date is normal; after today, a typo worth a
                # warning, but the objection still applies.
                warnings.append(_warn(s > pl.lit(run_date), f"future_date:{c}"))
                warnings.append(_warn(s < pl.lit(EARLIEST_DATE), f"impossible_date:{c}"))
        elif c == "scope":
            s = v.str.to_uppercase().str.replace_all(r"[\s-]+", "_")
            bad = ~s.is_in(list(OBJECTION_SCOPES)).fill_null(False)
            warnings.append(_warn(present & bad, "bad_code:scope"))
            warnings.append(_warn(~present, "missing:scope"))
            # An unreadable scope is read as the widest one: never apply less than asked.
            s = pl.when(bad).then(pl.lit(SCOPE_PLANNING_AND_RESEARCH)).otherwise(s)
        elif col.kind is Kind.CODE:
            s = v.str.to_uppercase()
            bad = present & ~s.is_in(list(col.codes))
            warnings.append(_warn(bad, f"bad_code:{c}"))
            s = pl.when(bad).then(None).otherwise(s)
        elif col.kind is Kind.POSTCODE:
            pc = normalise_postcode(v)
            ok = pc.str.contains(POSTCODE_RE)
            warnings.append(_warn(present & ~ok, "invalid_postcode"))
            s = pl.when(ok).then(pc).otherwise(None)
        elif col.kind in _ID_CHECKS:
            code, check = _ID_CHECKS[col.kind]
            cleaned = pl.when(formula).then(None).otherwise(_id_clean(col))
            ok = cleaned.map_batches(
                per_distinct(check, pl.Boolean()), pl.Boolean, is_elementwise=True
            ).fill_null(False)
            warnings.append(_warn(present & ~ok, code))
            s = pl.when(ok).then(cleaned).otherwise(None)
        elif c == "lcs_person_id":
            s = v.str.replace_all(r"\s", "").str.to_uppercase()
        else:
            s = v.str.replace_all(r"\s+", " ")
        std.append(s.alias(c))

    rid = pl.col(contract.record_id)
    typed = df.with_columns(
        pl.concat_list(warnings).list.drop_nulls().alias("dq_flags"),
        pl.struct(std).alias("_std"),
    ).select(
        "_row",
        rid.alias("_rid"),
        "dq_flags",
        pl.col("_std").struct.unnest(),
    )
    # A missing or repeated register reference must not lose the objection: give the row
    # a reference of its own and say so.
    typed = typed.with_columns(
        pl.when(pl.col("_rid").is_null() | pl.col("_rid").str.contains(FORMULA_RE))
        .then(pl.format("line-{}", pl.col("_row") + 2))
        .when(pl.col("_rid").is_duplicated())
        .then(pl.format("{}#line-{}", pl.col("_rid"), pl.col("_row") + 2))
        .otherwise(pl.col("_rid"))
        .alias("record_id"),
        pl.col("dq_flags").list.concat(
            pl.when(pl.col("_rid").is_null())
            .then(pl.lit(["missing:objection_id"]))
            .when(pl.col("_rid").is_duplicated())
            .then(pl.lit(["duplicate_record_id"]))
            .otherwise(pl.lit([], pl.List(pl.Utf8)))
        ),
        (pl.col("_row") + 2).cast(pl.Int64).alias("line"),
    )
    # Received date unreadable: it applies from this run.
    typed = typed.with_columns(pl.col("date_received").fill_null(pl.lit(run_date)))
    # Name and date of birth go to the linkage model, with the postcode when there is one
    # (without it the model can still be sure; if it is not, the objection is reported as
    # unmatched, which also stops publication).
    usable = pl.any_horizontal(
        *(pl.col(c).is_not_null() for c in STRONG_OBJECTION_IDS),
        pl.all_horizontal(*(pl.col(c).is_not_null() for c in ("forename", "surname", "dob"))),
    )
    typed = typed.with_columns(usable.alias("_usable"))
    cols = [c.name for c in contract.every_column if c.name != contract.record_id]
    accepted = typed.filter(pl.col("_usable")).select(
        pl.lit(contract.name).alias("source"), "record_id", "line", *cols, "dq_flags"
    )
    unusable = typed.filter(~pl.col("_usable")).select(
        "_row",
        pl.concat_list(pl.lit(["no_usable_identifier"]), pl.col("dq_flags"))
        .list.join(";")
        .alias("reasons"),
    )
    quarantined = (
        df.join(unusable, on="_row", how="inner")
        .sort("_row")
        .select(
            pl.lit(contract.name).alias("source"),
            pl.lit(str(file)).alias("file"),
            (pl.col("_row") + 2).cast(pl.Int64).alias("line"),
            "reasons",
            *[c.name for c in contract.every_column],
        )
    )
    return IngestResult(contract.name, file, n, accepted, quarantined)


def ingest_all(
    raw_dir: Path,
    *,
    as_at: date | None = None,
    sources: Iterable[SourceContract] | None = None,
    run_date: date | None = None,
    mapping: Mapping | None = None,
    map_rows: MapRows = ON_DRIVER,
) -> dict[str, IngestResult]:
    """Read and validate every source. File problems are gathered and raised together.

    as_at: the data date (later event dates are impossible); run_date: today, the
    latest possible date for an objection to have been received; mapping: how the
    council's own exports map to contracts (pipelines/mapping.py); map_rows: where each
    extract's row checks run (pipelines/partitioned.py: here, or on Spark partitions)."""
    out, problems = gather_sources(
        raw_dir, as_at=as_at, sources=sources, run_date=run_date, mapping=mapping,
        map_rows=map_rows,
    )  # fmt: skip
    if problems:
        plural = "s" if len(problems) > 1 else ""
        raise SourceFileError(
            f"{len(problems)} source file problem{plural}; nothing was written:\n  - "
            + "\n  - ".join(problems)
        )
    return out


def gather_sources(
    raw_dir: Path,
    *,
    as_at: date | None = None,
    sources: Iterable[SourceContract] | None = None,
    run_date: date | None = None,
    mapping: Mapping | None = None,
    map_rows: MapRows = ON_DRIVER,
) -> tuple[dict[str, IngestResult], list[str]]:
    """Every source that can be read, validated, and every file-level problem of the
    others (`portal sources check` reports both; `ingest_all` stops on any problem)."""
    as_at = as_at or date.today()
    run_date = max(run_date or date.today(), as_at)
    contracts = list(sources or all_contracts())
    out: dict[str, IngestResult] = {}
    problems: list[str] = []
    if not raw_dir.is_dir():
        raise SourceFileError(f"{raw_dir}: no such folder of source extracts")
    mapped = mapping.sources if mapping is not None else {}
    returns_read = None
    if sources is None:
        # The statutory returns (CIN census, SSDA903), when the folder has them, are read on
        # a second thread while the extracts are read here: parsing the census XML is
        # Python (it holds the interpreter), reading and validating an extract is mostly
        # polars (which lets go of it), so the two overlap on two cores. Each is a pure
        # function of its own files: the results are the same as read one after the other.
        from concurrent.futures import ThreadPoolExecutor

        from pipelines.returns.ingest import read_returns

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="returns")
        returns_read = pool.submit(read_returns, raw_dir, as_at=as_at)
        pool.shutdown(wait=False)
    for c in contracts:
        try:
            if c.name in mapped:
                sm = mapped[c.name]
                path = find_mapped(raw_dir, sm)
                df = apply_mapping(read_raw(path, local_contract(c, sm)), c, sm)
            else:
                path = find_extract(raw_dir, c)
                df = read_raw(path, c)
        except SourceFileError as e:
            problems.append(str(e))
            continue
        # Validated as soon as it is read, so only one source's raw text is held at a time
        # (a region's raw extracts, all text, would otherwise sit beside their typed copies).
        if c.name == "objections":
            out[c.name] = validate_objections(df, c, file=path, run_date=run_date)
        else:
            # The file was read and its header checked here; only the row checks move.
            out[c.name] = validate(df, c, file=path, as_at=as_at, map_rows=map_rows)
        del df
    returns: dict[str, IngestResult] = {}
    if returns_read is not None:
        returns, return_problems = returns_read.result()
        problems += return_problems
    return out | returns, problems


def quarantine_report(results: dict[str, IngestResult]) -> pl.DataFrame:
    """Counts by source and reason (a row with two reasons counts under both)."""
    rows = []
    for r in results.values():
        q = r.quarantined.select(
            "source", pl.col("reasons").str.split(";").alias("reason")
        ).explode("reason")
        rows.append(q.group_by("source", "reason").len().rename({"len": "rows"}))
    if not rows:
        return pl.DataFrame(schema={"source": pl.Utf8, "reason": pl.Utf8, "rows": pl.UInt32})
    return pl.concat(rows).sort("source", "reason")


def ingest_summary(results: dict[str, IngestResult]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "source": list(results),
            "rows_in": [r.rows_in for r in results.values()],
            "accepted": [r.accepted.height for r in results.values()],
            "quarantined": [r.quarantined.height for r in results.values()],
        }
    )
