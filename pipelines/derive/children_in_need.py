"""Children's social care measures: contacts, referrals, assessments, section 47
enquiries, child protection plans, children in need and on plans at 31 March, and the
child population that rates divide by.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from pipelines.derive.common import (
    ASSESSMENT_WORKING_DAYS,
    GEO,
    ZoneBFrames,
    _band,
    _dedupe,
    _label,
    _per_person,
    _select,
    _unit,
    _upto_as_at,
    _with_cin_category,
    count_dates,
    working_days,
)
from registry.codes import (
    ADULT_AGE,
    FRONT_DOOR_DECISION_LABELS,
    REFERRAL_SOURCE_LABELS,
)
from registry.periods import financial_year


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
