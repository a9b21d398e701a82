"""The research extract catalogue: every variable a researcher may ask for, assessed.

A data dictionary with definitions and types, and for each variable the two facts
that decide how it may leave:

- its **disclosure treatment** (`Treatment`): the base step every release goes
  through and the hierarchy above it (anonymise/hierarchies.py). Dates become
  quarters and years, counts are banded and top-coded, decimals are banded, and
  free text is never released: coded lists go out as the set of known codes or
  as how many there are. Nothing is released "as recorded" by default.
- **who outside the council could know it** (`known_by`). A school knows a
  child's absence and exclusions, a referrer knows the month of the referral,
  the police know incidents. Anything someone outside could know is a
  quasi-identifier: it is generalised and suppressed with age, sex, ethnic group
  and area until k-anonymity holds.

Variables nobody outside could know are attributes; the sensitive ones among
them may be named for l-diversity. Person and family identifiers are always
re-keyed per project (`ID_DEFINITIONS`); `family_id` is released only to a
project approved for family-level analysis.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class VarRole(StrEnum):
    QUASI_IDENTIFIER = "quasi_identifier"
    SENSITIVE = "sensitive"  # may be named as the l-diversity sensitive attribute
    ATTRIBUTE = "attribute"


class Treatment(StrEnum):
    """How a variable is released. Each names a base step and a hierarchy above it."""

    AGE = "age"
    CODE = "code"
    ETHNICITY = "ethnicity"
    AREA = "area"
    COUNT = "count"
    PERCENT = "percent"
    QUARTER = "quarter"
    CODE_SET = "code_set"

    @property
    def description(self) -> str:
        return TREATMENTS[self]


TREATMENTS: dict[Treatment, str] = {
    Treatment.AGE: "whole years; may be generalised to 5-year band, broad band or withheld",
    Treatment.CODE: "the recorded code; may be withheld",
    Treatment.ETHNICITY: "DfE code; may be generalised to major group or withheld",
    Treatment.AREA: "LSOA; may be generalised to ward, locality, county or withheld",
    Treatment.COUNT: "banded 0, 1, 2, 3-5, 6-10, 11+ (top-coded); may be coarsened to 0 / 1-2 / 3+, none or any, or withheld",
    Treatment.PERCENT: "banded 0-<5%, 5-<10%, 10-<20%, 20-<50%, 50%+; may be coarsened to under or over 10%, or withheld",
    Treatment.QUARTER: "calendar quarter of the date (never the day or month); may be coarsened to year or withheld",
    Treatment.CODE_SET: "the set of known codes (never free text; anything else is 'other'); may be coarsened to how many codes, or withheld",
}


@dataclass(frozen=True)
class Variable:
    name: str
    title: str
    definition: str
    dtype: str  # integer, code, flag, month, decimal, codes
    treatment: Treatment
    known_by: tuple[str, ...] = ()  # who outside the council could know it
    sensitive: bool = False

    @property
    def role(self) -> VarRole:
        if self.known_by:
            return VarRole.QUASI_IDENTIFIER
        return VarRole.SENSITIVE if self.sensitive else VarRole.ATTRIBUTE

    @property
    def externally_knowable(self) -> bool:
        return bool(self.known_by)


T = Treatment
ANYONE = ("anyone who knows the person: public registers, social media",)
ADDRESS = ("anyone who knows the address: electoral register, neighbours",)
SCHOOL = ("the child's school",)
POLICE = ("the police",)
REFERRER = ("the referrer: school, health visitor, GP or police",)


def _v(
    name: str, title: str, dtype: str, treatment: Treatment, definition: str,
    known_by: tuple[str, ...] = (), *, sensitive: bool = False,
) -> Variable:  # fmt: skip
    return Variable(name, title, definition, dtype, treatment, known_by, sensitive)


CATALOGUE: dict[str, Variable] = {
    v.name: v
    for v in (
        _v("age", "Age", "integer", T.AGE, "Age in whole years at the data as-at date.", ANYONE),
        _v("sex", "Sex", "code", T.CODE, "Recorded sex: M, F or U (not known).", ANYONE),
        _v("ethnicity", "Ethnic group", "code", T.ETHNICITY, "DfE ethnicity code (most recent recorded).", ANYONE),
        _v("lsoa", "Area (LSOA)", "code", T.AREA, "Lower layer super output area of the latest known address; generalises to ward, locality, county.", ADDRESS),
        _v("eh_episodes", "Early Help episodes", "integer", T.COUNT, "Early Help episodes the person was part of.", ("partners in the Team Around the Family: school, health visitor",)),
        _v("first_eh_referral_month", "First Early Help referral", "month", T.QUARTER, "Quarter of the first Early Help referral (YYYY-Qn); 'none' if never referred.", REFERRER),
        _v("eh_needs_latest", "Needs at latest Early Help assessment", "codes", T.CODE_SET, "Supporting Families headline needs identified at the latest Early Help episode, as codes separated by ';'.", sensitive=True),
        _v("contacts", "Front Door contacts", "integer", T.COUNT, "Contacts to the Front Door about the person.", ("whoever made the contact: school, police, health, neighbour",)),
        _v("csc_referrals", "Social care referrals", "integer", T.COUNT, "Referrals to children's social care.", REFERRER),
        _v("assessments", "Social care assessments", "integer", T.COUNT, "Social care assessments completed."),
        _v("s47_enquiries", "Section 47 enquiries", "integer", T.COUNT, "Section 47 enquiries started.", ("the police (joint strategy discussions)",), sensitive=True),
        _v("cp_plan_ever", "Ever on a child protection plan", "flag", T.CODE, "Y if the child has been on a child protection plan in the period.", sensitive=True),
        _v("looked_after_ever", "Ever looked after", "flag", T.CODE, "Y if the child has been looked after in the period.", sensitive=True),
        _v("cin_category_latest", "Latest CIN category", "code", T.CODE, "Primary need code (N1-N9) at the latest social care referral.", sensitive=True),
        _v("fsm_ever", "Ever eligible for free school meals", "flag", T.CODE, "Y if recorded as FSM-eligible in any school census.", SCHOOL),
        _v("sen_latest", "SEN provision (latest)", "code", T.CODE, "N none, K SEN support, E EHC plan, at the latest census.", SCHOOL, sensitive=True),
        _v("absence_pct_latest", "Absence % (latest year)", "decimal", T.PERCENT, "Sessions missed as a share of sessions possible in the latest school year, banded.", SCHOOL),
        _v("suspensions_total", "Suspensions", "integer", T.COUNT, "Suspensions across all school years.", SCHOOL),
        _v("permanent_exclusion_ever", "Ever permanently excluded", "flag", T.CODE, "Y if permanently excluded in any year.", SCHOOL, sensitive=True),
        _v("funded_2yo_ever", "Took a funded 2-year-old place", "flag", T.CODE, "Y if the child took up a funded early education place at two.", ("the early years provider",)),
        _v("police_incidents", "Police incidents", "integer", T.COUNT, "Police incidents the person was recorded in (any role).", POLICE),
        _v("domestic_abuse_incidents", "Domestic abuse incidents", "integer", T.COUNT, "Domestic abuse incidents the person was recorded in (any role).", POLICE, sensitive=True),
        _v("youth_offences", "Youth offences", "integer", T.COUNT, "Offences with a youth justice outcome.", ("the police and the youth court",), sensitive=True),
        _v("neet_ever", "Ever NEET", "flag", T.CODE, "Y if ever recorded not in education, employment or training at 16-17.", ("schools, colleges and careers services",)),
        _v("benefit_spells", "Out-of-work benefit spells", "integer", T.COUNT, "DWP out-of-work benefit spells.", ("the Department for Work and Pensions",)),
        _v("adult_care_services", "Adult social care services", "integer", T.COUNT, "Adult social care services received.", ("care providers",)),
        _v("housing_cases", "Housing cases", "integer", T.COUNT, "Homelessness duty, rent arrears or temporary accommodation cases.", ("landlords and housing associations",)),
        _v("mental_health_contacts", "Mental health contacts", "integer", T.COUNT, "Contacts with mental health services.", ("NHS mental health services",), sensitive=True),
        _v("substance_misuse_contacts", "Substance misuse contacts", "integer", T.COUNT, "Contacts with substance misuse services.", ("the treatment provider",), sensitive=True),
    )
}  # fmt: skip

ALWAYS = ("person_id",)
FAMILY_ID = "family_id"
ID_DEFINITIONS = {
    "person_id": "Pseudonym of the person, keyed for this project only: it cannot be joined to another project's extract.",
    "family_id": "Pseudonym of the family, keyed for this project only; released only to projects approved for family-level analysis, and blank where the family's make-up would single it out.",
}  # fmt: skip
# What a researcher may name: the catalogue's variables and the family link.
REQUESTABLE = (*CATALOGUE, FAMILY_ID)


def variable(name: str) -> Variable:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise KeyError(
            f"unknown variable {name!r}; the catalogue has: {', '.join(CATALOGUE)}"
        ) from None
