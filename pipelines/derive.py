"""Derive: zone B events -> record-level frames, one per published measure.

Each measure is a pure function from the zone B tables to a frame with one row
per counted unit (a contact, a referral, a child, a family), the unit's
persistent identity (`unit_id`, from which the disclosure-control record key is
derived) and its breakdown dimensions. The publish step aggregates these into
release cubes; nothing here is ever shown directly.

People whose objection covers statistics (scope PLANNING_AND_RESEARCH) are removed
before any measure is built (`exclude_objectors`); the objections received, by the
period received, are themselves a (protected) measure (`OBJECTIONS_MEASURE`).

Definitions follow the national guidance and say which, next to each measure in
`MEASURES` (title, definition, unit, breakdowns, footnotes). The rules every
measure shares:

- **Children** are people under 18 on the date counted (Children Act 1989 s.105;
  Working together to safeguard children 2023: "anyone who has not yet reached their
  18th birthday"). Measures that count children, or events about a child, leave out
  anyone 18 or over on that date; a person whose birth month is unknown stays in
  (age band "Not known"). Unborn children are not in the extracts.
- **Periods** are dated by the event the definition names and labelled by
  `pipelines.periods` (financial years and financial quarters). An event counts only
  from its source's coverage start (declared in the extract manifest, else inferred:
  `coverage_start`), so no period is published for which a source holds only the
  cases still open when its extract began; events before it still serve look-backs
  (a previous referral, a previous plan).
- **Rates per 10,000 children** divide by the children aged 0 to 17 in ONS's
  mid-year population estimates (reference data beside the extracts), as DfE's
  "Children in need" statistics do; not by the children known to services.
- **Working days** exclude weekends and England and Wales bank holidays (the
  `holidays` package, offline), as DfE's validation rules for the CIN census do.
- **Categories** are published as the labels of the code lists in
  `pipelines.contracts` (six major ethnic groups, DfE age bands, ...), never raw codes.
"""

from __future__ import annotations

import statistics
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from functools import lru_cache
from typing import Any

import holidays
import polars as pl

from pipelines.claims import CLAIM_RULES, claim_review
from pipelines.contracts import (
    ADULT_AGE,
    AGE_BAND_FROM,
    CIN_NEED_LABELS,
    EH_CLOSURE_LABELS,
    ETHNIC_MAJOR_GROUP,
    FRONT_DOOR_DECISION_LABELS,
    LAC_CEASED_LABELS,
    NEED_LABELS,
    NOT_KNOWN,
    REFERRAL_SOURCE_LABELS,
    SEX_LABELS,
    get_contract,
)
from pipelines.need_rules import load_need_rules, warning_frames
from pipelines.reference import Reference
from pipelines.store import Denominator, MeasureMeta
from registry.periods import financial_year, period_exprs

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


# ------------------------------------------------------------- helpers ---


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


# ---------------------------------------------------- children in need ---


def contacts(zb: ZoneBFrames) -> pl.DataFrame:
    fd = _dedupe(
        _upto_as_at(zb.ev("front_door"), "contact_date", zb),
        ["person_id", "contact_date", "contact_source"],
    ).with_columns(
        _label("contact_source", REFERRAL_SOURCE_LABELS).alias("referral_source"),
        _label("decision", FRONT_DOOR_DECISION_LABELS).alias("decision"),
    )
    return _per_person(
        fd, zb, at="contact_date", unit=("contact", "person_id", "contact_date"),
        source="front_door", extra=("referral_source", "decision"),
    )  # fmt: skip


def _referrals(zb: ZoneBFrames) -> pl.DataFrame:
    """Every referral up to the data date (before the coverage start too, for look-backs),
    with the same child's previous referral."""
    sc = _dedupe(
        _upto_as_at(zb.ev("social_care"), "referral_date", zb), ["person_id", "referral_date"]
    )
    return sc.sort("person_id", "referral_date").with_columns(
        pl.col("referral_date").shift(1).over("person_id").alias("previous_referral"),
        _label("referral_source", REFERRAL_SOURCE_LABELS).alias("referral_source"),
    )


REFERRAL_UNIT = ("referral", "person_id", "referral_date")


def cin_referrals(zb: ZoneBFrames) -> pl.DataFrame:
    return _per_person(
        _with_cin_category(_referrals(zb)), zb, at="referral_date", unit=REFERRAL_UNIT,
        source="social_care", extra=("referral_source", "cin_category"),
    )  # fmt: skip


def cin_rereferrals(zb: ZoneBFrames) -> pl.DataFrame:
    r = _referrals(zb).filter(
        pl.col("previous_referral").is_not_null()
        & ((pl.col("referral_date") - pl.col("previous_referral")).dt.total_days() <= 365)
    )
    return _per_person(
        _with_cin_category(r), zb, at="referral_date", unit=REFERRAL_UNIT,
        source="social_care", extra=("referral_source", "cin_category"),
    )  # fmt: skip


def _assessments(zb: ZoneBFrames) -> pl.DataFrame:
    return _upto_as_at(_referrals(zb), "assessment_authorised", zb).filter(
        pl.col("assessment_start").is_not_null()
    )


ASSESSMENT_UNIT = ("assessment", "person_id", "assessment_start")


def assessments_completed(zb: ZoneBFrames) -> pl.DataFrame:
    return _per_person(
        _assessments(zb), zb, at="assessment_authorised", unit=ASSESSMENT_UNIT,
        source="social_care",
    )  # fmt: skip


def assessments_within_45_days(zb: ZoneBFrames) -> pl.DataFrame:
    a = _assessments(zb)
    years = (
        (a["assessment_start"].min().year, zb.as_at.year)  # type: ignore[union-attr]
        if a.height
        else (zb.as_at.year, zb.as_at.year)
    )
    within = a.filter(
        working_days(pl.col("assessment_start"), pl.col("assessment_authorised"), years=years)
        <= ASSESSMENT_WORKING_DAYS
    )
    return _per_person(
        within, zb, at="assessment_authorised", unit=ASSESSMENT_UNIT, source="social_care"
    )


def s47_enquiries(zb: ZoneBFrames) -> pl.DataFrame:
    s = _upto_as_at(_referrals(zb), "s47_start", zb)
    return _per_person(
        s, zb, at="s47_start", unit=("s47", "person_id", "s47_start"), source="social_care"
    )


def _cp_plans(zb: ZoneBFrames) -> pl.DataFrame:
    cp = _dedupe(_upto_as_at(_referrals(zb), "cp_plan_start", zb), ["person_id", "cp_plan_start"])
    return cp.sort("person_id", "cp_plan_start").with_columns(
        (pl.int_range(pl.len()).over("person_id") > 0).alias("subsequent")
    )


CP_UNIT = ("cp", "person_id", "cp_plan_start")


def cp_plans_started(zb: ZoneBFrames) -> pl.DataFrame:
    return _per_person(_cp_plans(zb), zb, at="cp_plan_start", unit=CP_UNIT, source="social_care")


def cp_plans_second_or_subsequent(zb: ZoneBFrames) -> pl.DataFrame:
    subsequent = _cp_plans(zb).filter(pl.col("subsequent"))
    return _per_person(subsequent, zb, at="cp_plan_start", unit=CP_UNIT, source="social_care")


def cp_plans_ended(zb: ZoneBFrames) -> pl.DataFrame:
    ended = _upto_as_at(_cp_plans(zb), "cp_plan_end", zb)
    return _per_person(ended, zb, at="cp_plan_end", unit=CP_UNIT, source="social_care")


def cp_plans_ended_after_2_years(zb: ZoneBFrames) -> pl.DataFrame:
    ended = _upto_as_at(_cp_plans(zb), "cp_plan_end", zb).filter(
        (pl.col("cp_plan_end") - pl.col("cp_plan_start")).dt.total_days() >= 730
    )
    return _per_person(ended, zb, at="cp_plan_end", unit=CP_UNIT, source="social_care")


SNAPSHOT_DIMS = (*GEO, "age_band", "sex", "financial_year")


def _empty(dims: tuple[str, ...]) -> pl.DataFrame:
    return pl.DataFrame(schema={"unit_id": pl.Utf8, **{d: pl.Utf8 for d in dims}})


def _open_on(rows: pl.DataFrame, start: str, end: str, days: list[date]) -> pl.DataFrame:
    """Rows open on each count date (started on or before it, not ended by it)."""
    frames = [
        rows.filter(
            (pl.col(start) <= pl.lit(d)) & (pl.col(end).is_null() | (pl.col(end) > pl.lit(d)))
        ).with_columns(pl.lit(d).alias("snapshot"))
        for d in days
    ]
    return (
        pl.concat(frames)
        if frames
        else rows.clear().with_columns(pl.lit(None, pl.Date).alias("snapshot"))
    )


def _snapshot(rows: pl.DataFrame, zb: ZoneBFrames, prefix: str) -> pl.DataFrame:
    """One row per child per count date (a child with two open records counts once)."""
    if rows.is_empty():
        return _empty(SNAPSHOT_DIMS)
    once = rows.unique(["person_id", "snapshot"], keep="first", maintain_order=True)
    df = _per_person(
        once, zb, at="snapshot", unit=(prefix, "person_id", "snapshot"), source="social_care",
        time=("financial_year",), snapshot=True,
    )  # fmt: skip
    return df.select("unit_id", *SNAPSHOT_DIMS)


def cp_plans_at_31_march(zb: ZoneBFrames) -> pl.DataFrame:
    days = count_dates(zb, "social_care")
    return _snapshot(_open_on(_cp_plans(zb), "cp_plan_start", "cp_plan_end", days), zb, "cp31")


def cin_at_31_march(zb: ZoneBFrames) -> pl.DataFrame:
    """Children with a referral episode open on 31 March (received, not yet closed)."""
    days = count_dates(zb, "social_care")
    return _snapshot(_open_on(_referrals(zb), "referral_date", "closure_date", days), zb, "cin31")


def population_year(available: list[int], fy_start: int) -> int | None:
    """The mid-year estimate used for a financial year: mid-year `fy_start` (30 June falls
    in the year), else the latest earlier one, else the earliest there is."""
    if not available:
        return None
    earlier = [y for y in available if y <= fy_start]
    return max(earlier) if earlier else min(available)


def child_population(zb: ZoneBFrames) -> pl.DataFrame:
    """Children aged 0 to 17 in the ONS mid-year estimates, for every financial year with
    a 31 March count: one row per estimated child (the rate denominator)."""
    pop = zb.reference.population
    if pop is None:
        raise ValueError(
            "rates per 10,000 children need ONS mid-year population estimates "
            "(reference/population_estimates.csv); none were given"
        )
    children = pop.filter(pl.col("age") < ADULT_AGE)
    available = sorted(children["mid_year"].unique().to_list())
    frames = []
    for d in count_dates(zb, "social_care"):
        fy = financial_year(d)
        year = population_year(available, int(fy[:4]))
        if year is None:
            continue
        frames.append(
            children.filter(pl.col("mid_year") == year).with_columns(
                pl.lit(fy).alias("financial_year")
            )
        )
    if not frames:
        return _empty(SNAPSHOT_DIMS)
    rows = pl.concat(frames).with_columns(
        _band(pl.col("age").cast(pl.Float64)).alias("age_band"),
        pl.int_ranges(0, pl.col("population")).alias("i"),
    )
    rows = rows.explode("i").with_columns(
        _unit(
            "pop", pl.col("financial_year"), pl.col("area_code"),
            pl.col("lsoa_code").fill_null("-"), pl.col("sex"), pl.col("age").cast(pl.Utf8),
            pl.col("i").cast(pl.Utf8),
        )
    )  # fmt: skip
    return _select(rows, SNAPSHOT_DIMS)


# ---------------------------------------------------------- early help ---


def _eh(zb: ZoneBFrames) -> pl.DataFrame:
    return _dedupe(
        _upto_as_at(zb.ev("early_help"), "referral_date", zb), ["person_id", "episode_id"]
    ).with_columns(
        _label("referral_source", REFERRAL_SOURCE_LABELS).alias("referral_source"),
        _label("closure_reason", EH_CLOSURE_LABELS).alias("closure_label"),
    )


EH_UNIT = ("eh", "person_id", "episode_id")


def eh_referrals(zb: ZoneBFrames) -> pl.DataFrame:
    return _per_person(
        _eh(zb), zb, at="referral_date", unit=EH_UNIT, source="early_help",
        extra=("referral_source",),
    )  # fmt: skip


def eh_step_up(zb: ZoneBFrames) -> pl.DataFrame:
    e = _upto_as_at(_eh(zb), "closure_date", zb).filter(pl.col("closure_reason") == "STEP_UP_CSC")
    return _per_person(e, zb, at="closure_date", unit=EH_UNIT, source="early_help")


def eh_step_down(zb: ZoneBFrames) -> pl.DataFrame:
    e = _eh(zb).filter(pl.col("stepped_down_from_csc") == "Y")
    return _per_person(e, zb, at="referral_date", unit=EH_UNIT, source="early_help")


def eh_closures(zb: ZoneBFrames) -> pl.DataFrame:
    e = (
        _upto_as_at(_eh(zb), "closure_date", zb)
        .drop("closure_reason")
        .rename({"closure_label": "closure_reason"})
    )
    return _per_person(
        e, zb, at="closure_date", unit=EH_UNIT, source="early_help", extra=("closure_reason",)
    )


def _eh_families(zb: ZoneBFrames) -> pl.DataFrame:
    """One row per family episode: its dates, needs, lead practitioner (whether one was
    recorded: `lead_practitioner` is the staff reference, null where none), whether it
    includes a child, and where the family lives."""
    return _memo(zb, "eh_families", _build_eh_families)


def _build_eh_families(zb: ZoneBFrames) -> pl.DataFrame:
    eh = _eh(zb)
    if "lead_practitioner" not in eh.columns:  # extracts from before the field existed
        eh = eh.with_columns(pl.lit(None, pl.String).alias("lead_practitioner"))
    born = zb.persons.select("person_id", "birth_month")
    child = age_years(pl.col("birth_month"), pl.col("referral_date")) < ADULT_AGE
    eh = eh.join(born, on="person_id", how="left", suffix="_p").with_columns(
        child.fill_null(False).alias("_child")
    )
    fam = eh.group_by("family_id", "episode_id").agg(
        pl.col("referral_date").min(),
        pl.col("assessment_date").min(),
        pl.col("plan_start").min(),
        pl.col("closure_date").max(),
        pl.col("closure_reason").drop_nulls().first(),
        pl.col("needs").drop_nulls().first(),
        pl.col("stepped_down_from_csc").first(),
        pl.col("lead_practitioner").drop_nulls().first(),
        pl.col("_child").any().alias("has_child"),
        pl.col("person_id").min().alias("lead"),
    )
    geo = zb.persons.select(
        pl.col("person_id").alias("lead"),
        pl.col("locality").fill_null(NOT_KNOWN),
        pl.col("ward").fill_null(NOT_KNOWN),
    )
    return fam.join(geo, on="lead", how="left").sort("family_id", "referral_date")


def whole_family_assessments(zb: ZoneBFrames) -> pl.DataFrame:
    return _per_family(_eh_families(zb), zb, at="assessment_date", prefix="wfa")


def eh_family_rereferrals(zb: ZoneBFrames) -> pl.DataFrame:
    f = _eh_families(zb).with_columns(
        pl.col("closure_date").shift(1).over("family_id").alias("prev_close")
    )
    r = f.filter(
        pl.col("prev_close").is_not_null()
        & ((pl.col("referral_date") - pl.col("prev_close")).dt.total_days() <= 365)
    )
    return _per_family(r, zb, at="referral_date", prefix="ehf")


def sf_families_worked_with(zb: ZoneBFrames) -> pl.DataFrame:
    return _per_family(_eh_families(zb), zb, at="referral_date", prefix="sf")


def sf_needs_at_entry(zb: ZoneBFrames) -> pl.DataFrame:
    """One row per family episode per need identified (a family counts under each need)."""
    f = _eh_families(zb).with_columns(pl.col("needs").str.split(";").alias("need")).explode("need")
    f = _in_window(
        f.filter(pl.col("need").is_not_null() & (pl.col("need") != "")),
        "referral_date",
        zb,
        "early_help",
    )
    df = f.with_columns(
        *time_dims("referral_date"),
        _unit("sfneed", pl.col("family_id"), pl.col("episode_id"), pl.col("need")),
    ).with_columns(_label("need", NEED_LABELS).alias("need"))
    return _select(df, (*GEO, *TIME, "need"))


def need_outcomes(zb: ZoneBFrames) -> pl.DataFrame:
    """Per closed family episode and need: did a positive outcome hold for six months?
    (`_build_need_outcomes`, computed once per ZoneBFrames.)"""
    return _memo(zb, "need_outcomes", _build_need_outcomes)


def _build_need_outcomes(zb: ZoneBFrames) -> pl.DataFrame:
    """Per closed family episode and need: did a positive outcome hold for six months?

    Positive = none of the need's warning signs for any family member in the
    `SUSTAIN_DAYS` after closure (only episodes closed at least that long before the
    data as-at date can be judged). The warning signs of each need are data:
    `pipelines/need_outcomes.toml` (e.g. DOMESTIC_ABUSE: a domestic abuse incident;
    FINANCIAL: a benefit spell starting, or still running six months on; EDUCATION:
    absence over 10% or a suspension in the next school year).
    """
    rules = load_need_rules()
    f = _eh_families(zb).filter(
        pl.col("closure_date").is_not_null()
        & (pl.col("closure_date") <= pl.lit(zb.as_at) - pl.duration(days=rules.sustain_days))
    )
    f = (
        f.with_columns(pl.col("needs").str.split(";").alias("need"))
        .explode("need")
        .filter(pl.col("need").is_not_null() & (pl.col("need") != ""))
    )
    eps = f.select("family_id", "episode_id", "closure_date", "need")
    missed = pl.concat(warning_frames(rules, eps, zb.ev)).unique()
    return eps.join(
        missed.with_columns(pl.lit(False).alias("positive")), on=["episode_id", "need"], how="left"
    ).with_columns(pl.col("positive").fill_null(True))


def sf_families_with_progress(zb: ZoneBFrames) -> pl.DataFrame:
    """Families whose every identified need showed a positive outcome sustained for six months."""
    out = (
        need_outcomes(zb)
        .group_by("family_id", "episode_id")
        .agg(pl.col("positive").all().alias("all_positive"))
    )
    fam = _eh_families(zb).join(
        out.filter(pl.col("all_positive")), on=["family_id", "episode_id"], how="semi"
    )
    return _per_family(fam, zb, at="closure_date", prefix="sf")


def sf_families_closed_judgeable(zb: ZoneBFrames) -> pl.DataFrame:
    """Family episodes closed at least six months before the as-at date (progress denominator)."""
    out = need_outcomes(zb).select("family_id", "episode_id").unique()
    fam = _eh_families(zb).join(out, on=["family_id", "episode_id"], how="semi")
    return _per_family(fam, zb, at="closure_date", prefix="sf")


# ------------------------------------------------- looked-after children ---
#
# From the SSDA903 return (pipelines/returns): each collection year's files are DfE's
# record of that year, so a 31 March count reads that year's file only; events (starts,
# ceases, adoptions, missing incidents) are read from every year's files, an episode
# returned in two years counted once. Without a 903 every measure here is empty.

LAC_SOURCE = "ssda903_episodes"
CARE_LEAVER_DIMS = (*GEO, "sex", "financial_year")
# Care leavers' main activity codes that are education, employment or training (903 ACTIV).
EET_ACTIVITIES = ("F1", "P1", "F2", "P2", "F4", "P4", "F5", "P5")
LAC_UNIT = "lac31"


def _return_table(zb: ZoneBFrames, source: str) -> pl.DataFrame | None:
    ev = zb.events.get(source)
    return ev if ev is not None and not ev.is_empty() else None


def _lac_window(df: pl.DataFrame, col: str, zb: ZoneBFrames, years: pl.Series) -> pl.DataFrame:
    """Rows dated from 1 April of the first collection year returned to the data date: the
    903's coverage (its first year's files hold every episode open in that year)."""
    first = date(int(years.min()) - 1, 4, 1)  # type: ignore[arg-type]
    return _upto_as_at(df, col, zb).filter(pl.col(col) >= pl.lit(first))


def _lac_dates(zb: ZoneBFrames, eps: pl.DataFrame) -> list[date]:
    """31 March of every collection year returned, where the rate has a denominator."""
    years = set(eps["collection_year"].unique().to_list())
    return [d for d in count_dates(zb, "social_care") if d.year in years]


def _lac_on_31_march(zb: ZoneBFrames) -> pl.DataFrame | None:
    """Episodes open on 31 March of their own collection year, each with the number of
    placements the child had during that year (every episode that is not only a change
    of legal status, RNE L, starts a placement; the first of the year counts, being the
    placement the child was in on 1 April)."""
    eps = _return_table(zb, LAC_SOURCE)
    if eps is None:
        return None
    frames = []
    for d in _lac_dates(zb, eps):
        year = eps.filter(pl.col("collection_year") == d.year).sort("person_id", "decom")
        placements = (
            year.with_columns(
                ((pl.col("rne") != "L") | (pl.int_range(pl.len()).over("person_id") == 0))
                .fill_null(True)
                .alias("_new")
            )
            .group_by("person_id")
            .agg(pl.col("_new").sum().alias("placements"))
        )
        open_ = year.filter(
            (pl.col("decom") <= pl.lit(d)) & (pl.col("dec").is_null() | (pl.col("dec") > pl.lit(d)))
        )
        frames.append(
            open_.join(placements, on="person_id", how="left").with_columns(
                pl.lit(d).alias("snapshot")
            )
        )
    return pl.concat(frames) if frames else None


def lac_at_31_march(zb: ZoneBFrames) -> pl.DataFrame:
    rows = _lac_on_31_march(zb)
    return _empty(SNAPSHOT_DIMS) if rows is None else _snapshot(rows, zb, LAC_UNIT)


def lac_3_placements(zb: ZoneBFrames) -> pl.DataFrame:
    """Children looked after at 31 March with three or more placements during the year
    (the same units as `lac_at_31_march`, so it is a share of it)."""
    rows = _lac_on_31_march(zb)
    if rows is None:
        return _empty(SNAPSHOT_DIMS)
    return _snapshot(rows.filter(pl.col("placements") >= 3), zb, LAC_UNIT)


def _lac_events(zb: ZoneBFrames, at: str, keep: pl.Expr) -> pl.DataFrame | None:
    eps = _return_table(zb, LAC_SOURCE)
    if eps is None:
        return None
    rows = _dedupe(eps.filter(keep), ["person_id", at])
    return _lac_window(rows, at, zb, eps["collection_year"])


def lac_started(zb: ZoneBFrames) -> pl.DataFrame:
    """Children who started to be looked after (a new period: RNE S), by category of need."""
    rows = _lac_events(zb, "decom", pl.col("rne") == "S")
    if rows is None:
        return _empty((*GEO, *PERSON, *TIME, "cin_category"))
    rows = rows.with_columns(_label("cin", CIN_NEED_LABELS).alias("cin_category"))
    return _per_person(
        rows, zb, at="decom", unit=("lacstart", "person_id", "decom"), source=LAC_SOURCE,
        extra=("cin_category",), snapshot=True,  # the 903's window is applied above
    )  # fmt: skip


def _ceased(zb: ZoneBFrames, codes: tuple[str, ...] | None = None) -> pl.DataFrame | None:
    ended = pl.col("rec").is_not_null() & (pl.col("rec") != "X1")
    if codes is not None:
        ended &= pl.col("rec").is_in(list(codes))
    rows = _lac_events(zb, "dec", ended)
    if rows is None:
        return None
    return rows.with_columns(_label("rec", LAC_CEASED_LABELS).alias("outcome"))


def lac_ceased(zb: ZoneBFrames) -> pl.DataFrame:
    """Children who ceased to be looked after (the period ended: REC other than X1), by
    reason."""
    rows = _ceased(zb)
    if rows is None:
        return _empty((*GEO, *PERSON, *TIME, "outcome"))
    return _per_person(
        rows, zb, at="dec", unit=("lacend", "person_id", "dec"), source=LAC_SOURCE,
        extra=("outcome",), snapshot=True,
    )  # fmt: skip


def adoptions(zb: ZoneBFrames) -> pl.DataFrame:
    """Children who ceased to be looked after because they were adopted (REC E11, E12)."""
    rows = _ceased(zb, ("E11", "E12"))
    if rows is None:
        return _empty((*GEO, *PERSON, *TIME))
    return _per_person(
        rows, zb, at="dec", unit=("adopted", "person_id", "dec"), source=LAC_SOURCE,
        snapshot=True,
    )  # fmt: skip


def _missing(zb: ZoneBFrames) -> pl.DataFrame | None:
    mis = _return_table(zb, "ssda903_missing")
    eps = _return_table(zb, LAC_SOURCE)
    if mis is None or eps is None:
        return None
    rows = _dedupe(mis.filter(pl.col("missing") == "M"), ["person_id", "mis_start"])
    return _lac_window(rows, "mis_start", zb, eps["collection_year"])


def lac_missing_incidents(zb: ZoneBFrames) -> pl.DataFrame:
    """Incidents of a looked-after child going missing from placement (903 Missing, M)."""
    rows = _missing(zb)
    if rows is None:
        return _empty((*GEO, *PERSON, *TIME))
    return _per_person(
        rows, zb, at="mis_start", unit=("missing", "person_id", "mis_start"),
        source="ssda903_missing", snapshot=True,
    )  # fmt: skip


def lac_went_missing(zb: ZoneBFrames) -> pl.DataFrame:
    """Looked-after children who went missing at least once in the financial year, each
    counted once a year (dated by their first incident of the year)."""
    rows = _missing(zb)
    dims = (*GEO, *PERSON, "financial_year")
    if rows is None:
        return _empty(dims)
    first = (
        rows.with_columns(pl.col("mis_start").map_elements(financial_year, pl.Utf8).alias("_fy"))
        .sort("mis_start")
        .unique(["person_id", "_fy"], keep="first", maintain_order=True)
    )
    return _per_person(
        first, zb, at="mis_start", unit=("wentmissing", "person_id", "_fy"),
        source="ssda903_missing", time=("financial_year",), snapshot=True,
    )  # fmt: skip


def _care_leavers(zb: ZoneBFrames) -> pl.DataFrame | None:
    """Care leavers aged 19 to 21 on their birthday in the collection year (903 OC3)."""
    oc3 = _return_table(zb, "ssda903_oc3")
    if oc3 is None:
        return None
    born = zb.persons.select("person_id", "birth_month")
    year = pl.col("collection_year")
    bm = pl.col("birth_month")
    # The birthday in April to March: in calendar year Y-1 for April to December births.
    age = year - bm.str.slice(0, 4).cast(pl.Int32) - (bm.str.slice(5, 2).cast(pl.Int32) >= 4)
    rows = (
        oc3.join(born, on="person_id", how="inner")
        .with_columns(age.alias("_age"), pl.date(year, 3, 31).alias("snapshot"))
        .filter(pl.col("_age").is_between(19, 21) & (pl.col("snapshot") <= pl.lit(zb.as_at)))
        .drop("birth_month")
        .unique(["person_id", "collection_year"], keep="first", maintain_order=True)
    )
    return with_person_dims(rows, zb.persons, "snapshot").with_columns(
        _unit("oc3", pl.col("person_id"), year.cast(pl.Utf8))
    )


def care_leavers(zb: ZoneBFrames) -> pl.DataFrame:
    rows = _care_leavers(zb)
    return _empty(CARE_LEAVER_DIMS) if rows is None else _select(rows, CARE_LEAVER_DIMS)


def care_leavers_eet(zb: ZoneBFrames) -> pl.DataFrame:
    rows = _care_leavers(zb)
    if rows is None:
        return _empty(CARE_LEAVER_DIMS)
    return _select(rows.filter(pl.col("activ").is_in(list(EET_ACTIVITIES))), CARE_LEAVER_DIMS)


def care_leavers_suitable_accommodation(zb: ZoneBFrames) -> pl.DataFrame:
    rows = _care_leavers(zb)
    if rows is None:
        return _empty(CARE_LEAVER_DIMS)
    # ACCOM's second character: 1 suitable, 2 not suitable (903 guide).
    return _select(rows.filter(pl.col("accom").str.ends_with("1")), CARE_LEAVER_DIMS)


# ------------------------------------------------ Supporting Families claims ---


def _claim_review(zb: ZoneBFrames) -> pl.DataFrame:
    """Family episodes due a claim review, with each claim rule's verdict
    (`pipelines.claims.claim_review`)."""
    return _memo(
        zb,
        "claim_review",
        lambda z: claim_review(
            _eh_families(z), need_outcomes(z), as_at=z.as_at, sustain_days=SUSTAIN_DAYS
        ),
    )


CLAIM_UNIT = "sfr"  # one unit per family episode reviewed: every claim measure shares it


def sf_claim_reviews(zb: ZoneBFrames) -> pl.DataFrame:
    return _per_family(_claim_review(zb), zb, at="review_date", prefix=CLAIM_UNIT)


def _rule_met(key: str) -> Callable[[ZoneBFrames], pl.DataFrame]:
    def build(zb: ZoneBFrames) -> pl.DataFrame:
        met = _claim_review(zb).filter(pl.col(key))
        return _per_family(met, zb, at="review_date", prefix=CLAIM_UNIT)

    build.__name__ = f"sf_rule_{key}"
    return build


def sf_claims(zb: ZoneBFrames) -> pl.DataFrame:
    """Successful family outcomes: the family's first episode meeting every claim rule."""
    claimed = _claim_review(zb).filter(pl.col("claim"))
    return _per_family(claimed, zb, at="review_date", prefix=CLAIM_UNIT)


def _reviewed_needs(zb: ZoneBFrames) -> pl.DataFrame:
    """One row per need of each family episode due a claim review, with its outcome."""
    review = _claim_review(zb).select("family_id", "episode_id", "review_date", "locality", "ward")
    needs = need_outcomes(zb).select("episode_id", "need", "positive")
    return review.join(needs, on="episode_id", how="inner")


def _need_rows(rows: pl.DataFrame, zb: ZoneBFrames) -> pl.DataFrame:
    rows = _in_window(rows, "review_date", zb, "early_help")
    df = rows.with_columns(
        *time_dims("review_date"),
        _unit("sfrn", pl.col("family_id"), pl.col("episode_id"), pl.col("need")),
    ).with_columns(_label("need", NEED_LABELS).alias("need"))
    return _select(df, (*GEO, *TIME, "need"))


def sf_needs_reviewed(zb: ZoneBFrames) -> pl.DataFrame:
    return _need_rows(_reviewed_needs(zb), zb)


def sf_needs_sustained(zb: ZoneBFrames) -> pl.DataFrame:
    return _need_rows(_reviewed_needs(zb).filter(pl.col("positive")), zb)


# ------------------------------------------------------------- registry ---
#
# Each measure's definition says what is counted and when; its footnotes say which
# guidance the definition follows (name, year, and the table, data item or chapter).

CHILD_NOTE = (
    "Children are people under 18 on the date counted (Children Act 1989 section 105; "
    "Working together to safeguard children 2023, introduction). Adults in the same "
    "records are not counted."
)
CIN_GUIDE = "DfE, Children in need census guide for local authorities (2021 to 2022 onwards)"
CIN_STATS = "DfE, 'Children in need' statistics and methodology (Explore Education Statistics)"
SF_GUIDE = "DLUHC, Supporting Families programme guidance 2022 to 2025"
_CIN_FOOT = (CHILD_NOTE,)
_EH_FOOT = (
    CHILD_NOTE,
    "Early Help case system records. A child in a family episode is counted once per "
    "episode. Early help has no national counting rules; terms follow Working together "
    "to safeguard children 2023 (early help) and the Supporting Families outcome "
    "framework.",
)
_SF_FOOT = (
    f"Definition: {SF_GUIDE}, chapter 3 (the National Supporting Families Outcome "
    "Framework) and chapter 5 (evidencing successful family outcomes). A family is "
    "counted once per Early Help episode.",
)
_CLAIM_FOOT = (
    f"Claims follow {SF_GUIDE}: an episode is judged on the day its six months after "
    "closure end (its review date), the first day a claim could be made. A family is "
    "counted once per Early Help episode.",
)
POPULATION_NOTE = (
    "Rate per 10,000 children aged 0 to 17 in the ONS mid-year population estimates "
    "(mid-2025 for 2025/26; the latest published estimate where a year is not yet "
    "out), as in DfE's 'Children in need' statistics. ONS estimates have no ethnic "
    "group, so these rates are not broken down by it."
)


def _m(
    name: str,
    title: str,
    unit: str,
    dims: tuple[str, ...],
    definition: str,
    build: Callable[[ZoneBFrames], pl.DataFrame],
    *,
    denominator: Denominator | None = None,
    footnotes: tuple[str, ...] = (),
    complete_after_days: int = 0,
) -> Measure:
    meta = MeasureMeta(
        name, title, definition, unit, dims, denominator, None, footnotes, complete_after_days
    )
    return Measure(meta, build)


def _share(measure: str) -> Denominator:
    """A percentage of `measure` whose records include every record of the numerator."""
    return Denominator(measure, 100, 1, subset=True)


MEASURES: dict[str, Measure] = {
    m.meta.name: m
    for m in (
        _m(
            "contacts",
            "Contacts to the Front Door",
            "contacts",
            (*GEO, *PERSON, *TIME, "referral_source", "decision"),
            "Contacts about a child (under 18 on the contact date) received by the Front "
            "Door (MASH), dated by the day the contact was received, by who made contact "
            "and what was decided. A contact recorded twice counts once.",
            contacts,
            footnotes=(
                CHILD_NOTE,
                "Contacts are a local measure: DfE collects referrals, not contacts. Terms "
                "follow Working together to safeguard children 2023 (referral and "
                "information sharing).",
            ),
        ),
        _m(
            "cin_referrals",
            "Referrals to children's social care",
            "referrals",
            (*GEO, *PERSON, *TIME, "referral_source", "cin_category"),
            "Referrals of a child to children's social care, dated by the referral date "
            "(CIN census data item N00100, CINreferralDate), by source and by the primary "
            "need recorded at assessment. A referral recorded twice counts once.",
            cin_referrals,
            footnotes=(f"Definition: {CIN_GUIDE}, referrals; {CIN_STATS}, table A1.", *_CIN_FOOT),
        ),
        _m(
            "cin_rereferrals_12m",
            "Re-referrals within 12 months",
            "referrals",
            (*GEO, *PERSON, *TIME, "referral_source", "cin_category"),
            "Referrals of a child within 12 months of the same child's previous referral, "
            "as a percentage of all referrals in the period (DfE's re-referral rate).",
            cin_rereferrals,
            denominator=_share("cin_referrals"),
            footnotes=(
                f"Definition: {CIN_STATS}, re-referrals within 12 months of a previous "
                "referral. A previous referral counts only if it is in these records.",
                *_CIN_FOOT,
            ),
        ),
        _m(
            "assessments_completed",
            "Assessments completed",
            "assessments",
            (*GEO, *PERSON, *TIME),
            "Children's social care assessments completed in the period, dated by the day "
            "the assessment was authorised (CIN census data item N00160, "
            "AssessmentAuthorisationDate).",
            assessments_completed,
            footnotes=(f"Definition: {CIN_GUIDE}, assessments.", *_CIN_FOOT),
        ),
        _m(
            "assessments_within_45_days",
            "Assessments completed within 45 working days",
            "assessments",
            (*GEO, *PERSON, *TIME),
            "Assessments authorised within 45 working days of starting, as a percentage of "
            "assessments completed. The duration runs from the assessment's start (N00159, "
            "AssessmentActualStartDate) to its authorisation (N00160); working days leave "
            "out weekends and England and Wales bank holidays.",
            assessments_within_45_days,
            denominator=_share("assessments_completed"),
            footnotes=(
                "Definition: Working together to safeguard children 2023 (assessments "
                "should conclude within 45 working days); duration as in "
                f"{CIN_STATS}, table C2 (completed assessments by duration). Bank holidays: "
                "England and Wales, from the offline 'holidays' package.",
                *_CIN_FOOT,
            ),
        ),
        _m(
            "s47_enquiries",
            "Section 47 enquiries started",
            "enquiries",
            (*GEO, *PERSON, *TIME),
            "Enquiries under section 47 of the Children Act 1989 (where a child is suspected "
            "to be suffering, or likely to suffer, significant harm), dated by the day the "
            "enquiry started.",
            s47_enquiries,
            footnotes=(f"Definition: {CIN_GUIDE}, section 47 enquiries.", *_CIN_FOOT),
        ),
        _m(
            "cp_plans_started",
            "Child protection plans started",
            "plans",
            (*GEO, *PERSON, *TIME),
            "Child protection plans that started in the period (CIN census data item "
            "N00105, CPPstartDate).",
            cp_plans_started,
            footnotes=(f"Definition: {CIN_GUIDE}, child protection plans.", *_CIN_FOOT),
        ),
        _m(
            "cp_plans_second_or_subsequent",
            "Second or subsequent child protection plans",
            "plans",
            (*GEO, *PERSON, *TIME),
            "Plans started for a child who had been the subject of a plan before, as a "
            "percentage of plans started.",
            cp_plans_second_or_subsequent,
            denominator=_share("cp_plans_started"),
            footnotes=(
                f"Definition: {CIN_STATS}, second or subsequent plans. DfE counts plans "
                "anywhere in England (NumberOfPreviousCPP); here only earlier plans in these "
                "records count, so the share can be lower.",
                *_CIN_FOOT,
            ),
        ),
        _m(
            "cp_plans_ended",
            "Child protection plans ended",
            "plans",
            (*GEO, *PERSON, *TIME),
            "Child protection plans that ended in the period (CIN census data item N00115, "
            "CPPendDate).",
            cp_plans_ended,
            footnotes=(f"Definition: {CIN_GUIDE}, child protection plans.", *_CIN_FOOT),
        ),
        _m(
            "cp_plans_ended_2_years_plus",
            "Plans ended that lasted two years or more",
            "plans",
            (*GEO, *PERSON, *TIME),
            "Child protection plans ending in the period that had lasted two years or more, "
            "as a percentage of plans ended.",
            cp_plans_ended_after_2_years,
            denominator=_share("cp_plans_ended"),
            footnotes=(
                f"Definition: {CIN_STATS}, plans ending by duration (two years or more).",
                *_CIN_FOOT,
            ),
        ),
        _m(
            "child_population",
            "Children in the population",
            "children",
            SNAPSHOT_DIMS,
            "Children aged 0 to 17 in the ONS mid-year population estimates: the "
            "denominator of every rate per 10,000 children. Wards and localities come from "
            "the LSOA of each estimate.",
            child_population,
            footnotes=(
                "Source: ONS mid-year population estimates (30 June), read from "
                "reference/population_estimates.csv; mid-year 2025 is used for 2025/26, "
                "the latest published estimate where a year is not yet out.",
            ),
        ),
        _m(
            "cin_at_31_march",
            "Children in need at 31 March",
            "children",
            SNAPSHOT_DIMS,
            "Children with a children's social care referral episode open on 31 March "
            "(referral received, episode not yet closed), each counted once, per 10,000 "
            "children.",
            cin_at_31_march,
            denominator=Denominator("child_population", 10_000, 1),
            footnotes=(
                f"Definition: {CIN_STATS}, children in need at 31 March (open episodes of "
                "need). DfE leaves out referrals closed with no further action; these "
                "records do not say which referrals those were, so a referral awaiting "
                "its decision on 31 March is counted.",
                POPULATION_NOTE,
                *_CIN_FOOT,
            ),
        ),
        _m(
            "cp_plans_at_31_march",
            "Children on a child protection plan at 31 March",
            "children",
            SNAPSHOT_DIMS,
            "Children who were the subject of a child protection plan on 31 March, each "
            "counted once, per 10,000 children.",
            cp_plans_at_31_march,
            denominator=Denominator("child_population", 10_000, 1),
            footnotes=(
                f"Definition: {CIN_STATS}, children who were the subject of a child "
                "protection plan at 31 March.",
                POPULATION_NOTE,
                *_CIN_FOOT,
            ),
        ),
        _m(
            "eh_referrals",
            "Children referred to Early Help",
            "children",
            (*GEO, *PERSON, *TIME, "referral_source"),
            "Children (under 18 on the referral date) in Early Help episodes that started "
            "in the period, by who referred. Adults in the family episode are not counted.",
            eh_referrals,
            footnotes=_EH_FOOT,
        ),
        _m(
            "eh_step_up",
            "Step-up from Early Help to social care",
            "children",
            (*GEO, *PERSON, *TIME),
            "Children whose Early Help episode closed because the case stepped up to "
            "children's social care, dated by the closure.",
            eh_step_up,
            footnotes=_EH_FOOT,
        ),
        _m(
            "eh_step_down",
            "Step-down from social care to Early Help",
            "children",
            (*GEO, *PERSON, *TIME),
            "Children whose Early Help episode began as a step-down from children's social "
            "care, dated by the start of the episode.",
            eh_step_down,
            footnotes=_EH_FOOT,
        ),
        _m(
            "eh_closures",
            "Early Help closures",
            "children",
            (*GEO, *PERSON, *TIME, "closure_reason"),
            "Children in Early Help episodes that closed in the period, by closure reason.",
            eh_closures,
            footnotes=_EH_FOOT,
        ),
        _m(
            "whole_family_assessments",
            "Whole Family Assessments completed",
            "families",
            (*GEO, *TIME),
            "Families whose Whole Family Assessment was completed in the period.",
            whole_family_assessments,
            footnotes=_SF_FOOT,
        ),
        _m(
            "eh_family_rereferrals",
            "Families re-referred to Early Help within 12 months",
            "families",
            (*GEO, *TIME),
            "Family episodes starting within 12 months of the family's previous Early Help "
            "episode closing.",
            eh_family_rereferrals,
            footnotes=_EH_FOOT[1:],
        ),
        _m(
            "sf_families_worked_with",
            "Families worked with",
            "families",
            (*GEO, *TIME),
            "Families starting an Early Help episode (the Supporting Families 'families "
            "worked with' of the quarterly progress return), dated by the referral.",
            sf_families_worked_with,
            footnotes=_SF_FOOT,
        ),
        _m(
            "sf_needs_at_entry",
            "Needs identified at entry",
            "family needs",
            (*GEO, *TIME, "need"),
            "Needs identified in the Whole Family Assessment, one count per family per need "
            "(a family with three needs counts three times), under the ten headline "
            "outcomes of the Supporting Families outcome framework.",
            sf_needs_at_entry,
            footnotes=_SF_FOOT,
        ),
        _m(
            "sf_families_closed",
            "Families whose episode closed at least six months ago",
            "families",
            (*GEO, *TIME),
            "Family episodes closed at least six months before the data date: the families "
            "whose progress can be judged. Dated by the closure.",
            sf_families_closed_judgeable,
            footnotes=_SF_FOOT,
            complete_after_days=SUSTAIN_DAYS,
        ),
        _m(
            "sf_significant_sustained_progress",
            "Families with significant and sustained progress",
            "families",
            (*GEO, *TIME),
            "Families whose every identified need showed a positive outcome that held for at "
            "least six months after the episode closed, as a percentage of families whose "
            "progress can be judged. See the methodology page for the outcome used for "
            "each need.",
            sf_families_with_progress,
            denominator=_share("sf_families_closed"),
            complete_after_days=SUSTAIN_DAYS,
            footnotes=(
                f"Definition: {SF_GUIDE}, chapter 5: significant and sustained progress "
                "against every need identified, sustained for at least six months. The "
                "guidance also asks for at least three needs and a lead practitioner; "
                "this measure counts every closed episode whose progress can be judged. "
                "Families meeting every claim rule: 'Successful family outcomes'.",
            ),
        ),
        _m(
            "sf_claim_reviews",
            "Families due a claim review",
            "families",
            (*GEO, *TIME),
            "Family episodes whose six months after closure ended in the period: the day "
            "their outcomes can be judged and a claim could be made (the review date). "
            "Every Early Help episode counts, whatever its needs.",
            sf_claim_reviews,
            footnotes=_CLAIM_FOOT,
        ),
        *(
            _m(
                f"sf_rule_{rule.key}",
                f"Claim rule met: {rule.title[0].lower()}{rule.title[1:]}",
                "families",
                (*GEO, *TIME),
                f"Families due a claim review that meet this claim rule: {rule.title.lower()}, "
                "as a percentage of the families due a claim review. Dated by the review date.",
                _rule_met(rule.key),
                denominator=_share("sf_claim_reviews"),
                footnotes=(f"Rule: {SF_GUIDE}, {rule.guidance}", *_CLAIM_FOOT),
            )
            for rule in CLAIM_RULES
        ),
        _m(
            "sf_claims",
            "Successful family outcomes",
            "families",
            (*GEO, *TIME),
            "Families meeting every claim rule of the Supporting Families programme: a family "
            "with dependent children, needs under at least three of the ten headlines, a "
            "whole family assessment and plan, a lead practitioner, and significant and "
            "sustained progress on every need held at least six months after closure. Dated "
            "by the review date (six months after closure), when the claim can be made; a "
            "family is claimed once, for its first such episode. As a percentage of the "
            "families due a claim review.",
            sf_claims,
            denominator=_share("sf_claim_reviews"),
            footnotes=(
                f"Definition: {SF_GUIDE}, chapter 4 (eligibility: dependent children, at least "
                "three family needs) and chapter 5 (submitting successful family outcomes: "
                "whole family working with a lead practitioner, significant and sustained "
                "progress against every need). Each rule's reading is in its own measure's "
                "notes ('Claim rule met').",
                "A family is claimed once: a claimed family leaves the programme (councils' "
                "practice, e.g. Milton Keynes' Supporting Families guidance), so a later "
                "episode meeting every rule is not a second claim.",
                *_CLAIM_FOOT,
            ),
        ),
        _m(
            "sf_needs_reviewed",
            "Needs of families due a claim review",
            "family needs",
            (*GEO, *TIME, "need"),
            "The needs identified for families due a claim review, one count per family per "
            "need, under the ten headline outcomes. Dated by the review date.",
            sf_needs_reviewed,
            footnotes=_CLAIM_FOOT,
        ),
        _m(
            "sf_needs_sustained",
            "Needs with significant and sustained progress",
            "family needs",
            (*GEO, *TIME, "need"),
            "Needs of families due a claim review whose positive outcome held for at least "
            "six months after the episode closed, as a percentage of those families' needs "
            "under the same headline (outcomes by headline). The outcome used for each need "
            "is on the methodology page.",
            sf_needs_sustained,
            denominator=_share("sf_needs_reviewed"),
            footnotes=(
                f"Definition: {SF_GUIDE}, chapter 3 (the ten headline outcomes) and chapter 5 "
                "(significant and sustained progress, at least six months).",
                *_CLAIM_FOOT,
            ),
        ),
    )
}

LAC_STATS = (
    "DfE, 'Children looked after in England including adoptions' (Explore Education "
    "Statistics), reporting year 2024, and its methodology"
)
SSDA903_GUIDE = "DfE, Children looked after return (SSDA903) guide"
_LAC_FOOT = (
    f"Source: the SSDA903 return, as validated against DfE's rules ({SSDA903_GUIDE}).",
    CHILD_NOTE,
)
_LAC_RATE = Denominator("child_population", 10_000, 1)
LAC_MEASURES: tuple[Measure, ...] = (
    _m(
        "lac_at_31_march",
        "Children looked after at 31 March",
        "children",
        SNAPSHOT_DIMS,
        "Children looked after on 31 March (an SSDA903 episode open that day, in that "
        "year's return), each counted once, per 10,000 children.",
        lac_at_31_march,
        denominator=_LAC_RATE,
        footnotes=(
            f"Definition: {LAC_STATS}, children looked after at 31 March.",
            POPULATION_NOTE,
            *_LAC_FOOT,
        ),  # fmt: skip
    ),
    _m(
        "lac_31_march_count",
        "Children looked after at 31 March (count)",
        "children",
        SNAPSHOT_DIMS,
        "Children looked after on 31 March, each counted once: the same children as "
        "'Children looked after at 31 March', as a count, the denominator of placement "
        "stability (a rate cannot be the denominator of another).",
        lac_at_31_march,
        footnotes=(f"Definition: {LAC_STATS}, children looked after at 31 March.", *_LAC_FOOT),
    ),
    _m(
        "lac_3_placements",
        "Children looked after with three or more placements in the year",
        "children",
        SNAPSHOT_DIMS,
        "Children looked after at 31 March who had three or more placements during the "
        "year (1 April to 31 March), as a percentage of children looked after at 31 March.",
        lac_3_placements,
        denominator=_share("lac_31_march_count"),
        footnotes=(
            f"Definition: {LAC_STATS}, placement stability (three or more placements during "
            "the year). A placement is each episode that is not only a change of legal "
            "status (reason for new episode L), plus the placement on 1 April.",
            *_LAC_FOOT,
        ),
    ),
    _m(
        "lac_started",
        "Children who started to be looked after",
        "children",
        (*GEO, *PERSON, *TIME, "cin_category"),
        "Children who started a period of being looked after in the period (reason for new "
        "episode S), by category of need.",
        lac_started,
        footnotes=(f"Definition: {LAC_STATS}, children starting to be looked after.", *_LAC_FOOT),
    ),
    _m(
        "lac_ceased",
        "Children who ceased to be looked after",
        "children",
        (*GEO, *PERSON, *TIME, "outcome"),
        "Children whose period of being looked after ended in the period, by the reason it "
        "ended (SSDA903 reason episode ceased, grouped as DfE publishes them).",
        lac_ceased,
        footnotes=(
            f"Definition: {LAC_STATS}, children who ceased to be looked after, by "
            "reason episode ceased.",
            *_LAC_FOOT,
        ),  # fmt: skip
    ),
    _m(
        "adoptions",
        "Children adopted from care",
        "children",
        (*GEO, *PERSON, *TIME),
        "Children who ceased to be looked after because they were adopted (reason episode "
        "ceased E11 or E12), dated by the adoption.",
        adoptions,
        footnotes=(f"Definition: {LAC_STATS}, adoptions.", *_LAC_FOOT),
    ),
    _m(
        "lac_missing_incidents",
        "Missing incidents of looked-after children",
        "incidents",
        (*GEO, *PERSON, *TIME),
        "Incidents of a looked-after child going missing from their placement (SSDA903 "
        "Missing, type M), dated by the day they went missing. Absences without "
        "authorisation (type A) are not counted.",
        lac_missing_incidents,
        footnotes=(f"Definition: {LAC_STATS}, missing incidents.", *_LAC_FOOT),
    ),
    _m(
        "lac_went_missing",
        "Looked-after children who went missing",
        "children",
        (*GEO, *PERSON, "financial_year"),
        "Looked-after children who went missing from their placement at least once in the "
        "financial year, each counted once.",
        lac_went_missing,
        footnotes=(
            f"Definition: {LAC_STATS}, children who had a missing incident.",
            *_LAC_FOOT,
        ),  # fmt: skip
    ),
    _m(
        "care_leavers",
        "Care leavers aged 19 to 21",
        "young people",
        CARE_LEAVER_DIMS,
        "Former relevant children (care leavers) whose 19th, 20th or 21st birthday fell in "
        "the year (SSDA903 OC3). Young adults: no age band is published.",
        care_leavers,
        footnotes=(f"Definition: {LAC_STATS}, care leavers aged 19 to 21.", _LAC_FOOT[0]),
    ),
    _m(
        "care_leavers_eet",
        "Care leavers in education, employment or training",
        "young people",
        CARE_LEAVER_DIMS,
        "Care leavers aged 19 to 21 in education, employment or training around their "
        "birthday (OC3 main activity F1, P1, F2, P2, F4, P4, F5 or P5), as a percentage of "
        "care leavers aged 19 to 21. Those the council was not in touch with count in the "
        "denominator, as in DfE's figures.",
        care_leavers_eet,
        denominator=_share("care_leavers"),
        footnotes=(
            f"Definition: {LAC_STATS}, care leavers in education, employment or training.",
            _LAC_FOOT[0],
        ),  # fmt: skip
    ),
    _m(
        "care_leavers_suitable_accommodation",
        "Care leavers in suitable accommodation",
        "young people",
        CARE_LEAVER_DIMS,
        "Care leavers aged 19 to 21 whose accommodation was judged suitable (OC3 ACCOM "
        "ending in 1), as a percentage of care leavers aged 19 to 21.",
        care_leavers_suitable_accommodation,
        denominator=_share("care_leavers"),
        footnotes=(
            f"Definition: {LAC_STATS}, care leavers in suitable accommodation.",
            _LAC_FOOT[0],
        ),  # fmt: skip
    ),
)
MEASURES.update({m.meta.name: m for m in LAC_MEASURES})


def objections_received(zb: ZoneBFrames) -> pl.DataFrame:
    """One row per person whose objection covers statistics, dated by when it was received
    (objections received after the data as-at date count from the period received)."""
    p = zb.persons.filter(
        pl.col("objected_statistics") & pl.col("objection_received").is_not_null()
    )
    df = p.with_columns(*time_dims("objection_received"), _unit("objection", pl.col("person_id")))
    return _select(df, TIME)


OBJECTIONS_MEASURE = Measure(
    MeasureMeta(
        "objectors_excluded",
        "Objections received",
        "People who objected to the use of their data for planning and research, by when the "
        "objection was received. Each is left out of every statistic from then on; earlier "
        "published figures change only in a revision release. Not broken down by place: "
        "with so few objections a month, a place would point at the person.",
        "people",
        TIME,
    ),
    objections_received,
)


def derive_all(zb: ZoneBFrames) -> tuple[dict[str, pl.DataFrame], int]:
    """Every measure's record-level frame, built without people whose objection covers
    statistics, and the objections measure itself.

    Returns the frames and the number of people excluded as objectors."""
    kept, objectors = exclude_objectors(zb)
    kept = replace(kept, reference=zb.reference)  # reference data is not about people
    frames = {name: m.build(kept) for name, m in MEASURES.items()}
    frames[OBJECTIONS_MEASURE.meta.name] = OBJECTIONS_MEASURE.build(zb)
    return frames, objectors.height
