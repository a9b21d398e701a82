"""The research extract catalogue: every variable a researcher may ask for.

A data dictionary with definitions and types, and the privacy role of each
variable: quasi-identifiers (what an intruder could know from public sources or
social media: age, sex, ethnic group, where someone lives) are generalised and
suppressed until k-anonymity holds; sensitive candidates may be protected with
l-diversity; month variables are already coarsened from dates. Person and
family identifiers are always present and always re-keyed per project.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class VarRole(StrEnum):
    QUASI_IDENTIFIER = "quasi_identifier"
    SENSITIVE = "sensitive"  # may be named as the l-diversity sensitive attribute
    ATTRIBUTE = "attribute"


@dataclass(frozen=True)
class Variable:
    name: str
    title: str
    definition: str
    dtype: str  # integer, code, flag, month, decimal, text
    role: VarRole = VarRole.ATTRIBUTE


def _v(
    name: str, title: str, dtype: str, definition: str, role: VarRole = VarRole.ATTRIBUTE
) -> Variable:
    return Variable(name, title, definition, dtype, role)


QI = VarRole.QUASI_IDENTIFIER
SENS = VarRole.SENSITIVE

CATALOGUE: dict[str, Variable] = {
    v.name: v
    for v in (
        _v("age", "Age", "integer", "Age in whole years at the data as-at date.", QI),
        _v("sex", "Sex", "code", "Recorded sex: M, F or U (not known).", QI),
        _v("ethnicity", "Ethnic group", "code", "DfE ethnicity code (most recent recorded).", QI),
        _v("lsoa", "Area (LSOA)", "code", "Lower layer super output area of the latest known address; generalises to ward, locality, county.", QI),
        _v("eh_episodes", "Early Help episodes", "integer", "Early Help episodes the person was part of (top-coded at 20)."),
        _v("first_eh_referral_month", "First Early Help referral", "month", "Month of the first Early Help referral (YYYY-MM)."),
        _v("eh_needs_latest", "Needs at latest Early Help assessment", "text", "Supporting Families headline needs identified at the latest Early Help episode, ';'-separated.", SENS),
        _v("contacts", "Front Door contacts", "integer", "Contacts to the Front Door about the person."),
        _v("csc_referrals", "Social care referrals", "integer", "Referrals to children's social care."),
        _v("assessments", "Social care assessments", "integer", "Social care assessments completed."),
        _v("s47_enquiries", "Section 47 enquiries", "integer", "Section 47 enquiries started."),
        _v("cp_plan_ever", "Ever on a child protection plan", "flag", "Y if the child has been on a child protection plan in the period.", SENS),
        _v("looked_after_ever", "Ever looked after", "flag", "Y if the child has been looked after in the period.", SENS),
        _v("cin_category_latest", "Latest CIN category", "code", "Primary need code (N1-N9) at the latest social care referral.", SENS),
        _v("fsm_ever", "Ever eligible for free school meals", "flag", "Y if recorded as FSM-eligible in any school census."),
        _v("sen_latest", "SEN provision (latest)", "code", "N none, K SEN support, E EHC plan, at the latest census.", SENS),
        _v("absence_pct_latest", "Absence % (latest year)", "decimal", "Sessions missed as a share of sessions possible in the latest school year."),
        _v("suspensions_total", "Suspensions", "integer", "Suspensions across all school years (top-coded at 20)."),
        _v("permanent_exclusion_ever", "Ever permanently excluded", "flag", "Y if permanently excluded in any year.", SENS),
        _v("funded_2yo_ever", "Took a funded 2-year-old place", "flag", "Y if the child took up a funded early education place at two."),
        _v("police_incidents", "Police incidents", "integer", "Police incidents the person was recorded in (any role)."),
        _v("domestic_abuse_incidents", "Domestic abuse incidents", "integer", "Domestic abuse incidents the person was recorded in (any role).", SENS),
        _v("youth_offences", "Youth offences", "integer", "Offences with a youth justice outcome.", SENS),
        _v("neet_ever", "Ever NEET", "flag", "Y if ever recorded not in education, employment or training at 16-17."),
        _v("benefit_spells", "Out-of-work benefit spells", "integer", "DWP out-of-work benefit spells."),
        _v("adult_care_services", "Adult social care services", "integer", "Adult social care services received."),
        _v("housing_cases", "Housing cases", "integer", "Homelessness duty, rent arrears or temporary accommodation cases."),
        _v("mental_health_contacts", "Mental health contacts", "integer", "Contacts with mental health services.", SENS),
        _v("substance_misuse_contacts", "Substance misuse contacts", "integer", "Contacts with substance misuse services.", SENS),
    )
}  # fmt: skip

ALWAYS = ("person_id", "family_id")
ID_DEFINITIONS = {
    "person_id": "Pseudonym of the person, keyed for this project only: it cannot be joined to another project's extract.",
    "family_id": "Pseudonym of the family, keyed for this project only.",
}  # fmt: skip


def variable(name: str) -> Variable:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise KeyError(
            f"unknown variable {name!r}; the catalogue has: {', '.join(CATALOGUE)}"
        ) from None
