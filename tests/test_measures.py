"""The published measures: each headline value recomputed by an independent route from
zone B, every released category checked against its documented code list, and the rules
every measure shares (children are under 18, working days skip bank holidays, periods
start at a source's coverage start, every definition cites its guidance).

The independent route is plain polars written from the definitions in the measure
registry, not from `pipelines.derive`: it reads zone B's persons and events (and the
ONS-layout population file as a CSV) and counts each measure's headline value, the
county total for the latest complete financial year.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import holidays
import numpy as np
import polars as pl
import pytest

from anonymise.policy import default_policy
from anonymise.pseudonymise import MasterKey
from anonymise.release import CubeSet, tabulate
from pipelines.derive import (
    MEASURES,
    ZoneBFrames,
    coverage_start,
    derive_all,
    with_person_dims,
    working_days,
)
from pipelines.publish import build_cubes, measure_meta
from pipelines.reference import Reference, extract_as_at, load_reference
from pipelines.run import run_pipeline
from registry.codes import PUBLISHED_LEVELS
from registry.periods import FORMATS, TIME_DIMENSIONS, period_bounds
from synthetic.generator import generate_county

SECRET = b"q" * 32
POLICY = default_policy()
FY = "2025/26"
FY_START, FY_END = date(2025, 4, 1), date(2026, 3, 31)
SF_FY = "2024/25"  # six months must pass after a closure before progress can be judged
SF_START, SF_END = date(2024, 4, 1), date(2025, 3, 31)


@pytest.fixture(scope="module")
def county(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("measures")
    generate_county(8000, 17, d / "raw")
    return _published(d / "raw", d / "work")


@pytest.fixture(scope="module")
def county_20k_published(county_20k, tmp_path_factory) -> dict:
    """The session's 20,000-person county (tests/conftest.py) through the pipeline."""
    return _published(county_20k, tmp_path_factory.mktemp("measures20k") / "work")


def _published(raw: Path, work: Path) -> dict:
    as_at = extract_as_at(raw)
    res = run_pipeline(
        raw,
        work,
        MasterKey(b"z" * 32, "environment"),
        as_at=as_at,
        accept_unmatched_objections="all",
    )
    assert res.zone_b is not None
    zb = ZoneBFrames(res.zone_b.persons, res.zone_b.events, as_at, load_reference(raw))
    frames, _ = derive_all(zb)
    return {"raw": raw, "zb": zb, "frames": frames, "as_at": as_at}


# --- the independent route ------------------------------------------------------------


def _people(zb: ZoneBFrames) -> pl.DataFrame:
    """Everyone statistics may count, with their date of birth (mid-month: zone B keeps the
    month). An objection scoped to research only (`objected` without `objected_statistics`)
    keeps a person out of research extracts, not out of statistics (pipelines/zone_b.py)."""
    return zb.persons.filter(~pl.col("objected_statistics")).select(
        "person_id", pl.col("birth_month").str.strip_chars().alias("bm")
    )


def _child_on(col: str) -> pl.Expr:
    born = pl.concat_str(pl.col("bm"), pl.lit("-15")).str.to_date(strict=False)
    age = (pl.col(col) - born).dt.total_days() / 365.25
    return born.is_null() | (age < 18)


def _events(zb: ZoneBFrames, source: str) -> pl.DataFrame:
    return zb.ev(source).join(_people(zb), on="person_id", how="inner")


def _in(col: str, start: date, end: date) -> pl.Expr:
    return pl.col(col).is_between(start, end)


def _referrals(zb: ZoneBFrames) -> pl.DataFrame:
    sc = _events(zb, "social_care").filter(pl.col("referral_date") <= zb.as_at)
    return sc.unique(["person_id", "referral_date"], keep="first", maintain_order=True)


def _plans(zb: ZoneBFrames) -> pl.DataFrame:
    cp = _referrals(zb).filter(
        pl.col("cp_plan_start").is_not_null() & (pl.col("cp_plan_start") <= zb.as_at)
    )
    cp = cp.unique(["person_id", "cp_plan_start"], keep="first", maintain_order=True)
    first = cp.group_by("person_id").agg(pl.col("cp_plan_start").min().alias("first"))
    return cp.join(first, on="person_id")


def _bank_holidays() -> list[np.datetime64]:
    days = holidays.country_holidays("GB", subdiv="ENG", years=range(2015, 2028))
    return [np.datetime64(d) for d in days]


def _eh(zb: ZoneBFrames) -> pl.DataFrame:
    eh = _events(zb, "early_help").filter(pl.col("referral_date") <= zb.as_at)
    return eh.unique(["person_id", "episode_id"], keep="first", maintain_order=True)


def _episodes(zb: ZoneBFrames) -> pl.DataFrame:
    return (
        _eh(zb)
        .group_by("family_id", "episode_id")
        .agg(
            pl.col("referral_date").min(),
            pl.col("assessment_date").min(),
            pl.col("closure_date").max(),
            pl.col("needs").drop_nulls().first(),
        )
        .sort("family_id", "referral_date")
    )


def _judgeable(zb: ZoneBFrames) -> pl.DataFrame:
    """Closed family episodes, six months or more before the data date, with their needs."""
    cut = zb.as_at - timedelta(days=183)
    ep = _episodes(zb).filter(
        pl.col("closure_date").is_not_null() & (pl.col("closure_date") <= cut)
    )
    return (
        ep.with_columns(pl.col("needs").str.split(";").alias("need"))
        .explode("need")
        .filter(pl.col("need").is_not_null() & (pl.col("need") != ""))
    )


def _need_results(zb: ZoneBFrames) -> pl.DataFrame:
    """Per judgeable episode and need: `bad` is true where the need's outcome broke within
    183 days of closure."""
    eps = _judgeable(zb)

    def after(frame: pl.DataFrame, at: str) -> pl.DataFrame:
        """Episode-needs with an event of `frame` in the 183 days after closure."""
        j = eps.join(frame.select("family_id", pl.col(at).alias("t")), on="family_id")
        days = (pl.col("t") - pl.col("closure_date")).dt.total_days()
        return j.filter((days > 0) & (days <= 183)).select("episode_id", "need")

    pol, hl, sc, eh = zb.ev("police"), zb.ev("health"), zb.ev("social_care"), zb.ev("early_help")
    failed = [
        after(pol.filter(pl.col("incident_type") == "DOMESTIC_ABUSE"), "incident_date").filter(
            pl.col("need") == "DOMESTIC_ABUSE"
        ),
        after(
            pol.filter(
                (pl.col("role") == "SUSPECT") & (pl.col("incident_type") != "DOMESTIC_ABUSE")
            ),
            "incident_date",
        ).filter(pl.col("need") == "CRIME"),
        after(zb.ev("youth_justice"), "offence_date").filter(pl.col("need") == "CRIME"),
        after(hl.filter(pl.col("service") == "SUBSTANCE_MISUSE"), "contact_date").filter(
            pl.col("need") == "SUBSTANCE"
        ),
        after(pol.filter(pl.col("incident_type") == "DRUGS"), "incident_date").filter(
            pl.col("need") == "SUBSTANCE"
        ),
        after(
            hl.filter(pl.col("service").is_in(["CAMHS", "ADULT_MH", "PERINATAL_MH"])),
            "contact_date",
        ).filter(pl.col("need") == "HEALTH"),
        after(zb.ev("housing"), "case_start").filter(pl.col("need") == "HOUSING"),
        after(zb.ev("dwp"), "spell_start").filter(pl.col("need") == "FINANCIAL"),
        after(sc, "referral_date").filter(
            pl.col("need").is_in(["ABUSE_EXPLOITATION", "RELATIONSHIPS"])
        ),
        after(eh, "referral_date").filter(
            pl.col("need").is_in(["ABUSE_EXPLOITATION", "RELATIONSHIPS"])
        ),
        after(
            zb.ev("early_years")
            .filter(pl.col("sen_support") == "Y")
            .with_columns(
                pl.date(pl.col("term").str.slice(0, 4).cast(pl.Int32), 1, 15).alias("term_date")
            ),
            "term_date",
        ).filter(pl.col("need") == "EARLY_YEARS"),
    ]
    # A benefit spell begun before closure and still running six months later.
    spells = eps.filter(pl.col("need") == "FINANCIAL").join(
        zb.ev("dwp").select("family_id", "spell_start", "spell_end"), on="family_id"
    )
    failed.append(
        spells.filter(
            (pl.col("spell_start") <= pl.col("closure_date"))
            & (
                pl.col("spell_end").is_null()
                | ((pl.col("spell_end") - pl.col("closure_date")).dt.total_days() > 183)
            )
        ).select("episode_id", "need")
    )
    # Education: absence over 10% or a suspension in the next school year.
    school = zb.ev("school_census").with_columns(
        pl.date(pl.col("academic_year").str.slice(0, 4).cast(pl.Int32), 9, 1).alias("sept"),
        (pl.col("sessions_missed") / pl.col("sessions_possible")).alias("absence"),
    )
    edu = eps.filter(pl.col("need") == "EDUCATION").join(school, on="family_id")
    gap = (pl.col("sept") - pl.col("closure_date")).dt.total_days()
    failed.append(
        edu.filter(
            (gap > 0) & (gap <= 365) & ((pl.col("absence") > 0.1) | (pl.col("suspensions") > 0))
        ).select("episode_id", "need")
    )
    bad = pl.concat(failed).unique()
    return eps.join(
        bad.with_columns(pl.lit(True).alias("bad")), on=["episode_id", "need"], how="left"
    )


def _progress(zb: ZoneBFrames) -> pl.DataFrame:
    """Per judgeable episode: did every need's positive outcome hold for 183 days?"""
    return (
        _need_results(zb)
        .group_by("family_id", "episode_id", "closure_date")
        .agg(pl.col("bad").is_null().all().alias("progress"))
    )


CLAIM_RULE_COLUMNS = (
    "family_with_child", "three_headlines", "assessment_and_plan", "lead_practitioner",
    "sustained_progress",
)  # fmt: skip


def _claim_review(zb: ZoneBFrames) -> pl.DataFrame:
    """Per family episode whose six months after closure ended by the data date: each
    Supporting Families claim rule, every rule, and the family's first such episode."""
    eh = _eh(zb)
    lead = pl.col("lead_practitioner").str.strip_chars()
    ep = eh.group_by("family_id", "episode_id").agg(
        pl.col("assessment_date").min(),
        pl.col("plan_start").min(),
        pl.col("closure_date").max(),
        pl.col("needs").drop_nulls().first(),
        (lead.is_not_null() & (lead != "")).any().alias("lead_practitioner"),
        _child_on("referral_date").any().alias("family_with_child"),
    )
    ep = ep.filter(pl.col("closure_date").is_not_null()).with_columns(
        (pl.col("closure_date") + timedelta(days=183)).alias("review_date")
    )
    ep = ep.filter(pl.col("review_date") <= zb.as_at)
    headlines = (
        pl.col("needs").fill_null("").str.split(";")
        .list.eval(pl.element().filter(pl.element() != "")).list.unique().list.len()
    )  # fmt: skip
    progress = _progress(zb).select("episode_id", pl.col("progress").alias("sustained_progress"))
    review = ep.join(progress, on="episode_id", how="left").with_columns(
        (headlines >= 3).alias("three_headlines"),
        (pl.col("assessment_date").is_not_null() & pl.col("plan_start").is_not_null()).alias(
            "assessment_and_plan"
        ),
        pl.col("sustained_progress").fill_null(False),
    )
    review = review.with_columns(pl.all_horizontal(*CLAIM_RULE_COLUMNS).alias("claimable"))
    firsts = (
        review.filter(pl.col("claimable"))
        .sort("review_date", "episode_id")
        .group_by("family_id")
        .agg(pl.col("episode_id").first())
        .with_columns(pl.lit(True).alias("claim"))
    )
    return review.join(firsts, on=["family_id", "episode_id"], how="left").with_columns(
        pl.col("claim").fill_null(False)
    )


def _population(raw: Path) -> pl.DataFrame:
    return pl.read_csv(raw / "reference" / "population_estimates.csv")


def headline(name: str, c: dict) -> int:
    """The county total of measure `name` for its latest complete financial year."""
    zb: ZoneBFrames = c["zb"]
    a, b = FY_START, FY_END
    if name == "contacts":
        fd = _events(zb, "front_door").unique(["person_id", "contact_date", "contact_source"])
        return fd.filter(_in("contact_date", a, b) & _child_on("contact_date")).height
    if name == "cin_referrals":
        return _referrals(zb).filter(_in("referral_date", a, b) & _child_on("referral_date")).height
    if name == "cin_rereferrals_12m":
        r = _referrals(zb).sort("person_id", "referral_date")
        r = r.with_columns(pl.col("referral_date").shift().over("person_id").alias("prev"))
        gap = (pl.col("referral_date") - pl.col("prev")).dt.total_days()
        return r.filter(
            _in("referral_date", a, b) & _child_on("referral_date") & (gap <= 365)
        ).height
    if name in ("assessments_completed", "assessments_within_45_days"):
        r = _referrals(zb).filter(
            pl.col("assessment_start").is_not_null()
            & _in("assessment_authorised", a, b)
            & _child_on("assessment_authorised")
        )
        if name == "assessments_completed":
            return r.height
        days = np.busday_count(
            r["assessment_start"].to_numpy().astype("datetime64[D]"),
            r["assessment_authorised"].to_numpy().astype("datetime64[D]"),
            holidays=_bank_holidays(),
        )
        return int((days <= 45).sum())
    if name == "s47_enquiries":
        return _referrals(zb).filter(_in("s47_start", a, b) & _child_on("s47_start")).height
    if name in ("cp_plans_started", "cp_plans_second_or_subsequent"):
        p = _plans(zb).filter(_in("cp_plan_start", a, b) & _child_on("cp_plan_start"))
        if name == "cp_plans_second_or_subsequent":
            p = p.filter(pl.col("cp_plan_start") > pl.col("first"))
        return p.height
    if name in ("cp_plans_ended", "cp_plans_ended_2_years_plus"):
        p = _plans(zb).filter(_in("cp_plan_end", a, b) & _child_on("cp_plan_end"))
        if name == "cp_plans_ended_2_years_plus":
            p = p.filter((pl.col("cp_plan_end") - pl.col("cp_plan_start")).dt.total_days() >= 730)
        return p.height
    if name == "child_population":
        pop = _population(c["raw"])
        return int(pop.filter(pl.col("age") < 18)["population_2025"].sum())
    if name in ("cin_at_31_march", "cp_plans_at_31_march"):
        start, end = (
            ("referral_date", "closure_date")
            if name == "cin_at_31_march"
            else ("cp_plan_start", "cp_plan_end")
        )
        rows = _referrals(zb) if name == "cin_at_31_march" else _plans(zb)
        on = rows.with_columns(pl.lit(b).alias("day")).filter(
            (pl.col(start) <= b) & (pl.col(end).is_null() | (pl.col(end) > b)) & _child_on("day")
        )
        return on["person_id"].n_unique()
    if name in ("eh_referrals", "eh_step_down"):
        e = _eh(zb).filter(_in("referral_date", a, b) & _child_on("referral_date"))
        if name == "eh_step_down":
            e = e.filter(pl.col("stepped_down_from_csc") == "Y")
        return e.height
    if name in ("eh_closures", "eh_step_up"):
        e = _eh(zb).filter(_in("closure_date", a, b) & _child_on("closure_date"))
        if name == "eh_step_up":
            e = e.filter(pl.col("closure_reason") == "STEP_UP_CSC")
        return e.height
    if name == "whole_family_assessments":
        return _episodes(zb).filter(_in("assessment_date", a, b)).height
    if name == "sf_families_worked_with":
        return _episodes(zb).filter(_in("referral_date", a, b)).height
    if name == "eh_family_rereferrals":
        ep = _episodes(zb).with_columns(
            pl.col("closure_date").shift().over("family_id").alias("prev_close")
        )
        gap = (pl.col("referral_date") - pl.col("prev_close")).dt.total_days()
        return ep.filter(_in("referral_date", a, b) & (gap <= 365)).height
    if name == "sf_needs_at_entry":
        ep = _episodes(zb).filter(_in("referral_date", a, b) & pl.col("needs").is_not_null())
        return int(
            ep["needs"]
            .str.split(";")
            .list.eval(pl.element().filter(pl.element() != ""))
            .list.len()
            .sum()
        )
    if name in ("sf_families_closed", "sf_significant_sustained_progress"):
        prog = _progress(zb).filter(_in("closure_date", SF_START, SF_END))
        if name == "sf_significant_sustained_progress":
            prog = prog.filter(pl.col("progress"))
        return prog.height
    if name.startswith(("lac_", "adoptions", "care_leavers")):
        return _lac_headline(name, zb)
    if name.startswith("sf_rule_") or name in ("sf_claim_reviews", "sf_claims"):
        review = _claim_review(zb).filter(_in("review_date", a, b))
        if name == "sf_claims":
            review = review.filter(pl.col("claim"))
        elif name.startswith("sf_rule_"):
            review = review.filter(pl.col(name.removeprefix("sf_rule_")))
        return review.height
    if name in ("sf_needs_reviewed", "sf_needs_sustained"):
        reviewed = _claim_review(zb).filter(_in("review_date", a, b)).select("episode_id")
        needs = _need_results(zb).join(reviewed, on="episode_id").unique(["episode_id", "need"])
        if name == "sf_needs_sustained":
            needs = needs.filter(pl.col("bad").is_null())
        return needs.height
    raise AssertionError(f"no independent route for {name}: write one")


def _lac_headline(name: str, zb: ZoneBFrames) -> int:
    """Looked-after children from zone B's SSDA903 tables, written from DfE's definitions."""
    a, b = FY_START, FY_END
    eps = _events(zb, "ssda903_episodes")
    if name in ("lac_at_31_march", "lac_31_march_count", "lac_3_placements"):
        year = eps.filter(pl.col("collection_year") == b.year)
        on = year.filter(
            (pl.col("decom") <= b) & (pl.col("dec").is_null() | (pl.col("dec") > b))
        ).with_columns(pl.lit(b).alias("d"))
        on = on.filter(_child_on("d"))
        if name == "lac_3_placements":
            counted = {}
            for pid, rows in year.sort("decom").group_by("person_id"):
                rne = rows["rne"].to_list()
                counted[pid[0]] = sum(1 for r in rne if r != "L") + (1 if rne[0] == "L" else 0)
            on = on.filter(pl.col("person_id").map_elements(lambda p: counted[p] >= 3, pl.Boolean))
        return on["person_id"].n_unique()
    if name == "lac_started":
        s = eps.filter(pl.col("rne") == "S").unique(["person_id", "decom"])
        return s.filter(_in("decom", a, b) & _child_on("decom")).height
    if name in ("lac_ceased", "adoptions"):
        codes = ["E11", "E12"] if name == "adoptions" else None
        c = eps.filter(pl.col("rec").is_not_null() & (pl.col("rec") != "X1"))
        if codes:
            c = c.filter(pl.col("rec").is_in(codes))
        return c.unique(["person_id", "dec"]).filter(_in("dec", a, b) & _child_on("dec")).height
    if name in ("lac_missing_incidents", "lac_went_missing"):
        m = _events(zb, "ssda903_missing").filter(pl.col("missing") == "M")
        m = m.unique(["person_id", "mis_start"]).filter(_in("mis_start", a, b))
        if name == "lac_missing_incidents":
            return m.filter(_child_on("mis_start")).height
        first = m.sort("mis_start").unique("person_id", keep="first")
        return first.filter(_child_on("mis_start")).height
    oc3 = _events(zb, "ssda903_oc3").filter(pl.col("collection_year") == b.year)
    born_y = pl.col("bm").str.slice(0, 4).cast(pl.Int32)
    born_m = pl.col("bm").str.slice(5, 2).cast(pl.Int32)
    birthday_year = pl.when(born_m >= 4).then(a.year).otherwise(b.year)
    oc3 = oc3.filter((birthday_year - born_y).is_between(19, 21)).unique("person_id")
    if name == "care_leavers_eet":
        oc3 = oc3.filter(pl.col("activ").is_in(["F1", "P1", "F2", "P2", "F4", "P4", "F5", "P5"]))
    if name == "care_leavers_suitable_accommodation":
        oc3 = oc3.filter(pl.col("accom").str.slice(1, 1) == "1")
    return oc3.height


def _fy(name: str) -> str:
    return SF_FY if MEASURES[name].meta.complete_after_days else FY


@pytest.mark.parametrize("name", list(MEASURES))
def test_headline_value_matches_an_independent_route(county, name):
    frame = county["frames"][name]
    derived = frame.filter(pl.col("financial_year") == _fy(name)).height
    expected = headline(name, county)
    assert derived == expected, f"{name}: derive {derived}, independent route {expected}"


def test_the_headlines_are_not_trivially_small(county_20k_published):
    """The comparisons above mean something only if the county has events to count. Read
    on the session's 20,000-person county: at 8,000 people rare measures are often zero by
    chance."""
    county = county_20k_published
    small = {n: headline(n, county) for n in MEASURES}
    # Measured at 20,000 people (about 4,800 children) on 13 seeds (1-12, 42), in the
    # latest year: adoptions 0.54 on average (England: 2.5 per 10,000 children a year;
    # tests/test_returns.py counts them on a hand-made return) and plans that ended after
    # two years or more 0.69, zero on 8 and 7 of the 13 seeds: they alone are exempt. Next
    # rarest: three or more placements 2.2 and family re-referrals 2.8 (zero on 2 and 1
    # seeds), step-downs 6.9 (zero on 1): so with these two exemptions 4 of the 13 seeds
    # would fail here; the session's seed 7 has every other measure above zero.
    rare = {"cp_plans_ended_2_years_plus", "adoptions"}
    assert [n for n, v in small.items() if n not in rare and v <= 0] == [], small
    assert small["child_population"] > 4000


# --- published categories ----------------------------------------------------------------


@pytest.fixture(scope="module")
def cubes(county) -> CubeSet:
    cubes = build_cubes(county["frames"], SECRET)
    meta = {n: measure_meta(n) for n in county["frames"]}
    return CubeSet(cubes, meta, "test", county["as_at"])


def _geography(raw: Path) -> dict[str, set[str]]:
    lookup = pl.read_csv(raw / "reference" / "postcode_lookup.csv", infer_schema=False)
    return {d: set(lookup[d].to_list()) | {"Not known"} for d in ("locality", "ward")}


@pytest.mark.parametrize("name", list(MEASURES))
def test_every_released_category_is_documented(county, cubes, name):
    geo = _geography(county["raw"])
    start = coverage_start(county["zb"], "social_care")
    for dim in MEASURES[name].meta.breakdowns:
        table = tabulate(cubes, name, by=(dim,), policy=POLICY, ptable=None if False else _PT)
        values = table.data[dim].to_list()
        if dim in PUBLISHED_LEVELS:
            documented = PUBLISHED_LEVELS[dim]
            assert set(values) <= set(documented), (name, dim, set(values) - set(documented))
            # Rows come in the documented order.
            assert values == [v for v in documented if v in values], (name, dim, values)
        elif dim in geo:
            assert set(values) <= geo[dim], (name, dim, set(values) - geo[dim])
        elif dim in TIME_DIMENSIONS:
            for v in values:
                assert FORMATS[dim].match(v), (name, dim, v)
                first, last = period_bounds(dim, v)  # type: ignore[misc]
                # Nothing before the sources' coverage start, nothing after the data date.
                assert last >= start and first <= county["as_at"], (name, dim, v)
        else:
            raise AssertionError(f"{name}: no documented list for {dim!r}")


_PT = None


@pytest.fixture(autouse=True, scope="module")
def _ptable():
    from anonymise import cellkey

    global _PT
    _PT = cellkey.ptable_for(POLICY.max_noise, POLICY.variance, SECRET)
    yield


def test_ethnicity_is_published_as_the_six_major_groups_for_every_person_measure(cubes):
    person = [n for n, m in MEASURES.items() if "ethnicity" in m.meta.breakdowns]
    assert len(person) >= 14
    for name in person:
        table = tabulate(cubes, name, by=("ethnicity",), policy=POLICY, ptable=_PT)
        assert set(table.data["ethnicity"]) <= set(PUBLISHED_LEVELS["ethnicity"]), name


def test_the_person_index_wins_over_an_event_tables_own_ethnicity():
    persons = pl.DataFrame(
        {
            "person_id": ["p1", "p2"],
            "birth_month": ["2015-01", "2016-06"],
            "sex": ["F", "M"],
            "ethnicity": ["CHNE", "WBRI"],
            "locality": ["A", None],
            "ward": ["W", None],
        }
    )
    events = pl.DataFrame(
        {
            "person_id": ["p1", "p2"],
            "ethnicity": ["WROM", "BAFR"],  # the event table's own (detailed) copy
            "referral_date": [date(2025, 5, 1), date(2025, 6, 1)],
        }
    )
    out = with_person_dims(events, persons, "referral_date").sort("person_id")
    assert out["ethnicity"].to_list() == ["Asian", "White"]
    assert out["sex"].to_list() == ["Female", "Male"]
    assert out["locality"].to_list() == ["A", "Not known"]
    assert out["quarter"].to_list() == ["2025/26 Q1", "2025/26 Q1"]


# --- children, working days, coverage, citations ------------------------------------------


def test_adults_in_family_episodes_are_not_counted_as_children(county):
    zb, frames = county["zb"], county["frames"]
    people = _people(zb)
    eh = _eh(zb).filter(pl.col("referral_date") >= coverage_start(zb, "early_help"))
    adults = eh.filter(~_child_on("referral_date")).height
    assert adults > 0, "the county has adults in Early Help episodes, as a real one does"
    for name in (
        "eh_referrals",
        "eh_closures",
        "contacts",
        "cin_referrals",
        "cp_plans_at_31_march",
    ):
        assert "18+" not in frames[name]["age_band"].to_list(), name
    assert people.height > 0


def test_working_days_skip_weekends_and_england_and_wales_bank_holidays():
    df = pl.DataFrame(
        {
            "start": [date(2023, 12, 22), date(2022, 5, 30), date(2024, 1, 8)],
            "end": [date(2024, 1, 2), date(2022, 6, 6), date(2024, 1, 8)],
        }
    )
    got = df.select(working_days(pl.col("start"), pl.col("end"), years=(2022, 2024)))
    # 22 Dec 2023 (Fri) to 2 Jan 2024: 25, 26 Dec and 1 Jan are bank holidays -> 3 days
    # (27, 28, 29 Dec) + 2 Jan = 4. Spring 2022: 2 and 3 June (Jubilee) -> 3 days.
    assert got.to_series().to_list() == [4, 3, 0]


def test_45_working_days_counts_bank_holidays_as_days_off(county):
    """An assessment that took 45 weekdays but crossed a bank holiday is within 45 working
    days: the derived count is at least the weekday-only count."""
    zb = county["zb"]
    r = _referrals(zb).filter(
        pl.col("assessment_start").is_not_null() & pl.col("assessment_authorised").is_not_null()
    )
    s = r["assessment_start"].to_numpy().astype("datetime64[D]")
    e = r["assessment_authorised"].to_numpy().astype("datetime64[D]")
    weekdays_only = np.busday_count(s, e)
    with_holidays = np.busday_count(s, e, holidays=_bank_holidays())
    assert (with_holidays <= weekdays_only).all()
    assert (with_holidays < weekdays_only).any(), "some assessments span a bank holiday"


def test_no_period_before_a_sources_coverage_start(county):
    zb, frames = county["zb"], county["frames"]
    assert coverage_start(zb, "social_care") == date(2021, 4, 1)  # declared in extract.json
    for name, frame in frames.items():
        if "month" in frame.columns and frame.height:
            assert frame["month"].min() >= "2021-04", name
        if frame.height:  # a rare event may not have happened at all (adoptions)
            assert frame["financial_year"].min() >= "2021/22", name


def test_coverage_is_inferred_when_not_declared(county):
    """Without a manifest: the first 1 April after the source's volume settles, so cases
    referred long before the extract began do not make a thin first year."""
    zb = county["zb"]
    bare = ZoneBFrames(zb.persons, zb.events, zb.as_at, Reference(population=None))
    inferred = coverage_start(bare, "social_care")
    assert inferred.month == 4 and inferred.day == 1
    assert date(2021, 4, 1) <= inferred <= date(2022, 4, 1)
    oldest = zb.ev("social_care")["referral_date"].min()
    assert oldest < inferred, "the extract holds open cases referred before its coverage"


def test_every_measure_cites_the_guidance_it_follows():
    sources = ("DfE", "Working together", "Supporting Families", "ONS", "Children Act")
    for name, m in MEASURES.items():
        text = " ".join((m.meta.definition, *m.meta.footnotes))
        assert any(s in text for s in sources), name
