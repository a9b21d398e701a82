"""Reference data read beside the extracts: population estimates and the extract manifest.

**Population estimates.** Rates per 10,000 children divide by the number of children
(aged 0 to 17) in ONS's mid-year population estimates, as DfE does in "Children in
need" ("rates per 10,000 children are calculated based on ONS mid-year population
estimates for children aged 0 to 17 years"). The file is
`reference/population_estimates.csv` in the long layout of ONS's mid-year estimates
(MYEB1, "detailed population estimates series"): one row per area, sex and single year
of age, one `population_YYYY` column per mid-year (30 June):

| column | holds |
|---|---|
| `ladcodeYY`, `lanameYY` | local authority code and name (any boundary year YY) |
| `lsoa21cd`, `lsoa21nm` | optional: the LSOA (2021), for rates by ward and locality |
| `country` | E or W |
| `sex` | 1 or M (male), 2 or F (female) |
| `age` | 0 to 90 (90 means 90 and over) |
| `population_YYYY` | the mid-YYYY estimate |

ONS publishes the county file in exactly this layout without the LSOA columns; with
only that file, rates are published for the county as a whole and appear under
"Not known" for wards and localities. ONS's small area estimates (LSOA by sex and
single year of age) give the LSOA columns; the synthetic county ships them.

**The extract manifest** (`extract.json`, optional): the date the extracts were taken
and, per source, the first date the extract covers completely:
`{"extract_date": "2026-03-31", "coverage_start": {"social_care": "2021-04-01", ...}}`.
Without it the data date is the latest date with events in the extracts and each
source's coverage starts at the first complete financial year of its events.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl

from pipelines.contracts import all_contracts
from pipelines.ingest import SourceFileError, find_extract
from registry.codes import NOT_KNOWN

POPULATION_FILE = Path("reference") / "population_estimates.csv"
POSTCODE_LOOKUP_FILE = Path("reference") / "postcode_lookup.csv"
MANIFEST_FILE = Path("extract.json")
MAX_AGE = 90
_YEAR_COLUMN = re.compile(r"^population_(\d{4})$")
_SEX = {"1": "Male", "M": "Male", "2": "Female", "F": "Female"}
# A date counts as "the data's latest" only where the source is dense around it: at
# least this many distinct event days in the 14 days up to it. One mistyped date in
# the future (a day and month swapped) is not the data date.
_DENSE_DAYS = 3
_DENSE_WINDOW = 14


class ReferenceDataError(SourceFileError):
    """A reference file (population estimates, extract manifest) is missing or malformed."""


@dataclass(frozen=True)
class Reference:
    """What derive needs beside zone B: child population estimates and source coverage."""

    # mid_year, lsoa_code, ward, locality, sex, age, population (children and adults)
    population: pl.DataFrame | None = None
    coverage_start: Mapping[str, date] = field(default_factory=dict)
    extract_date: date | None = None


# --- population estimates -------------------------------------------------------------


def parse_population(raw: pl.DataFrame, *, file: str) -> pl.DataFrame:
    """The ONS long layout -> mid_year, area_code, lsoa_code, sex, age, population.

    Every problem is gathered and reported together, naming the file, row and column."""
    problems: list[str] = []
    cols = raw.columns
    year_cols = [c for c in cols if _YEAR_COLUMN.match(c)]
    la = [c for c in cols if c.startswith("ladcode")]
    for need, found in (("sex", "sex" in cols), ("age", "age" in cols), ("ladcodeYY", la)):
        if not found:
            problems.append(f"{file}: missing column {need!r}")
    if not year_cols:
        problems.append(f"{file}: no population_YYYY column (one per mid-year estimate)")
    if problems:
        raise ReferenceDataError("\n".join(problems))
    lsoa = "lsoa21cd" if "lsoa21cd" in cols else None
    df = raw.with_row_index("_row").with_columns(
        pl.col("sex").cast(pl.Utf8).str.strip_chars().str.to_uppercase(),
        pl.col("age").cast(pl.Utf8).str.strip_chars(),
    )
    bad_sex = df.filter(~pl.col("sex").is_in(list(_SEX)))
    for row in bad_sex.head(5).iter_rows(named=True):
        problems.append(f"{file}, row {row['_row'] + 2}: sex {row['sex']!r} is not 1, 2, M or F")
    age = pl.col("age").cast(pl.Int64, strict=False)
    bad_age = df.filter(age.is_null() | (age < 0) | (age > MAX_AGE))
    for row in bad_age.head(5).iter_rows(named=True):
        problems.append(f"{file}, row {row['_row'] + 2}: age {row['age']!r} is not 0 to 90")
    for c in year_cols:
        value = pl.col(c).cast(pl.Utf8).str.replace_all(",", "").cast(pl.Int64, strict=False)
        bad = df.filter(value.is_null() | (value < 0))
        for row in bad.head(5).iter_rows(named=True):
            problems.append(
                f"{file}, row {row['_row'] + 2}: {c} {row[c]!r} is not a whole number >= 0"
            )
    if problems:
        more = len(bad_sex) + len(bad_age) > 10
        raise ReferenceDataError("\n".join(problems) + ("\n(first problems only)" if more else ""))
    long = df.select(
        pl.col(la[0]).cast(pl.Utf8).alias("area_code"),
        (pl.col(lsoa).cast(pl.Utf8) if lsoa else pl.lit(None, pl.Utf8)).alias("lsoa_code"),
        pl.col("sex").replace_strict(_SEX, return_dtype=pl.Utf8),
        age.alias("age"),
        *[
            pl.col(c).cast(pl.Utf8).str.replace_all(",", "").cast(pl.Int64).alias(c)
            for c in year_cols
        ],
    ).unpivot(
        index=["area_code", "lsoa_code", "sex", "age"],
        variable_name="mid_year",
        value_name="population",
    )
    return long.with_columns(pl.col("mid_year").str.extract(r"(\d{4})").cast(pl.Int32)).filter(
        pl.col("population") > 0
    )


def with_geography(population: pl.DataFrame, lookup: pl.DataFrame | None) -> pl.DataFrame:
    """Ward and locality of each LSOA from the postcode lookup ("Not known" without one)."""
    if lookup is None or population["lsoa_code"].null_count() == population.height:
        return population.with_columns(
            pl.lit(NOT_KNOWN).alias("ward"), pl.lit(NOT_KNOWN).alias("locality")
        )
    geo = lookup.select("lsoa_code", "ward", "locality").unique("lsoa_code")
    return population.join(geo, on="lsoa_code", how="left").with_columns(
        pl.col("ward").fill_null(NOT_KNOWN), pl.col("locality").fill_null(NOT_KNOWN)
    )


def load_population(raw_dir: Path) -> pl.DataFrame:
    path = raw_dir / POPULATION_FILE
    if not path.exists():
        raise ReferenceDataError(
            f"{path}: not found. Rates per 10,000 children need ONS mid-year population "
            "estimates in this file (see pipelines/reference.py for the layout); "
            "`portal synth` writes one for the synthetic county."
        )
    try:
        raw = pl.read_csv(path, infer_schema=False)
    except pl.exceptions.PolarsError as e:
        raise ReferenceDataError(f"{path}: cannot be read as CSV ({e})") from None
    lookup_path = raw_dir / POSTCODE_LOOKUP_FILE
    lookup = pl.read_csv(lookup_path, infer_schema=False) if lookup_path.exists() else None
    return with_geography(parse_population(raw, file=str(path)), lookup)


# --- the extract manifest and the data date ---------------------------------------------


def load_manifest(raw_dir: Path) -> tuple[date | None, dict[str, date]]:
    """(declared extract date, declared coverage start per source); empty when absent."""
    path = raw_dir / MANIFEST_FILE
    if not path.exists():
        return None, {}
    try:
        doc = json.loads(path.read_text())
        extract = doc.get("extract_date")
        cover = {k: date.fromisoformat(v) for k, v in (doc.get("coverage_start") or {}).items()}
        return (date.fromisoformat(extract) if extract else None), cover
    except (ValueError, TypeError, AttributeError) as e:
        raise ReferenceDataError(
            f'{path}: expected {{"extract_date": "YYYY-MM-DD", "coverage_start": '
            f'{{source: "YYYY-MM-DD"}}}} ({e})'
        ) from None


def load_reference(raw_dir: Path) -> Reference:
    if not raw_dir.is_dir():
        raise SourceFileError(f"{raw_dir}: no such folder of source extracts")
    extract_date, coverage = load_manifest(raw_dir)
    return Reference(load_population(raw_dir), coverage, extract_date)


def latest_dense_date(dates: pl.Series, *, not_after: date) -> date | None:
    """The latest date (not after `not_after`) on which the events are dense: at least
    3 distinct event days in the 14 days up to it; None if they never are. Pure."""
    days = dates.drop_nulls().unique().sort()
    values = [d.toordinal() for d in days.filter(days <= not_after).to_list()]
    for i in range(len(values) - 1, _DENSE_DAYS - 2, -1):
        if values[i] - values[i - _DENSE_DAYS + 1] < _DENSE_WINDOW:
            return date.fromordinal(values[i])
    return None


def data_as_at(
    *, declared: date | None, latest_events: Mapping[str, date | None], run_date: date
) -> date:
    """The release's "data as at": the date of the extracts, never the day of the run.

    The declared extract date when there is one; otherwise the latest event date across
    the sources (each source's latest dense date: see `latest_dense_date`); the run date
    only when no source has a single event. Pure."""
    if declared is not None:
        return declared
    known = [d for d in latest_events.values() if d is not None and d <= run_date]
    return max(known) if known else run_date


def extract_event_dates(raw_dir: Path) -> dict[str, pl.Series]:
    """Each source's event dates as written in its extract (every date layout the source
    is known to use), for `data_as_at` when no extract date is declared."""
    out: dict[str, pl.Series] = {}
    for c in all_contracts():
        col = c.event_date
        if col is None:
            continue
        try:
            path = find_extract(raw_dir, c)
        except SourceFileError:
            continue
        lf = (
            pl.scan_parquet(path)
            if path.suffix == ".parquet"
            else pl.scan_csv(path, infer_schema=False)
        )
        text = pl.col(col).cast(pl.Utf8).str.strip_chars()
        parsed = pl.coalesce([text.str.to_date(f, strict=False) for f in c.date_formats])
        out[c.name] = lf.select(parsed.alias(col)).collect()[col]
    return out


def extract_as_at(raw_dir: Path, *, run_date: date | None = None) -> date:
    """`data_as_at` for a folder of extracts (the default as-at of `portal run`)."""
    run_date = run_date or date.today()
    declared, _ = load_manifest(raw_dir)
    if declared is not None:
        return declared
    dates = extract_event_dates(raw_dir)
    latest = {name: latest_dense_date(d, not_after=run_date) for name, d in dates.items()}
    if all(v is None for v in latest.values()):  # tiny extracts: no source is ever dense
        latest = {name: d.filter(d <= run_date).max() for name, d in dates.items()}  # type: ignore[misc]
    return data_as_at(declared=None, latest_events=latest, run_date=run_date)
