"""Apply DfE's rules (pipelines/returns/rules.py) to one table of a return, then hand the
rows that pass to ingest's contract validation like any other source's rows.

Shared by the CIN census and SSDA903 readers: both first build a frame of the table's raw
text under DfE's field names, one row per element or CSV row, with `@line` (its line in
the file) and the context columns their rules read.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from pipelines.contracts import get_contract
from pipelines.ingest import IngestResult, validate
from pipelines.returns.rules import rules_for
from pipelines.returns.tables import Field
from pipelines.returns.years import YearRules

# Sex as each year's return codes it, to the shared code list.
_SEX = {"1": "M", "2": "F", "0": "U", "9": "U", "M": "M", "F": "F", "U": "U"}
_FLAG = {"true": "Y", "1": "Y", "false": "N", "0": "N"}


def dfe_checked(
    raw: pl.DataFrame, kind: str, table: str, year: YearRules, date_fields: list[str], fmt: str
) -> pl.DataFrame:
    """`raw` with `_errors` (DfE errors and schema problems: the row is quarantined),
    `_flags` (queries and malformed identifiers: the row is kept) and every identifier a
    rule found malformed blanked."""
    df = raw.with_columns(
        pl.col(f).str.strip_chars().str.to_date(fmt, strict=False).alias(f"{f}@date")
        for f in date_fields
        if f in raw.columns
    )
    errors: list[pl.Expr] = []
    flags: list[pl.Expr] = []
    blank: dict[str, pl.Expr] = {}
    for rule in rules_for(kind, table, year.year):
        hit = rule.check(year).fill_null(False)
        tag = pl.when(hit).then(pl.lit(rule.reason)).otherwise(pl.lit(None, pl.Utf8))
        if rule.kind == "error":
            errors.append(tag)
        else:
            flags.append(tag)
            if rule.kind == "identifier":
                f = rule.fields[0]
                blank[f] = blank.get(f, pl.lit(False)) | hit
    none = pl.lit([], pl.List(pl.Utf8))
    df = df.with_columns(
        (pl.concat_list(errors).list.drop_nulls() if errors else none).alias("_errors"),
        (pl.concat_list(flags).list.drop_nulls() if flags else none).alias("_flags"),
    )
    if blank:
        df = df.with_columns(
            pl.when(cond).then(None).otherwise(pl.col(f)).alias(f) for f, cond in blank.items()
        )
    return df


def to_result(
    checked: pl.DataFrame,
    source: str,
    fields: tuple[Field, ...],
    *,
    file: Path,
    row_key: pl.Expr,
    year: int,
    as_at: date,
) -> IngestResult:
    """DfE-checked rows in, one ingest result out: rows with a DfE error are quarantined
    with its code; the rest go through the source contract's validation (types, dates
    not after the data date, formula-like cells, identifier checksums). Rows in = rows
    accepted + rows quarantined, as for every source."""
    contract = get_contract(source)
    cols: list[pl.Expr] = [row_key.alias("row_key")]
    seen: set[str] = set()
    for f in fields:
        if f.column in seen:
            continue
        seen.add(f.column)
        v = pl.col(f.dfe) if f.dfe in checked.columns else pl.lit(None, pl.Utf8)
        if f.column == "sex":
            v = v.replace_strict(_SEX, default=None)
        elif f.kind.name == "FLAG":
            v = v.str.to_lowercase().replace_strict(_FLAG, default=None)
        elif f.column == "upn":
            # 'UN1'..'UN7' say why a UPN is unknown: no identifier, not a bad one.
            v = pl.when(v.str.contains(r"^UN\d$")).then(None).otherwise(v)
        cols.append(v.alias(f.column))
    cols.append(pl.lit(str(year)).alias("collection_year"))
    framed = checked.select(*cols, "_errors", "_flags", "@line")
    bad = framed.filter(pl.col("_errors").list.len() > 0)
    good = framed.filter(pl.col("_errors").list.len() == 0)
    res = validate(good.drop("_errors", "_flags", "@line"), contract, file=file, as_at=as_at)
    # Queries and blanked identifiers are kept with the row, as data-quality flags.
    accepted = res.accepted.join(
        good.select(pl.col("row_key").alias("record_id"), "_flags"), on="record_id", how="left"
    ).with_columns(pl.col("dq_flags").list.concat(pl.col("_flags").fill_null([])))
    accepted = accepted.drop("_flags")
    line_of = framed.select("row_key", pl.col("@line").cast(pl.Int64).alias("line"))
    later = (
        res.quarantined.drop("line")
        .join(line_of, on="row_key", how="left")
        .with_columns(pl.lit(str(file)).alias("file"))
    )
    dfe = bad.select(
        pl.lit(source).alias("source"),
        pl.lit(str(file)).alias("file"),
        pl.col("@line").cast(pl.Int64).alias("line"),
        pl.col("_errors").list.join(";").alias("reasons"),
        *[c.name for c in contract.every_column],
    )
    order = ["source", "file", "line", "reasons", *[c.name for c in contract.every_column]]
    quarantined = pl.concat([dfe.select(order), later.select(order)]).sort("line")
    return IngestResult(source, file, checked.height, accepted, quarantined)


def merge(results: list[IngestResult], source: str, file: Path) -> IngestResult:
    """One result per source across every file (collection year) of a return."""
    return IngestResult(
        source,
        file,
        sum(r.rows_in for r in results),
        pl.concat([r.accepted for r in results], how="vertical_relaxed"),
        pl.concat([r.quarantined for r in results], how="vertical_relaxed"),
    )
