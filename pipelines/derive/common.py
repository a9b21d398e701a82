"""Shared by every service area: the zone B frames, the measure type, and the helpers that
date, age, label and count units (children only, coverage windows, one row per person
or family).
"""

from __future__ import annotations

import statistics
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

import holidays
import polars as pl

from pipelines.contracts import get_contract
from pipelines.derive.need_rules import load_need_rules
from pipelines.reference import Reference
from registry.codes import (
    ADULT_AGE,
    AGE_BAND_FROM,
    CIN_NEED_LABELS,
    ETHNIC_MAJOR_GROUP,
    NOT_KNOWN,
    SEX_LABELS,
)
from registry.measures import MeasureMeta
from registry.periods import period_exprs

GEO = ("locality", "ward")
PERSON = ("age_band", "sex", "ethnicity")
TIME = ("financial_year", "year", "quarter", "month")
SUSTAIN_DAYS = load_need_rules().sustain_days  # "sustained": six months after closure
ASSESSMENT_WORKING_DAYS = 45


@dataclass(frozen=True)
class ZoneBFrames:
    persons: pl.DataFrame
    events: dict[str, pl.DataFrame]
    as_at: date
    # Population estimates and each source's coverage start (pipelines.reference).
    reference: Reference = field(default_factory=Reference)

    def ev(self, name: str) -> pl.DataFrame:
        return self.events[name]


@dataclass(frozen=True)
class Measure:
    meta: MeasureMeta
    build: Callable[[ZoneBFrames], pl.DataFrame]


_MEMO: dict[int, tuple[weakref.ref[ZoneBFrames], dict[str, pl.DataFrame]]] = {}


def _memo(zb: ZoneBFrames, name: str, build: Callable[[ZoneBFrames], pl.DataFrame]) -> pl.DataFrame:
    """`build(zb)`, computed once per ZoneBFrames object: several measures start from the
    same family episodes and need outcomes."""
    hit = _MEMO.get(id(zb))
    if hit is None or hit[0]() is not zb:
        hit = (weakref.ref(zb), {})
        _MEMO[id(zb)] = hit
        weakref.finalize(zb, _MEMO.pop, id(zb), None)
    if name not in hit[1]:
        hit[1][name] = build(zb)
    return hit[1][name]


def exclude_objectors(zb: ZoneBFrames) -> tuple[ZoneBFrames, pl.DataFrame]:
    """Drop everyone whose objection covers statistics from persons and every event table.

    An objection scoped to research only (ALL_RESEARCH) keeps the person out of research
    extracts (the research table's `objected`) but not out of statistics."""
    objectors = zb.persons.filter(pl.col("objected_statistics")).select("person_id")
    keep = zb.persons.filter(~pl.col("objected_statistics"))
    events = {k: v.join(objectors, on="person_id", how="anti") for k, v in zb.events.items()}
    return ZoneBFrames(keep, events, zb.as_at), objectors


@lru_cache(maxsize=8)
def bank_holidays(first_year: int, last_year: int) -> tuple[date, ...]:
    """England and Wales bank holidays (substitute days included), from the offline
    `holidays` package: the days DfE's working-day rules skip besides weekends."""
    days = holidays.country_holidays("GB", subdiv="ENG", years=range(first_year, last_year + 1))
    return tuple(sorted(days))


def working_days(start: pl.Expr, end: pl.Expr, *, years: tuple[int, int]) -> pl.Expr:
    """Working days from `start` to `end`: weekdays that are not bank holidays, counting
    the end day and not the start (same day = 0, as in DfE's "started and finished the
    same day")."""
    return pl.business_day_count(start, end, holidays=list(bank_holidays(*years)))


def time_dims(col: str) -> list[pl.Expr]:
    return period_exprs(col)


def birth_date(birth_month: pl.Expr) -> pl.Expr:
    """Zone B keeps month of birth only: take the middle of the month."""
    return (birth_month + "-15").str.to_date("%Y-%m-%d", strict=False)


def age_years(birth_month: pl.Expr, at: pl.Expr) -> pl.Expr:
    return (at - birth_date(birth_month)).dt.total_days() / 365.25


def _band(years: pl.Expr) -> pl.Expr:
    """The DfE band (contracts.AGE_BANDS) of an age in years; "18+" marks an adult,
    whom child measures leave out before anything is published."""
    expr: Any = pl.when(years.is_null()).then(pl.lit(NOT_KNOWN))
    expr = expr.when(years >= ADULT_AGE).then(pl.lit("18+"))
    for label, lower in sorted(AGE_BAND_FROM.items(), key=lambda kv: -kv[1]):
        expr = expr.when(years >= lower).then(pl.lit(label))
    return expr.otherwise(pl.lit(NOT_KNOWN))


def age_band(birth_month: pl.Expr, at: pl.Expr) -> pl.Expr:
    return _band(age_years(birth_month, at))


def _label(col: str, labels: dict[str, str]) -> pl.Expr:
    return pl.col(col).replace_strict(labels, default=NOT_KNOWN, return_dtype=pl.Utf8)


def with_person_dims(df: pl.DataFrame, persons: pl.DataFrame, at: str) -> pl.DataFrame:
    """Place, sex, ethnic group and age band of each row's person, from the person index.

    The person index wins: an event table's own copy of a person column (early help and
    social care carry the detailed ethnicity code) is dropped first, so every measure
    publishes the six major groups."""
    p = persons.select(
        "person_id",
        "birth_month",
        _label("sex", SEX_LABELS).alias("sex"),
        _label("ethnicity", ETHNIC_MAJOR_GROUP).alias("ethnicity"),
        pl.col("locality").fill_null(NOT_KNOWN),
        pl.col("ward").fill_null(NOT_KNOWN),
    )
    own = [c for c in p.columns if c != "person_id" and c in df.columns]
    return (
        df.drop(own)
        .join(p, on="person_id", how="inner")
        .with_columns(age_band(pl.col("birth_month"), pl.col(at)).alias("age_band"), *time_dims(at))
        .drop("birth_month")
    )


def _unit(*parts: str | pl.Expr) -> pl.Expr:
    return pl.concat_str(
        [pl.lit(p) if isinstance(p, str) else p for p in parts], separator="|"
    ).alias("unit_id")


def _select(df: pl.DataFrame, dims: tuple[str, ...]) -> pl.DataFrame:
    return df.select("unit_id", *[pl.col(d).cast(pl.Utf8).fill_null(NOT_KNOWN) for d in dims])


def _upto_as_at(df: pl.DataFrame, col: str, zb: ZoneBFrames) -> pl.DataFrame:
    """Rows whose `col` is known and not after the data date (look-backs use these)."""
    return df.filter(pl.col(col).is_not_null() & (pl.col(col) <= pl.lit(zb.as_at)))


def _in_window(df: pl.DataFrame, col: str, zb: ZoneBFrames, source: str) -> pl.DataFrame:
    """Rows counted in a period: `col` from the source's coverage start to the data date."""
    start = coverage_start(zb, source)
    return _upto_as_at(df, col, zb).filter(pl.col(col) >= pl.lit(start))


def _dedupe(df: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """The same event recorded twice in a source (a duplicate the linkage resolved) counts once."""
    return df.unique(subset=keys, keep="first", maintain_order=True)


def coverage_start(zb: ZoneBFrames, source: str) -> date:
    """The first day from which `source`'s extract holds every event (not only the cases
    still open when the extract began).

    Declared in the extract manifest when the council knows it; otherwise inferred: the
    first month with at least half the source's median monthly volume of events (an
    extract's early tail is open cases referred long before), moved on to the next
    1 April so that the first published financial year is complete."""
    declared = zb.reference.coverage_start.get(source)
    if declared is not None:
        return declared
    col = get_contract(source).event_date
    ev = zb.events.get(source)
    if col is None or ev is None or ev.is_empty() or col not in ev.columns:
        return zb.as_at
    monthly = (
        ev.select(pl.col(col).dt.truncate("1mo").alias("m"))
        .drop_nulls()
        .group_by("m")
        .len()
        .sort("m")
    )
    if monthly.is_empty():
        return zb.as_at
    typical = statistics.median(monthly["len"].to_list())
    first: date = monthly.filter(pl.col("len") >= typical / 2)["m"][0]
    year = first.year if (first.month, first.day) <= (4, 1) else first.year + 1
    return date(year, 4, 1)


def _children_only(df: pl.DataFrame, at: str, persons: pl.DataFrame) -> pl.DataFrame:
    """Rows whose person was under 18 on `at` (or whose age is not known)."""
    born = persons.select("person_id", "birth_month")
    years = age_years(pl.col("birth_month"), pl.col(at))
    return (
        df.join(born, on="person_id", how="left", suffix="_p")
        .filter(years.is_null() | (years < ADULT_AGE))
        .drop("birth_month")
    )


def _per_person(
    rows: pl.DataFrame,
    zb: ZoneBFrames,
    *,
    at: str,
    unit: tuple[str, ...],
    source: str,
    extra: tuple[str, ...] = (),
    time: tuple[str, ...] = TIME,
    snapshot: bool = False,
) -> pl.DataFrame:
    """One row per counted child or event about a child, dated `at`, with place, person
    and time dimensions; adults (18 or over on `at`) are left out.

    `unit` is a prefix and the columns that identify the unit (its persistent id).
    `snapshot`: `at` is a count date (31 March) already chosen within the coverage."""
    prefix, *cols = unit
    if "birth_month" in rows.columns:
        rows = rows.drop("birth_month")
    rows = rows if snapshot else _in_window(rows, at, zb, source)
    rows = _children_only(rows, at, zb.persons)
    df = with_person_dims(rows, zb.persons, at).with_columns(
        _unit(prefix, *[pl.col(c).cast(pl.Utf8) for c in cols])
    )
    return _select(df, (*GEO, *PERSON, *time, *extra))


def _per_family(
    rows: pl.DataFrame, zb: ZoneBFrames, *, at: str, prefix: str, extra: tuple[str, ...] = ()
) -> pl.DataFrame:
    """One row per family episode dated `at` (rows from `_eh_families`)."""
    rows = _in_window(rows, at, zb, "early_help")
    df = rows.with_columns(*time_dims(at), _unit(prefix, pl.col("family_id"), pl.col("episode_id")))
    return _select(df, (*GEO, *TIME, *extra))


def _with_cin_category(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(_label("primary_need", CIN_NEED_LABELS).alias("cin_category"))


def count_dates(zb: ZoneBFrames, source: str) -> list[date]:
    """Every 31 March from the source's coverage start to the data date (snapshot counts)."""
    start = coverage_start(zb, source)
    return [
        date(y, 3, 31) for y in range(start.year, zb.as_at.year + 1)
        if start <= date(y, 3, 31) <= zb.as_at
    ]  # fmt: skip
