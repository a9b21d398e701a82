"""Derive: zone B events -> record-level frames, one per published measure.

Each measure is a pure function from the zone B tables to a frame with one row
per counted unit (a contact, a referral, a child, a family), the unit's
persistent identity (`unit_id`, from which the disclosure-control record key is
derived) and its breakdown dimensions. The publish step aggregates these into
release cubes; nothing here is ever shown directly.

People whose objection covers statistics (scope PLANNING_AND_RESEARCH) are removed
before any measure is built (`exclude_objectors`); the objections received, by the
period received, are themselves a (protected) measure (`OBJECTIONS_MEASURE`).

The definitions a non-specialist reads in the portal live next to each measure
in `MEASURES` (title, definition, unit, breakdowns, footnotes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import polars as pl

from pipelines.contracts import ETHNIC_MAJOR_GROUP
from pipelines.store import Denominator, MeasureMeta

GEO = ("locality", "ward")
PERSON = ("age_band", "sex", "ethnicity")
TIME = ("financial_year", "year", "quarter", "month")
SUSTAIN_DAYS = 183  # "sustained": at least six months after closure
CIN_CATEGORY = {
    "N1": "Abuse or neglect", "N2": "Child's disability", "N3": "Parental illness or disability",
    "N4": "Family in acute stress", "N5": "Family dysfunction",
    "N6": "Socially unacceptable behaviour",
    "N7": "Low income", "N8": "Absent parenting", "N9": "Cases other than children in need",
}  # fmt: skip


@dataclass(frozen=True)
class ZoneBFrames:
    persons: pl.DataFrame
    events: dict[str, pl.DataFrame]
    as_at: date

    def ev(self, name: str) -> pl.DataFrame:
        return self.events[name]


@dataclass(frozen=True)
class Measure:
    meta: MeasureMeta
    build: Callable[[ZoneBFrames], pl.DataFrame]


# ------------------------------------------------------------- helpers ---


def exclude_objectors(zb: ZoneBFrames) -> tuple[ZoneBFrames, pl.DataFrame]:
    """Drop everyone whose objection covers statistics from persons and every event table.

    An objection scoped to research only (ALL_RESEARCH) keeps the person out of research
    extracts (the research table's `objected`) but not out of statistics."""
    objectors = zb.persons.filter(pl.col("objected_statistics")).select("person_id")
    keep = zb.persons.filter(~pl.col("objected_statistics"))
    events = {k: v.join(objectors, on="person_id", how="anti") for k, v in zb.events.items()}
    return ZoneBFrames(keep, events, zb.as_at), objectors


def time_dims(col: str) -> list[pl.Expr]:
    d = pl.col(col)
    fy_start = pl.when(d.dt.month() >= 4).then(d.dt.year()).otherwise(d.dt.year() - 1)
    return [
        pl.format("{}/{}", fy_start, ((fy_start + 1) % 100).cast(pl.Utf8).str.zfill(2)).alias(
            "financial_year"
        ),
        d.dt.year().cast(pl.Utf8).alias("year"),
        pl.format("{}-Q{}", d.dt.year(), d.dt.quarter()).alias("quarter"),
        d.dt.strftime("%Y-%m").alias("month"),
    ]


def birth_date(birth_month: pl.Expr) -> pl.Expr:
    """Zone B keeps month of birth only: take the middle of the month."""
    return (birth_month + "-15").str.to_date("%Y-%m-%d", strict=False)


def age_band(birth_month: pl.Expr, at: pl.Expr) -> pl.Expr:
    years = (at - birth_date(birth_month)).dt.total_days() / 365.25
    return (
        pl.when(years.is_null())
        .then(pl.lit("Not known"))
        .when(years < 1)
        .then(pl.lit("Under 1"))
        .when(years < 5)
        .then(pl.lit("1-4"))
        .when(years < 10)
        .then(pl.lit("5-9"))
        .when(years < 16)
        .then(pl.lit("10-15"))
        .when(years < 18)
        .then(pl.lit("16-17"))
        .otherwise(pl.lit("18+"))
    )


def with_person_dims(df: pl.DataFrame, persons: pl.DataFrame, at: str) -> pl.DataFrame:
    p = persons.select(
        "person_id",
        "birth_month",
        pl.col("sex").fill_null("U"),
        pl.col("ethnicity")
        .replace_strict(ETHNIC_MAJOR_GROUP, default="Not known")
        .alias("ethnicity"),
        pl.col("locality").fill_null("Not known"),
        pl.col("ward").fill_null("Not known"),
    )
    return (
        df.join(p, on="person_id", how="inner")
        .with_columns(age_band(pl.col("birth_month"), pl.col(at)).alias("age_band"), *time_dims(at))
        .drop("birth_month")
    )


def _unit(*parts: str | pl.Expr) -> pl.Expr:
    return pl.concat_str(
        [pl.lit(p) if isinstance(p, str) else p for p in parts], separator="|"
    ).alias("unit_id")


def _select(df: pl.DataFrame, dims: tuple[str, ...]) -> pl.DataFrame:
    return df.select("unit_id", *[pl.col(d).cast(pl.Utf8).fill_null("Not known") for d in dims])


def _in_window(df: pl.DataFrame, col: str, zb: ZoneBFrames) -> pl.DataFrame:
    return df.filter(pl.col(col).is_not_null() & (pl.col(col) <= pl.lit(zb.as_at)))


def _dedupe(df: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """The same event recorded twice in a source (a duplicate the linkage resolved) counts once."""
    return df.unique(subset=keys, keep="first", maintain_order=True)


def _per_person(
    rows: pl.DataFrame,
    zb: ZoneBFrames,
    *,
    at: str,
    unit: tuple[str, ...],
    extra: tuple[str, ...] = (),
    time: tuple[str, ...] = TIME,
) -> pl.DataFrame:
    """One row per counted unit dated `at`, with place, person and time dimensions.

    `unit` is a prefix and the columns that identify the unit (its persistent id)."""
    prefix, *cols = unit
    df = with_person_dims(rows, zb.persons, at).with_columns(
        _unit(prefix, *[pl.col(c).cast(pl.Utf8) for c in cols])
    )
    return _select(df, (*GEO, *PERSON, *time, *extra))


def _per_family(
    rows: pl.DataFrame, *, at: str, prefix: str, extra: tuple[str, ...] = ()
) -> pl.DataFrame:
    """One row per family episode dated `at` (rows from `_eh_families`)."""
    df = rows.with_columns(*time_dims(at), _unit(prefix, pl.col("family_id"), pl.col("episode_id")))
    return _select(df, (*GEO, *TIME, *extra))


def _with_cin_category(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(
        pl.col("primary_need")
        .replace_strict(CIN_CATEGORY, default="Not known")
        .alias("cin_category")
    )


# ---------------------------------------------------- children in need ---


def contacts(zb: ZoneBFrames) -> pl.DataFrame:
    fd = _dedupe(
        _in_window(zb.ev("front_door"), "contact_date", zb),
        ["person_id", "contact_date", "contact_source"],
    ).with_columns(pl.col("contact_source").alias("referral_source"))
    return _per_person(
        fd, zb, at="contact_date", unit=("contact", "person_id", "contact_date"),
        extra=("referral_source", "decision"),
    )  # fmt: skip


def _referrals(zb: ZoneBFrames) -> pl.DataFrame:
    sc = _dedupe(
        _in_window(zb.ev("social_care"), "referral_date", zb), ["person_id", "referral_date"]
    )
    return sc.sort("person_id", "referral_date").with_columns(
        pl.col("referral_date").shift(1).over("person_id").alias("previous_referral")
    )


def cin_referrals(zb: ZoneBFrames) -> pl.DataFrame:
    return _per_person(
        _with_cin_category(_referrals(zb)), zb, at="referral_date",
        unit=("referral", "person_id", "referral_date"), extra=("referral_source", "cin_category"),
    )  # fmt: skip


def cin_rereferrals(zb: ZoneBFrames) -> pl.DataFrame:
    r = _referrals(zb).filter(
        pl.col("previous_referral").is_not_null()
        & ((pl.col("referral_date") - pl.col("previous_referral")).dt.total_days() <= 365)
    )
    return _per_person(
        _with_cin_category(r), zb, at="referral_date",
        unit=("referral", "person_id", "referral_date"), extra=("referral_source", "cin_category"),
    )  # fmt: skip


def _assessments(zb: ZoneBFrames) -> pl.DataFrame:
    return _in_window(_referrals(zb), "assessment_authorised", zb).filter(
        pl.col("assessment_start").is_not_null()
    )


def assessments_completed(zb: ZoneBFrames) -> pl.DataFrame:
    return _per_person(
        _assessments(zb), zb, at="assessment_authorised",
        unit=("assessment", "person_id", "assessment_start"),
    )  # fmt: skip


def assessments_within_45_days(zb: ZoneBFrames) -> pl.DataFrame:
    # 45 working days: weekdays, bank holidays not modelled (a known simplification).
    a = _assessments(zb).filter(
        pl.business_day_count(pl.col("assessment_start"), pl.col("assessment_authorised")) <= 45
    )
    return _per_person(
        a, zb, at="assessment_authorised", unit=("assessment", "person_id", "assessment_start")
    )


def s47_enquiries(zb: ZoneBFrames) -> pl.DataFrame:
    s = _in_window(_referrals(zb), "s47_start", zb)
    return _per_person(s, zb, at="s47_start", unit=("s47", "person_id", "s47_start"))


def _cp_plans(zb: ZoneBFrames) -> pl.DataFrame:
    cp = _dedupe(_in_window(_referrals(zb), "cp_plan_start", zb), ["person_id", "cp_plan_start"])
    return cp.sort("person_id", "cp_plan_start").with_columns(
        (pl.int_range(pl.len()).over("person_id") > 0).alias("subsequent")
    )


CP_UNIT = ("cp", "person_id", "cp_plan_start")


def cp_plans_started(zb: ZoneBFrames) -> pl.DataFrame:
    return _per_person(_cp_plans(zb), zb, at="cp_plan_start", unit=CP_UNIT)


def cp_plans_second_or_subsequent(zb: ZoneBFrames) -> pl.DataFrame:
    subsequent = _cp_plans(zb).filter(pl.col("subsequent"))
    return _per_person(subsequent, zb, at="cp_plan_start", unit=CP_UNIT)


def cp_plans_ended(zb: ZoneBFrames) -> pl.DataFrame:
    ended = _in_window(_cp_plans(zb), "cp_plan_end", zb)
    return _per_person(ended, zb, at="cp_plan_end", unit=CP_UNIT)


def cp_plans_ended_after_2_years(zb: ZoneBFrames) -> pl.DataFrame:
    ended = _in_window(_cp_plans(zb), "cp_plan_end", zb).filter(
        (pl.col("cp_plan_end") - pl.col("cp_plan_start")).dt.total_days() >= 730
    )
    return _per_person(ended, zb, at="cp_plan_end", unit=CP_UNIT)


def _financial_year_ends(zb: ZoneBFrames) -> list[date]:
    return [date(y, 3, 31) for y in range(2019, zb.as_at.year + 1) if date(y, 3, 31) <= zb.as_at]


def cp_plans_at_31_march(zb: ZoneBFrames) -> pl.DataFrame:
    cp = _cp_plans(zb)
    frames = [
        cp.filter(
            (pl.col("cp_plan_start") <= pl.lit(end))
            & (pl.col("cp_plan_end").is_null() | (pl.col("cp_plan_end") > pl.lit(end)))
        ).with_columns(pl.lit(end).alias("snapshot"))
        for end in _financial_year_ends(zb)
    ]
    if not frames:
        return pl.DataFrame(
            schema={"unit_id": pl.Utf8, **{d: pl.Utf8 for d in (*GEO, *PERSON, "financial_year")}}
        )
    return _per_person(
        pl.concat(frames), zb, at="snapshot", unit=(*CP_UNIT, "snapshot"),
        time=("financial_year",),
    )  # fmt: skip


def children_in_population(zb: ZoneBFrames) -> pl.DataFrame:
    """Children (0-17) known to any source, at 31 March of each year: the rate denominator."""
    seen = pl.concat([ev.select("person_id").unique() for ev in zb.events.values()]).unique()
    people = zb.persons.join(seen, on="person_id", how="semi").select("person_id")
    snapshots = pl.concat(
        [people.with_columns(pl.lit(end).alias("snapshot")) for end in _financial_year_ends(zb)]
    )
    df = _per_person(
        snapshots, zb, at="snapshot", unit=("child", "person_id", "snapshot"),
        time=("financial_year",),
    )  # fmt: skip
    return df.filter(~pl.col("age_band").is_in(["18+", "Not known"]))


def _eh(zb: ZoneBFrames) -> pl.DataFrame:
    return _dedupe(
        _in_window(zb.ev("early_help"), "referral_date", zb), ["person_id", "episode_id"]
    )


EH_UNIT = ("eh", "person_id", "episode_id")


def eh_referrals(zb: ZoneBFrames) -> pl.DataFrame:
    return _per_person(_eh(zb), zb, at="referral_date", unit=EH_UNIT, extra=("referral_source",))


def eh_step_up(zb: ZoneBFrames) -> pl.DataFrame:
    e = _in_window(_eh(zb), "closure_date", zb).filter(pl.col("closure_reason") == "STEP_UP_CSC")
    return _per_person(e, zb, at="closure_date", unit=EH_UNIT)


def eh_step_down(zb: ZoneBFrames) -> pl.DataFrame:
    e = _eh(zb).filter(pl.col("stepped_down_from_csc") == "Y")
    return _per_person(e, zb, at="referral_date", unit=EH_UNIT)


def eh_closures(zb: ZoneBFrames) -> pl.DataFrame:
    e = _in_window(_eh(zb), "closure_date", zb)
    return _per_person(e, zb, at="closure_date", unit=EH_UNIT, extra=("closure_reason",))


def _eh_families(zb: ZoneBFrames) -> pl.DataFrame:
    """One row per family episode: its dates, needs and where the family lives."""
    eh = _eh(zb)
    fam = eh.group_by("family_id", "episode_id").agg(
        pl.col("referral_date").min(),
        pl.col("assessment_date").min(),
        pl.col("closure_date").max(),
        pl.col("closure_reason").drop_nulls().first(),
        pl.col("needs").drop_nulls().first(),
        pl.col("stepped_down_from_csc").first(),
        pl.col("person_id").min().alias("lead"),
    )
    geo = zb.persons.select(
        pl.col("person_id").alias("lead"),
        pl.col("locality").fill_null("Not known"),
        pl.col("ward").fill_null("Not known"),
    )
    return fam.join(geo, on="lead", how="left").sort("family_id", "referral_date")


def whole_family_assessments(zb: ZoneBFrames) -> pl.DataFrame:
    f = _in_window(_eh_families(zb), "assessment_date", zb)
    return _per_family(f, at="assessment_date", prefix="wfa")


def eh_family_rereferrals(zb: ZoneBFrames) -> pl.DataFrame:
    f = _eh_families(zb).with_columns(
        pl.col("closure_date").shift(1).over("family_id").alias("prev_close")
    )
    r = f.filter(
        pl.col("prev_close").is_not_null()
        & ((pl.col("referral_date") - pl.col("prev_close")).dt.total_days() <= 365)
    )
    return _per_family(r, at="referral_date", prefix="ehf")


def sf_families_worked_with(zb: ZoneBFrames) -> pl.DataFrame:
    return _per_family(_eh_families(zb), at="referral_date", prefix="sf")


def sf_needs_at_entry(zb: ZoneBFrames) -> pl.DataFrame:
    """One row per family episode per need identified (a family counts under each need)."""
    f = _eh_families(zb).with_columns(pl.col("needs").str.split(";").alias("need")).explode("need")
    f = f.filter(pl.col("need").is_not_null() & (pl.col("need") != ""))
    df = f.with_columns(
        *time_dims("referral_date"),
        pl.col("need").str.replace_all("_", " ").str.to_titlecase(),
        _unit("sfneed", pl.col("family_id"), pl.col("episode_id"), pl.col("need")),
    )
    return _select(df, (*GEO, *TIME, "need"))


def need_outcomes(zb: ZoneBFrames) -> pl.DataFrame:
    """Per closed family episode and need: did a positive outcome hold for six months?

    Positive = none of the need's warning events for any family member in the
    183 days after closure (only episodes closed at least 183 days before the
    data as-at date can be judged):
    DOMESTIC_ABUSE: no domestic abuse incident; CRIME: no incident as suspect and
    no youth offence; SUBSTANCE: no substance-misuse contact or drugs incident;
    HEALTH: no mental-health contact; HOUSING: no new housing case;
    FINANCIAL: no out-of-work benefit spell running; EDUCATION: no suspension and
    attendance of at least 90% in the next school year; EARLY_YEARS: no SEN
    support need newly recorded; ABUSE_EXPLOITATION and RELATIONSHIPS: no
    social care referral and no new Early Help referral.
    """
    f = _eh_families(zb).filter(
        pl.col("closure_date").is_not_null()
        & (pl.col("closure_date") <= pl.lit(zb.as_at) - pl.duration(days=SUSTAIN_DAYS))
    )
    f = (
        f.with_columns(pl.col("needs").str.split(";").alias("need"))
        .explode("need")
        .filter(pl.col("need").is_not_null() & (pl.col("need") != ""))
    )
    eps = f.select("family_id", "episode_id", "closure_date", "need")

    def bad_events(
        need: str, frame: pl.DataFrame, date_col: str, cond: pl.Expr | None = None
    ) -> pl.DataFrame:
        ev = frame if cond is None else frame.filter(cond)
        ev = ev.select("family_id", pl.col(date_col).alias("at"))
        j = eps.filter(pl.col("need") == need).join(ev, on="family_id")
        hit = j.filter(
            (pl.col("at") > pl.col("closure_date"))
            & ((pl.col("at") - pl.col("closure_date")).dt.total_days() <= SUSTAIN_DAYS)
        )
        return hit.select("episode_id", "need").unique()

    pol = zb.ev("police")
    misses = [
        bad_events(
            "DOMESTIC_ABUSE", pol, "incident_date", pl.col("incident_type") == "DOMESTIC_ABUSE"
        ),
        bad_events(
            "CRIME",
            pol,
            "incident_date",
            (pl.col("role") == "SUSPECT") & (pl.col("incident_type") != "DOMESTIC_ABUSE"),
        ),
        bad_events("CRIME", zb.ev("youth_justice"), "offence_date"),
        bad_events(
            "SUBSTANCE", zb.ev("health"), "contact_date", pl.col("service") == "SUBSTANCE_MISUSE"
        ),
        bad_events("SUBSTANCE", pol, "incident_date", pl.col("incident_type") == "DRUGS"),
        bad_events(
            "HEALTH",
            zb.ev("health"),
            "contact_date",
            pl.col("service").is_in(["CAMHS", "ADULT_MH", "PERINATAL_MH"]),
        ),
        bad_events("HOUSING", zb.ev("housing"), "case_start"),
        bad_events("FINANCIAL", zb.ev("dwp"), "spell_start"),
        bad_events("ABUSE_EXPLOITATION", zb.ev("social_care"), "referral_date"),
        bad_events("RELATIONSHIPS", zb.ev("social_care"), "referral_date"),
        bad_events("RELATIONSHIPS", zb.ev("early_help"), "referral_date"),
        bad_events("ABUSE_EXPLOITATION", zb.ev("early_help"), "referral_date"),
        bad_events(
            "EARLY_YEARS",
            zb.ev("early_years").with_columns(
                pl.date(pl.col("term").str.slice(0, 4).cast(pl.Int32), 1, 15).alias("term_date")
            ),
            "term_date",
            pl.col("sen_support") == "Y",
        ),
    ]
    # Benefit spells that began before closure but were still running six months on.
    dwp = zb.ev("dwp")
    running = (
        eps.filter(pl.col("need") == "FINANCIAL")
        .join(dwp.select("family_id", "spell_start", "spell_end"), on="family_id")
        .filter(
            (pl.col("spell_start") <= pl.col("closure_date"))
            & (
                pl.col("spell_end").is_null()
                | (pl.col("spell_end") > pl.col("closure_date") + pl.duration(days=SUSTAIN_DAYS))
            )
        )
        .select("episode_id", "need")
        .unique()
    )
    misses.append(running)
    # Education: the next academic year after closure.
    sc = zb.ev("school_census").with_columns(
        pl.date(pl.col("academic_year").str.slice(0, 4).cast(pl.Int32), 9, 1).alias("year_start"),
        (pl.col("sessions_missed") / pl.col("sessions_possible")).alias("absence"),
    )
    edu = (
        eps.filter(pl.col("need") == "EDUCATION")
        .join(sc.select("family_id", "year_start", "absence", "suspensions"), on="family_id")
        .filter(
            (pl.col("year_start") > pl.col("closure_date"))
            & ((pl.col("year_start") - pl.col("closure_date")).dt.total_days() <= 365)
        )
        .filter((pl.col("absence") > 0.10) | (pl.col("suspensions") > 0))
        .select("episode_id", "need")
        .unique()
    )
    misses.append(edu)
    missed = pl.concat(misses).unique()
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
    return _per_family(fam, at="closure_date", prefix="sf")


def sf_families_closed_judgeable(zb: ZoneBFrames) -> pl.DataFrame:
    """Family episodes closed at least six months before the as-at date (progress denominator)."""
    out = need_outcomes(zb).select("family_id", "episode_id").unique()
    fam = _eh_families(zb).join(out, on=["family_id", "episode_id"], how="semi")
    return _per_family(fam, at="closure_date", prefix="sf")


# ------------------------------------------------------------- registry ---

_CIN_FOOT = (
    "Children's social care records; definitions follow the national Children in Need census.",
)
_EH_FOOT = (
    "Early Help case system records. A child in a family episode is counted once per episode.",
)
_SF_FOOT = (
    "Supporting Families outcomes framework. A family is counted once per Early Help episode.",
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
) -> Measure:
    return Measure(
        MeasureMeta(name, title, definition, unit, dims, denominator, None, footnotes), build
    )


MEASURES: dict[str, Measure] = {
    m.meta.name: m
    for m in (
        _m(
            "contacts",
            "Contacts to the Front Door",
            "contacts",
            (*GEO, *PERSON, *TIME, "referral_source", "decision"),
            "Contacts about a child received by the Front Door (MASH), by who made contact and "
            "what was decided. A contact recorded twice counts once.",
            contacts,
            footnotes=_EH_FOOT[:0],
        ),
        _m(
            "cin_referrals",
            "Referrals to children's social care",
            "referrals",
            (*GEO, *PERSON, *TIME, "referral_source", "cin_category"),
            "Referrals accepted by children's social care, dated by when the referral was "
            "received.",
            cin_referrals,
            footnotes=_CIN_FOOT,
        ),
        _m(
            "cin_rereferrals_12m",
            "Re-referrals within 12 months",
            "referrals",
            (*GEO, *PERSON, *TIME, "referral_source", "cin_category"),
            "Referrals of a child who had another referral in the previous 12 months, as a share "
            "of all referrals.",
            cin_rereferrals,
            denominator=Denominator("cin_referrals", 100, 1),
            footnotes=_CIN_FOOT,
        ),
        _m(
            "assessments_completed",
            "Assessments completed",
            "assessments",
            (*GEO, *PERSON, *TIME),
            "Social care assessments authorised in the period.",
            assessments_completed,
            footnotes=_CIN_FOOT,
        ),
        _m(
            "assessments_within_45_days",
            "Assessments completed within 45 working days",
            "assessments",
            (*GEO, *PERSON, *TIME),
            "Assessments authorised within 45 working days of starting, as a share of "
            "assessments completed. Working days exclude weekends; bank holidays are not "
            "excluded.",
            assessments_within_45_days,
            denominator=Denominator("assessments_completed", 100, 1),
            footnotes=_CIN_FOOT,
        ),
        _m(
            "s47_enquiries",
            "Section 47 enquiries started",
            "enquiries",
            (*GEO, *PERSON, *TIME),
            "Enquiries under section 47 of the Children Act 1989 (where a child is suspected to "
            "be suffering significant harm).",
            s47_enquiries,
            footnotes=_CIN_FOOT,
        ),
        _m(
            "cp_plans_started",
            "Child protection plans started",
            "plans",
            (*GEO, *PERSON, *TIME),
            "Child protection plans that started in the period.",
            cp_plans_started,
            footnotes=_CIN_FOOT,
        ),
        _m(
            "cp_plans_second_or_subsequent",
            "Second or subsequent child protection plans",
            "plans",
            (*GEO, *PERSON, *TIME),
            "Plans started for a child who had been on a plan before, as a share of plans started.",
            cp_plans_second_or_subsequent,
            denominator=Denominator("cp_plans_started", 100, 1),
            footnotes=_CIN_FOOT,
        ),
        _m(
            "cp_plans_ended",
            "Child protection plans ended",
            "plans",
            (*GEO, *PERSON, *TIME),
            "Child protection plans that ended in the period.",
            cp_plans_ended,
            footnotes=_CIN_FOOT,
        ),
        _m(
            "cp_plans_ended_2_years_plus",
            "Plans ended that lasted two years or more",
            "plans",
            (*GEO, *PERSON, *TIME),
            "Child protection plans ending in the period that had lasted at least two years, as "
            "a share of plans ended.",
            cp_plans_ended_after_2_years,
            denominator=Denominator("cp_plans_ended", 100, 1),
            footnotes=_CIN_FOOT,
        ),
        _m(
            "children_in_population",
            "Children known to services",
            "children",
            (*GEO, *PERSON, "financial_year"),
            "Children aged 0-17 at 31 March who appear in any source system: the denominator of "
            "rates per 10,000 children.",
            children_in_population,
        ),
        _m(
            "cp_plans_at_31_march",
            "Children on a child protection plan at 31 March",
            "children",
            (*GEO, *PERSON, "financial_year"),
            "Children on a child protection plan on 31 March, per 10,000 children known to "
            "services.",
            cp_plans_at_31_march,
            denominator=Denominator("children_in_population", 10_000, 1),
            footnotes=_CIN_FOOT,
        ),
        _m(
            "eh_referrals",
            "Children referred to Early Help",
            "children",
            (*GEO, *PERSON, *TIME, "referral_source"),
            "Children in Early Help episodes that started in the period, by who referred.",
            eh_referrals,
            footnotes=_EH_FOOT,
        ),
        _m(
            "eh_step_up",
            "Step-up from Early Help to social care",
            "children",
            (*GEO, *PERSON, *TIME),
            "Children whose Early Help episode closed because the case stepped up to children's "
            "social care.",
            eh_step_up,
            footnotes=_EH_FOOT,
        ),
        _m(
            "eh_step_down",
            "Step-down from social care to Early Help",
            "children",
            (*GEO, *PERSON, *TIME),
            "Children whose Early Help episode began as a step-down from children's social care.",
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
            footnotes=_EH_FOOT,
        ),
        _m(
            "eh_family_rereferrals",
            "Families re-referred to Early Help within 12 months",
            "families",
            (*GEO, *TIME),
            "Family episodes starting within 12 months of the family's previous Early Help "
            "episode closing.",
            eh_family_rereferrals,
            footnotes=_EH_FOOT,
        ),
        _m(
            "sf_families_worked_with",
            "Families worked with",
            "families",
            (*GEO, *TIME),
            "Families starting an Early Help episode (the Supporting Families 'families worked "
            "with').",
            sf_families_worked_with,
            footnotes=_SF_FOOT,
        ),
        _m(
            "sf_needs_at_entry",
            "Needs identified at entry",
            "family needs",
            (*GEO, *TIME, "need"),
            "Needs identified in the Whole Family Assessment, one count per family per need (a "
            "family with three needs counts three times).",
            sf_needs_at_entry,
            footnotes=_SF_FOOT,
        ),
        _m(
            "sf_families_closed",
            "Families whose episode closed at least six months ago",
            "families",
            (*GEO, *TIME),
            "Family episodes closed at least six months before the data date: the families whose "
            "progress can be judged.",
            sf_families_closed_judgeable,
            footnotes=_SF_FOOT,
        ),
        _m(
            "sf_significant_sustained_progress",
            "Families with significant and sustained progress",
            "families",
            (*GEO, *TIME),
            "Families whose every identified need showed a positive outcome that held for at "
            "least six months after the episode closed, as a share of families whose progress "
            "can be judged. See the methodology page for the outcome used for each need.",
            sf_families_with_progress,
            denominator=Denominator("sf_families_closed", 100, 1),
            footnotes=_SF_FOOT,
        ),
    )
}


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
    frames = {name: m.build(kept) for name, m in MEASURES.items()}
    frames[OBJECTIONS_MEASURE.meta.name] = OBJECTIONS_MEASURE.build(zb)
    return frames, objectors.height
