"""The research table: one row per person in zone B, the source of every research extract.

Built by the pipeline from the pseudonymous person index and event tables (no
direct identifiers go in). Every column is described in the extract
catalogue (`anonymise/catalogue.py`); the extract builder picks, generalises,
suppresses and re-keys from here. Counts are top-coded at `TOP_CODE` so a
rare extreme value does not single anyone out.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from pipelines.derive import birth_date

TOP_CODE = 20


def _count(frame: pl.DataFrame, name: str, cond: pl.Expr | None = None) -> pl.DataFrame:
    f = frame if cond is None else frame.filter(cond)
    return f.group_by("person_id").agg(pl.len().cast(pl.Int64).alias(name))


def _flag(frame: pl.DataFrame, name: str, cond: pl.Expr) -> pl.DataFrame:
    return frame.group_by("person_id").agg(cond.any().alias(name))


def build_research_table(
    persons: pl.DataFrame, events: dict[str, pl.DataFrame], as_at: date
) -> pl.DataFrame:
    """Pure: zone B persons and events -> one research row per person."""
    born = birth_date(pl.col("birth_month"))
    base = persons.select(
        "person_id",
        "family_id",
        "objected",
        ((pl.lit(as_at) - born).dt.total_days() / 365.25).floor().cast(pl.Int64).alias("age"),
        pl.col("sex").fill_null("U"),
        pl.col("ethnicity").fill_null("NOBT"),
        pl.col("lsoa_code").fill_null("Not known").alias("lsoa"),
    )
    eh = events["early_help"]
    sc = events["social_care"]
    school = events["school_census"].sort("academic_year")
    pol = events["police"]
    health = events["health"]
    parts = [
        _count(eh.unique(["person_id", "episode_id"]), "eh_episodes"),
        eh.group_by("person_id").agg(
            pl.col("referral_date").min().dt.strftime("%Y-%m").alias("first_eh_referral_month"),
            pl.col("needs").sort_by("referral_date").drop_nulls().last().alias("eh_needs_latest"),
        ),
        _count(events["front_door"], "contacts"),
        _count(sc.unique(["person_id", "referral_date"]), "csc_referrals"),
        _count(sc.filter(pl.col("assessment_authorised").is_not_null()), "assessments"),
        _count(sc.filter(pl.col("s47_start").is_not_null()), "s47_enquiries"),
        _flag(sc, "cp_plan_ever", pl.col("cp_plan_start").is_not_null()),
        _flag(sc, "looked_after_ever", pl.col("cla_start").is_not_null()),
        sc.group_by("person_id").agg(
            pl.col("primary_need").sort_by("referral_date").last().alias("cin_category_latest")
        ),
        _flag(school, "fsm_ever", pl.col("fsm_eligible") == "Y"),
        school.group_by("person_id").agg(
            pl.col("sen_provision").last().alias("sen_latest"),
            (pl.col("sessions_missed").last() / pl.col("sessions_possible").last() * 100)
            .round(1)
            .alias("absence_pct_latest"),
            pl.col("suspensions").sum().cast(pl.Int64).alias("suspensions_total"),
            (pl.col("permanent_exclusion") == "Y").any().alias("permanent_exclusion_ever"),
        ),
        _flag(events["early_years"], "funded_2yo_ever", pl.col("funding_type") == "2YO"),
        _count(pol, "police_incidents"),
        _count(pol, "domestic_abuse_incidents", pl.col("incident_type") == "DOMESTIC_ABUSE"),
        _count(events["youth_justice"], "youth_offences"),
        _flag(events["neet"], "neet_ever", pl.col("activity") == "NEET"),
        _count(events["dwp"], "benefit_spells"),
        _count(events["adult_social_care"], "adult_care_services"),
        _count(events["housing"], "housing_cases"),
        _count(health, "mental_health_contacts", pl.col("service") != "SUBSTANCE_MISUSE"),
        _count(health, "substance_misuse_contacts", pl.col("service") == "SUBSTANCE_MISUSE"),
    ]
    table = base
    for p in parts:
        table = table.join(p, on="person_id", how="left")
    counts = [c for c, t in table.schema.items() if t == pl.Int64 and c != "age"]
    flags = [c for c, t in table.schema.items() if t == pl.Boolean and c != "objected"]
    return table.with_columns(
        *(pl.col(c).fill_null(0).clip(upper_bound=TOP_CODE) for c in counts),
        *(pl.when(pl.col(c)).then(pl.lit("Y")).otherwise(pl.lit("N")).alias(c) for c in flags),
        pl.col("age").clip(0, 99),
        # A person never in a school census or social care has no value: say so, as a
        # value, so that "not recorded" is counted like any other category.
        *(
            pl.col(c).fill_null("not recorded")
            for c in ("sen_latest", "cin_category_latest", "eh_needs_latest")
        ),
    ).sort("person_id")
