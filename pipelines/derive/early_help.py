"""Early Help and Supporting Families measures: referrals, step-up and step-down,
closures, whole family assessments, families worked with, needs at entry, and whether
each need showed a positive outcome sustained for six months (the rules are data:
`need_outcomes.toml`).
"""

from __future__ import annotations

import polars as pl

from pipelines.derive.common import (
    GEO,
    TIME,
    ZoneBFrames,
    _dedupe,
    _in_window,
    _label,
    _memo,
    _per_family,
    _per_person,
    _select,
    _unit,
    _upto_as_at,
    age_years,
    time_dims,
)
from pipelines.derive.need_rules import load_need_rules, warning_frames
from registry.codes import (
    ADULT_AGE,
    EH_CLOSURE_LABELS,
    NEED_LABELS,
    NOT_KNOWN,
    REFERRAL_SOURCE_LABELS,
)


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
    `pipelines/derive/need_outcomes.toml` (e.g. DOMESTIC_ABUSE: a domestic abuse incident;
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
