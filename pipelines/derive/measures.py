"""The measure registry: every published measure with its title, definition, unit,
allowed breakdowns, denominator, footnotes and the function that builds it, in
publication order. Definitions cite the national guidance they follow.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from pipelines.claims import CLAIM_RULES
from pipelines.derive.children_in_need import (
    SNAPSHOT_DIMS,
    assessments_completed,
    assessments_within_45_days,
    child_population,
    cin_at_31_march,
    cin_referrals,
    cin_rereferrals,
    contacts,
    cp_plans_at_31_march,
    cp_plans_ended,
    cp_plans_ended_after_2_years,
    cp_plans_second_or_subsequent,
    cp_plans_started,
    s47_enquiries,
)
from pipelines.derive.common import (
    GEO,
    PERSON,
    SUSTAIN_DAYS,
    TIME,
    Measure,
    ZoneBFrames,
    _select,
    _unit,
    time_dims,
)
from pipelines.derive.early_help import (
    eh_closures,
    eh_family_rereferrals,
    eh_referrals,
    eh_step_down,
    eh_step_up,
    sf_families_closed_judgeable,
    sf_families_with_progress,
    sf_families_worked_with,
    sf_needs_at_entry,
    whole_family_assessments,
)
from pipelines.derive.looked_after import (
    CARE_LEAVER_DIMS,
    adoptions,
    care_leavers,
    care_leavers_eet,
    care_leavers_suitable_accommodation,
    lac_3_placements,
    lac_at_31_march,
    lac_ceased,
    lac_missing_incidents,
    lac_started,
    lac_went_missing,
)
from pipelines.derive.sf_claims import (
    _rule_met,
    sf_claim_reviews,
    sf_claims,
    sf_needs_reviewed,
    sf_needs_sustained,
)
from registry.measures import Denominator, MeasureMeta

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
