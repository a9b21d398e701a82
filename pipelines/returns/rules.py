"""DfE's validation rules for the CIN census and the SSDA903, as implemented here.

A representative subset: the structural and schema checks, and the most common content
rules, each with DfE's rule code and message as Data to Insight's open validators
(csc-validator-be-cin, csc-validator-be-903) give them. The full list, and what is not
implemented, is in docs/returns.md. A rule is a polars expression that is True on the
rows that fail it, over a frame of the table's raw text (DfE's field names), its dates
parsed (`<Field>@date`) and a few context columns the readers add (`@dup`, `@in_header`,
`@header_dob`, `@header_sex`).

What a failure does depends on its kind:
- `error` (DfE's errors): the row is quarantined, the reason `dfe:<code>:<field>`;
- `query` (DfE's queries, codes ending in Q): the row is kept and the query noted in its
  data-quality flags;
- `identifier` (a malformed UPN): the identifier is blanked and flagged and the row kept,
  as ingest does for every other source's identifiers (the child still links on the LA
  child ID).
Checks with no DfE code (a date that is not a date, a required item missing) have
reasons `schema:<problem>:<field>`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import holidays
import polars as pl

from pipelines.returns import years as Y
from pipelines.returns.context import PLACEMENT_FIELDS
from pipelines.returns.years import YearRules

Check = Callable[[YearRules], pl.Expr]


@dataclass(frozen=True)
class Rule:
    code: str  # DfE's rule code; "" for a schema check DfE's rules do not number
    tables: tuple[str, ...]  # DfE table or module names ("Child": every CIN table)
    fields: tuple[str, ...]
    message: str
    check: Check
    kind: str = "error"  # error | query | identifier
    years: tuple[int, ...] | None = None  # None: every implemented year
    problem: str = ""  # schema checks: what is wrong

    @property
    def reason(self) -> str:
        if self.code:
            return f"dfe:{self.code}:{self.fields[0]}"
        return f"schema:{self.problem}:{self.fields[0]}"

    def applies(self, table: str, year: int) -> bool:
        return (table in self.tables or "Child" in self.tables and table in CIN_TABLES) and (
            self.years is None or year in self.years
        )


CIN_TABLES = ("CINdetails", "Assessments", "CINPlanDates", "Section47", "ChildProtectionPlans")


def c(name: str) -> pl.Expr:
    return pl.col(name)


def d(name: str) -> pl.Expr:
    return pl.col(f"{name}@date")


def present(name: str) -> pl.Expr:
    return c(name).is_not_null()


def absent(name: str) -> pl.Expr:
    return c(name).is_null()


def bad_date(name: str) -> pl.Expr:
    return present(name) & d(name).is_null()


def not_in(name: str, codes: tuple[str, ...]) -> pl.Expr:
    return present(name) & ~c(name).is_in(list(codes))


def outside_year(name: str, y: YearRules) -> pl.Expr:
    return d(name).is_not_null() & ((d(name) < pl.lit(y.start)) | (d(name) > pl.lit(y.end)))


def before(a: str, b: str) -> pl.Expr:
    """Date `a` is before date `b` (both known)."""
    return d(a).is_not_null() & d(b).is_not_null() & (d(a) < d(b))


def _nfa_false() -> pl.Expr:
    return c("ReferralNFA").is_in(["false", "FALSE", "0"])


def _nfa_true(name: str) -> pl.Expr:
    """A ReferralNFA (or ICPCnotRequired) flag that is set."""
    return c(name).is_in(["true", "TRUE", "1"])


def _open_referral() -> pl.Expr:
    """A CINdetails with no closure date that is not a referral with no further action."""
    return absent("CINclosureDate") & _nfa_false()


def _open_s47() -> pl.Expr:
    """A section 47 enquiry with no initial conference that was not marked not required."""
    return absent("DateOfInitialCPC") & ~_nfa_true("ICPCnotRequired").fill_null(False)


def _closed_before(*fields: str) -> pl.Expr:
    """The referral's closure date (`@closure`) is before any of `fields` (rule 8565)."""
    return pl.any_horizontal(before("@closure", f) for f in fields)


@lru_cache(maxsize=8)
def _bank_holidays(first_year: int, last_year: int) -> list[date]:
    # Building the calendar costs about 0.1 s a call: once per pair of years.
    days = holidays.country_holidays("GB", subdiv="ENG", years=range(first_year, last_year + 1))
    return sorted(days)


@lru_cache(maxsize=32)
def working_days_before(day: date, n: int) -> date:
    """`day` less `n` working days as DfE's rules count them: weekends and England and
    Wales bank holidays (the offline `holidays` package, as pipelines.derive uses) are
    skipped, and `day` itself counts as the first, so the result is `n - 1` working days
    before `day`, or before the next working day when `day` is not one (Data to Insight's
    `england_working_days`: pandas' CustomBusinessDay(n - 1) subtracted from `day`)."""
    bank = _bank_holidays(day.year - 1, day.year)
    out = pl.Series([day]).dt.add_business_days(-(n - 1), holidays=bank, roll="forward")
    result: date = out[0]
    return result


def _upn_body_ok() -> pl.Expr:
    return c("UPN").str.slice(4, 8).str.contains(r"^\d{8}$")


def _upn_valid() -> pl.Expr:
    from pipelines.identifiers import is_valid_upn

    return c("UPN").map_elements(is_valid_upn, return_dtype=pl.Boolean)


def _codes_in_list(name: str, codes: tuple[str, ...]) -> pl.Expr:
    """A ';'-separated list with any code outside `codes`."""
    return (
        present(name)
        & c(name).str.split(";").list.eval(pl.element().is_in(list(codes)).not_()).list.any()
    )


def _bad_date_check(f: str) -> Check:
    return lambda y: bad_date(f)


def _schema_dates(tables: tuple[str, ...], fields: tuple[str, ...]) -> list[Rule]:
    return [
        Rule("", tables, (f,), f"{f} is not a valid date", _bad_date_check(f), problem="bad_date")
        for f in fields
    ]


def _female(y: YearRules) -> str:
    return "2" if y.year <= 2024 else "F"


def _male(y: YearRules) -> str:
    return "1" if y.year <= 2024 else "M"


# ------------------------------------------------------------------------ CIN census ---

CIN_RULES: tuple[Rule, ...] = (
    *_schema_dates(("Child",), ("PersonBirthDate", "ExpectedPersonBirthDate", "PersonDeathDate")),
    Rule("8500", ("Child",), ("LAchildID",), "LA Child ID missing", lambda y: absent("LAchildID")),
    Rule("1570", ("Child",), ("LAchildID",), "LA Child ID must not be longer than 20 characters",
         lambda y: c("LAchildID").str.len_chars() > 20, years=(2025, 2026)),
    Rule("1580", ("Child",), ("LAchildID",),
         "LA Child ID must not contain any non-alphanumeric characters",
         lambda y: present("LAchildID") & ~c("LAchildID").str.contains(r"^[A-Za-z0-9]+$"),
         years=(2025, 2026)),
    Rule("8510", ("Child",), ("LAchildID",), "More than one child record with the same LA Child ID",
         lambda y: c("@dup")),
    Rule("4180", ("Child",), ("GenderCurrent",), "Gender is missing",
         lambda y: absent("Sex") | not_in("Sex", y.codes["Sex"]), years=(2022, 2023, 2024)),
    Rule("4180", ("Child",), ("Sex",), "Sex must be provided and equal M, F, or U",
         lambda y: absent("Sex") | not_in("Sex", y.codes["Sex"]), years=(2025, 2026)),
    Rule("4220", ("Child",), ("Ethnicity",), "Ethnicity is missing or invalid (see Ethnicity table)",
         lambda y: absent("Ethnicity") | not_in("Ethnicity", _ethnicity())),
    Rule("8520", ("Child",), ("PersonBirthDate",),
         "Date of Birth is after data collection period (must be on or before the end of the "
         "census period)", lambda y: d("PersonBirthDate") > pl.lit(y.end)),
    Rule("8525Q", ("Child",), ("PersonBirthDate",),
         "Either Date of Birth or Expected Date of Birth must be provided (but not both)",
         lambda y: present("PersonBirthDate") == present("ExpectedPersonBirthDate"),
         kind="query"),
    Rule("8540", ("Child",), ("Disabilities",),
         "Child's disability is missing or invalid (see Disability table)",
         lambda y: _codes_in_list("Disabilities", Y.DISABILITIES)),
    Rule("8790", ("Child",), ("Disabilities",),
         "Disability information includes both None and other values",
         lambda y: c("Disabilities").str.contains(r"(^|;)NONE(;|$)") & c("Disabilities").str.contains(";")),
    Rule("1540", ("Child",), ("UPN",), "UPN invalid (characters 5-12 not all numeric)",
         lambda y: present("UPN") & ~_upn_body_ok(), kind="identifier"),
    Rule("1510", ("Child",), ("UPN",), "UPN invalid (wrong check letter at character 1)",
         lambda y: present("UPN") & _upn_body_ok() & ~_upn_valid(), kind="identifier"),
    # CINdetails
    *_schema_dates(("CINdetails",), ("CINreferralDate", "CINclosureDate", "DateOfInitialCPC")),
    Rule("8600", ("CINdetails",), ("CINreferralDate",),
         "Child referral date missing or after data collection period",
         lambda y: absent("CINreferralDate") | (d("CINreferralDate") > pl.lit(y.end))),
    Rule("8866", ("CINdetails",), ("ReferralSource",), "Source of Referral is missing or an invalid code",
         lambda y: absent("ReferralSource") | not_in("ReferralSource", y.codes["ReferralSource"])),
    Rule("8650", ("CINdetails",), ("PrimaryNeedCode",),
         "Primary Need Code invalid (see Primary Need table in CIN census code set)",
         lambda y: not_in("PrimaryNeedCode", Y.PRIMARY_NEEDS)),
    Rule("8610", ("CINdetails",), ("PrimaryNeedCode",),
         "Primary Need code is missing for a referral which led to further action.",
         lambda y: absent("PrimaryNeedCode") & _nfa_false()),
    Rule("8640", ("CINdetails",), ("ReasonForClosure",),
         "CIN Reason for closure code invalid (see Reason for Closure table in CIN Census code set)",
         lambda y: not_in("ReasonForClosure", y.codes["ReasonForClosure"])),
    Rule("8620", ("CINdetails",), ("CINclosureDate",),
         "CIN Closure Date present and does not fall within the Census year",
         lambda y: outside_year("CINclosureDate", y)),
    Rule("8630", ("CINdetails",), ("CINclosureDate",),
         "CIN Closure Date is before CIN Referral Date for the same CIN episode",
         lambda y: before("CINclosureDate", "CINreferralDate")),
    Rule("8805", ("CINdetails",), ("ReasonForClosure",),
         "A CIN case cannot have a CIN closure date without a Reason for Closure",
         lambda y: present("CINclosureDate") & absent("ReasonForClosure")),
    Rule("8810", ("CINdetails",), ("CINclosureDate",),
         "A CIN case cannot have a Reason for Closure without a CIN Closure Date",
         lambda y: present("ReasonForClosure") & absent("CINclosureDate")),
    Rule("8568", ("CINdetails",), ("ReferralNFA",), "RNFA flag is missing or invalid",
         lambda y: absent("ReferralNFA") | not_in("ReferralNFA", Y.YES_NO)),
    # Assessments
    *_schema_dates(("Assessments",), ("AssessmentActualStartDate", "AssessmentInternalReviewDate",
                                      "AssessmentAuthorisationDate")),
    Rule("", ("Assessments",), ("AssessmentActualStartDate",), "Assessment start date missing",
         lambda y: absent("AssessmentActualStartDate"), problem="missing"),
    Rule("1103", ("Assessments",), ("AssessmentActualStartDate",),
         "The assessment start date cannot be before the referral date",
         lambda y: before("AssessmentActualStartDate", "CINreferralDate")),
    Rule("8608", ("Assessments",), ("AssessmentActualStartDate",),
         "Assessment Start Date cannot be later than its End Date",
         lambda y: before("AssessmentAuthorisationDate", "AssessmentActualStartDate")),
    Rule("8696", ("Assessments",), ("AssessmentAuthorisationDate",),
         "Assessment end date must fall within the census year",
         lambda y: outside_year("AssessmentAuthorisationDate", y)),
    Rule("8736", ("Assessments",), ("AssessmentActualStartDate",),
         "For an Assessment that has not been completed, the start date must fall within the "
         "census year", lambda y: absent("AssessmentAuthorisationDate")
         & outside_year("AssessmentActualStartDate", y)),
    # CINPlanDates
    *_schema_dates(("CINPlanDates",), ("CINPlanStartDate", "CINPlanEndDate")),
    Rule("4010", ("CINPlanDates",), ("CINPlanStartDate",),
         "CIN Plan start date is missing or out of data collection period",
         lambda y: absent("CINPlanStartDate") | (d("CINPlanStartDate") > pl.lit(y.end))),
    Rule("4011", ("CINPlanDates",), ("CINPlanEndDate",), "CIN Plan End Date earlier than Start Date",
         lambda y: before("CINPlanEndDate", "CINPlanStartDate")),
    Rule("4013", ("CINPlanDates",), ("CINPlanEndDate",), "CIN Plan end date must fall within the census year",
         lambda y: outside_year("CINPlanEndDate", y)),
    Rule("4015", ("CINPlanDates",), ("CINPlanStartDate",),
         "The CIN Plan start date cannot be before the referral date",
         lambda y: before("CINPlanStartDate", "CINreferralDate")),
    # Section47
    *_schema_dates(("Section47",), ("S47ActualStartDate", "InitialCPCtarget", "DateOfInitialCPC")),
    Rule("2889", ("Section47",), ("S47ActualStartDate",),
         "The S47 start date cannot be before the referral date.",
         lambda y: before("S47ActualStartDate", "CINreferralDate")),
    Rule("8615", ("Section47",), ("S47ActualStartDate",),
         "Section 47 Enquiry Start Date must be present and cannot be later than the date of the "
         "initial Child Protection Conference",
         lambda y: absent("S47ActualStartDate") | before("DateOfInitialCPC", "S47ActualStartDate")),
    Rule("8715", ("Section47",), ("DateOfInitialCPC",),
         "Date of Initial Child Protection Conference must fall within the census year",
         lambda y: outside_year("DateOfInitialCPC", y)),
    Rule("8875", ("Section47",), ("DateOfInitialCPC",),
         "The Date of Initial Child Protection Conference cannot be a weekend",
         lambda y: d("DateOfInitialCPC").dt.weekday() >= 6),
    # ChildProtectionPlans
    *_schema_dates(("ChildProtectionPlans",), ("CPPstartDate", "CPPendDate")),
    Rule("1105", ("ChildProtectionPlans",), ("CPPstartDate",),
         "The child protection plan start date cannot be before the referral date",
         lambda y: before("CPPstartDate", "CINreferralDate")),
    Rule("8720", ("ChildProtectionPlans",), ("CPPstartDate",),
         "Child Protection Plan Start Date missing or out of data collection period",
         lambda y: absent("CPPstartDate") | (d("CPPstartDate") > pl.lit(y.end))),
    Rule("8925", ("ChildProtectionPlans",), ("CPPendDate",),
         "Child Protection Plan End Date earlier than Start Date",
         lambda y: before("CPPendDate", "CPPstartDate")),
    Rule("8930", ("ChildProtectionPlans",), ("CPPendDate",),
         "Child Protection Plan End Date must fall within the census year",
         lambda y: outside_year("CPPendDate", y)),
    Rule("8840", ("ChildProtectionPlans",), ("CPPendDate",),
         "Child Protection Plan cannot start and end on the same day",
         lambda y: d("CPPendDate").is_not_null() & (d("CPPendDate") == d("CPPstartDate"))),
    Rule("8905", ("ChildProtectionPlans",), ("InitialCategoryOfAbuse",),
         "Initial Category of Abuse code missing or invalid (see Category of Abuse table in CIN "
         "Census code set)", lambda y: absent("InitialCategoryOfAbuse")
         | not_in("InitialCategoryOfAbuse", Y.ABUSE_CATEGORIES)),
    Rule("8910", ("ChildProtectionPlans",), ("LatestCategoryOfAbuse",),
         "Latest Category of Abuse code missing or invalid (see Category of Abuse table in CIN "
         "Census code set)", lambda y: absent("LatestCategoryOfAbuse")
         | not_in("LatestCategoryOfAbuse", Y.ABUSE_CATEGORIES)),
    Rule("8730", ("ChildProtectionPlans",), ("NumberOfPreviousCPP",),
         "Total Number of previous Child Protection Plans missing",
         lambda y: absent("NumberOfPreviousCPP")),
    Rule("", ("ChildProtectionPlans",), ("NumberOfPreviousCPP",),
         "Number of previous plans is not a whole number",
         lambda y: present("NumberOfPreviousCPP")
         & ~c("NumberOfPreviousCPP").str.contains(r"^\d+$"), problem="bad_int"),
    # --- Working-day rules (queries): England and Wales bank holidays, as DfE counts.
    Rule("8569Q", ("CINdetails",), ("ReferralNFA",),
         "A case with referral date before one working day prior to the collection start date "
         "must not be flagged as a no further action case",
         lambda y: (d("CINreferralDate") < pl.lit(working_days_before(y.start, 1)))
         & ~_nfa_false(), kind="query"),
    Rule("8670Q", ("Assessments",), ("AssessmentActualStartDate",),
         "Please check and either amend data or provide a reason: Assessment started more than "
         "45 working days before the end of the census year. However, there is no Assessment "
         "end date.", lambda y: absent("AssessmentAuthorisationDate")
         & (d("AssessmentActualStartDate") < pl.lit(working_days_before(y.end, 45))),
         kind="query"),
    Rule("8675Q", ("Section47",), ("S47ActualStartDate",),
         "Please check and either amend data or provide a reason: S47 Enquiry started more than "
         "15 working days before the end of the census year. However, there is no date of "
         "Initial Child Protection Conference.", lambda y: absent("DateOfInitialCPC")
         & c("ICPCnotRequired").is_in(["false", "0"])
         & (d("S47ActualStartDate") < pl.lit(working_days_before(y.end, 15))), kind="query"),
    # --- Rules across one child's referrals and one referral's modules.
    Rule("8820", ("CINdetails",), ("CINreferralDate",),
         "The dates on the CIN episodes for this child overlap", lambda y: c("@overlap")),
    Rule("8815", ("CINdetails",), ("CINclosureDate",),
         "More than one open CIN Details episode (a module with no CIN Closure Date) has been "
         "provided for this child and case is not a referral with no further action.",
         lambda y: _open_referral() & (_open_referral().sum().over("LAchildID") > 1)),
    Rule("8816", ("CINdetails",), ("CINreferralDate",),
         "An open CIN episode is shown and case is not a referral with no further action, but "
         "it is not the latest episode.", lambda y: _open_referral()
         & (d("CINreferralDate") < d("CINreferralDate").max().over("LAchildID"))),
    Rule("8565", ("CINdetails",), ("CINclosureDate",),
         "Activity shown after a case has been closed",
         lambda y: before("CINclosureDate", "DateOfInitialCPC")),
    Rule("8831", ("CINdetails",), ("DateOfInitialCPC",),
         "Activity is recorded against a case marked as a referral with no further action",
         lambda y: _nfa_true("ReferralNFA") & present("DateOfInitialCPC")),
    Rule("8896", ("Assessments",), ("AssessmentAuthorisationDate",),
         "Within one CINDetails group there are 2 or more open Assessments groups",
         lambda y: absent("AssessmentAuthorisationDate")
         & (absent("AssessmentAuthorisationDate").sum().over("@details") > 1)),
    Rule("8565", ("Assessments",), ("AssessmentActualStartDate",),
         "Activity shown after a case has been closed",
         lambda y: _closed_before("AssessmentActualStartDate", "AssessmentAuthorisationDate")),
    Rule("8831", ("Assessments",), ("AssessmentActualStartDate",),
         "Activity is recorded against a case marked as a referral with no further action",
         lambda y: _nfa_true("@nfa") & (present("AssessmentActualStartDate")
                                        | present("AssessmentAuthorisationDate"))),
    Rule("8867", ("Assessments",), ("AssessmentAuthorisationDate",),
         "CIN episode is shown as closed, however Assessment is not shown as completed",
         lambda y: present("@closure") & absent("AssessmentAuthorisationDate")),
    Rule("4014", ("CINPlanDates",), ("CINPlanStartDate",),
         "CIN Plan data contains overlapping dates", lambda y: c("@overlap")),
    Rule("4004", ("CINPlanDates",), ("CINPlanEndDate",),
         "This child is showing more than one open CIN Plan, i.e. with no End Date",
         lambda y: absent("CINPlanEndDate")
         & (absent("CINPlanEndDate").sum().over("LAchildID") > 1)),
    Rule("4001", ("CINPlanDates",), ("CINPlanEndDate",),
         "A CIN Plan cannot run concurrently with a Child Protection Plan",
         lambda y: absent("CINPlanEndDate") & c("@open_cpp")),
    Rule("4000", ("CINPlanDates",), ("CINPlanStartDate",),
         "CIN Plan details provided for a referral with no further action",
         lambda y: _nfa_true("@nfa")),
    Rule("8565", ("CINPlanDates",), ("CINPlanStartDate",),
         "Activity shown after a case has been closed",
         lambda y: _closed_before("CINPlanStartDate", "CINPlanEndDate")),
    Rule("8890", ("Section47",), ("S47ActualStartDate",),
         "A Section 47 enquiry is shown as starting when there is another Section 47 Enquiry "
         "ongoing", lambda y: c("@overlap")),
    Rule("8839", ("Section47",), ("DateOfInitialCPC",),
         "Within one CINDetails group there are 2 or more open S47 Assessments",
         lambda y: _open_s47() & (_open_s47().sum().over("@details") > 1)),
    Rule("8565", ("Section47",), ("S47ActualStartDate",),
         "Activity shown after a case has been closed",
         lambda y: _closed_before("S47ActualStartDate", "DateOfInitialCPC")),
    Rule("8831", ("Section47",), ("S47ActualStartDate",),
         "Activity is recorded against a case marked as a referral with no further action",
         lambda y: _nfa_true("@nfa") & (present("S47ActualStartDate")
                                        | present("DateOfInitialCPC"))),
    Rule("8868", ("Section47",), ("DateOfInitialCPC",),
         "CIN episode is shown as closed, however Section 47 enquiry is not shown as completed "
         "by ICPC date or ICPC not required flag", lambda y: present("@closure")
         & absent("DateOfInitialCPC") & ~_nfa_true("ICPCnotRequired")),
    Rule("8940", ("ChildProtectionPlans",), ("CPPstartDate",),
         "Child Protection Plan data contains overlapping dates", lambda y: c("@overlap")),
    Rule("8935", ("ChildProtectionPlans",), ("CPPendDate",),
         "This child is showing more than one open Child Protection plan, i.e. with no End Date",
         lambda y: absent("CPPendDate") & (absent("CPPendDate").sum().over("LAchildID") > 1)),
    Rule("8565", ("ChildProtectionPlans",), ("CPPendDate",),
         "Activity shown after a case has been closed",
         lambda y: _closed_before("CPPendDate")),
    Rule("8832", ("ChildProtectionPlans",), ("CPPstartDate",),
         "Child Protection details provided for a referral with no further action.",
         lambda y: _nfa_true("@nfa")),
)  # fmt: skip


def _ethnicity() -> tuple[str, ...]:
    from registry.codes import ETHNICITY

    return ETHNICITY


# ------------------------------------------------------------------------- SSDA903 ---


def _int(name: str, table: str) -> Rule:
    return Rule(f"INT{_INT_NOT_IN_HEADER[table]}", (table,), ("CHILD",),
                f"Internal Check: Child in {table} does not exist in Header.",
                lambda y: ~c("@in_header"))  # fmt: skip


_INT_NOT_IN_HEADER = {
    "AD1": "01", "PlacedAdoption": "02", "Episodes": "03", "Missing": "04", "OC2": "05",
    "OC3": "06", "PrevPerm": "07", "Reviews": "08", "UASC": "09",
}  # fmt: skip
_INT_DOB = {
    "AD1": "11", "PlacedAdoption": "12", "Missing": "13", "OC2": "14", "OC3": "15",
    "PrevPerm": "16", "Reviews": "17", "UASC": "18",
}  # fmt: skip
_INT_ONCE = {"AD1": "31", "Header": "32", "OC2": "33", "OC3": "34", "PrevPerm": "35", "UASC": "36"}


def _structural_903() -> list[Rule]:
    rules: list[Rule] = []
    for table, n in _INT_NOT_IN_HEADER.items():
        rules.append(_int("CHILD", table))
        del n
    for table, n in _INT_DOB.items():
        rules.append(
            Rule(f"INT{n}", (table,), ("DOB",), f"Internal Check: DOB in {table} is different to "
                 "DOB in Header.", lambda y: c("@in_header") & (c("DOB") != c("@header_dob")))
        )  # fmt: skip
    for table, n in _INT_ONCE.items():
        rules.append(
            Rule(f"INT{n}", (table,), ("CHILD",), f"Internal Check: Child should only exist once "
                 f"in {table}.", lambda y: c("@dup"))
        )  # fmt: skip
    rules.append(
        Rule("INT21", ("UASC",), ("SEX",), "Internal Check: SEX in UASC is different to SEX in Header.",
             lambda y: c("@in_header") & (c("SEX") != c("@header_sex")))
    )  # fmt: skip
    for table in _INT_DOB:
        rules.append(Rule("", (table,), ("DOB",), "DOB is not a valid date",
                          lambda y: bad_date("DOB"), problem="bad_date"))  # fmt: skip
    for table in ("Header", *_INT_DOB, "Episodes"):
        rules.append(Rule("", (table,), ("CHILD",), "CHILD is blank",
                          lambda y: absent("CHILD"), problem="missing"))  # fmt: skip
    return rules


# Reasons an episode ceased that end the period of care (every REC but X1; rule 432).
_CEASED = tuple(r for r in Y.REC if r != "X1")
_TEMPORARY = ("T0", "T1", "T2", "T3", "T4")
_NOT_PR3 = ("P1", "A3", "A4", "A5", "A6", "K1", "K2", "U1", "U2", "U3", "U4", "U5", "U6")
_OC2_ITEMS = (
    "CONVICTED", "HEALTH_CHECK", "IMMUNISATIONS", "TEETH_CHECK", "HEALTH_ASSESSMENT",
    "SUBSTANCE_MISUSE", "INTERVENTION_RECEIVED", "INTERVENTION_OFFERED",
)  # fmt: skip
_OC2_REQUIRED = ("IMMUNISATIONS", "TEETH_CHECK", "HEALTH_ASSESSMENT", "SUBSTANCE_MISUSE")
_OC3_ITEMS = ("IN_TOUCH", "ACTIV", "ACCOM")


def _changed_from_last(field: str) -> pl.Expr:
    """The child's first episode differs in `field` from last year's open episode."""
    return c("@last_open") & ~c(field).eq_missing(c(f"@last_{field}"))


def _recoded_place(y: YearRules) -> pl.Expr:
    """Placement codes DfE replaced between years, which a carried episode may change:
    H5 became K3 in 2024 to 2025, Z1 became Z11-Z14 in 2025 to 2026 (as Data to Insight's
    503D allows)."""
    if y.year in (2024, 2025):
        return (c("PLACE") == "K3") & (c("@last_PLACE") == "H5")
    if y.year == 2026:
        return c("PLACE").is_in(["Z11", "Z12", "Z13", "Z14"]) & (c("@last_PLACE") == "Z1")
    return pl.lit(False)


def _same_placement() -> pl.Expr:
    """The placement fields equal the previous episode's (blank equals blank)."""
    return pl.all_horizontal(c(f).eq_missing(c(f"@prev_{f}")) for f in PLACEMENT_FIELDS)


SSDA903_RULES: tuple[Rule, ...] = (
    *_structural_903(),
    # Header
    Rule("101", ("Header",), ("SEX",), "Gender code is not valid.",
         lambda y: absent("SEX") | not_in("SEX", y.codes["SEX"]), years=(2022, 2023, 2024)),
    Rule("101", ("Header",), ("SEX",), "The child or young person's reported sex is not valid.",
         lambda y: absent("SEX") | not_in("SEX", y.codes["SEX"]), years=(2025, 2026)),
    Rule("102", ("Header",), ("DOB",), "Date of birth is not a valid date.",
         lambda y: d("DOB").is_null()),
    Rule("103", ("Header",), ("ETHNIC",), "The ethnicity code is either not valid or has not been entered.",
         lambda y: absent("ETHNIC") | not_in("ETHNIC", _ethnicity())),
    Rule("168", ("Header",), ("UPN",), "Unique Pupil Number (UPN) is not valid. If unknown, default "
         "codes should be UN1, UN2, UN3, UN4 or UN5.",
         lambda y: present("UPN") & ~c("UPN").str.contains(
             r"^([A-HJ-NP-RT-Z](\d{12}|\d{11}[A-Z]))$|^(UN[1-5])$"), kind="identifier"),
    Rule("165", ("Header",), ("MOTHER",), "Data entry for mother status is invalid.",
         lambda y: not_in("MOTHER", Y.ZERO_ONE)),
    Rule("171", ("Header",), ("MC_DOB",), "Date of birth of mother's child is not a valid date.",
         lambda y: bad_date("MC_DOB")),
    Rule("174", ("Header",), ("MC_DOB",), "Mother's child date of birth is recorded but sex shows that "
         "the child is a male.", lambda y: present("MC_DOB") & (c("SEX") == _male(y))),
    Rule("611", ("Header",), ("MC_DOB",), "Date of birth field is blank, but child is a mother.",
         lambda y: (c("MOTHER") == "1") & absent("MC_DOB")),
    Rule("612", ("Header",), ("MC_DOB",), "Date of birth field has been completed but mother field "
         "indicates child is not a mother.",
         lambda y: ((c("MOTHER") == "0") | absent("MOTHER")) & (c("SEX") == _female(y))
         & present("MC_DOB")),
    Rule("620", ("Header",), ("MOTHER",), "Child has been recorded as a mother, but date of birth "
         "shows that the mother is under 11 years of age.",
         lambda y: (c("MOTHER") == "1") & (d("DOB").dt.offset_by("11y") > pl.lit(y.start))),
    Rule("621", ("Header",), ("MC_DOB",), "Mother's field has been completed but date of birth shows "
         "that the mother is younger than her child.",
         lambda y: d("MC_DOB").is_not_null() & (d("MC_DOB") <= d("DOB"))),
    # Episodes
    Rule("", ("Episodes",), ("DECOM",), "Date episode began is blank",
         lambda y: absent("DECOM"), problem="missing"),
    Rule("141", ("Episodes",), ("DECOM",), "Date episode began is not a valid date.",
         lambda y: bad_date("DECOM")),
    Rule("143", ("Episodes",), ("RNE",), "The reason for new episode code is not a valid code.",
         lambda y: not_in("RNE", Y.RNE)),
    Rule("144", ("Episodes",), ("LS",), "The legal status code is not a valid code.",
         lambda y: not_in("LS", Y.LEGAL_STATUS)),
    Rule("145", ("Episodes",), ("CIN",), "Category of need code is not a valid code.",
         lambda y: not_in("CIN", Y.CIN_903)),
    Rule("146", ("Episodes",), ("PLACE",), "Placement type code is not a valid code.",
         lambda y: not_in("PLACE", y.codes["PLACE"])),
    Rule("147", ("Episodes",), ("DEC",), "Date episode ceased is not a valid date.",
         lambda y: bad_date("DEC")),
    Rule("148", ("Episodes",), ("DEC",), "Date episode ceased and reason episode ceased must both "
         "be coded, or both left blank.", lambda y: present("DEC") != present("REC")),
    Rule("149", ("Episodes",), ("REC",), "Reason episode ceased code is not valid.",
         lambda y: not_in("REC", Y.REC)),
    Rule("178", ("Episodes",), ("PLACE_PROVIDER",), "Placement provider code is not a valid code.",
         lambda y: present("PLACE_PROVIDER") & (~c("PLACE_PROVIDER").is_in(list(Y.PROVIDERS))
                                                | c("PLACE").is_in(list(y.codes["NO_PROVIDER"])))),
    Rule("1009", ("Episodes",), ("REASON_PLACE_CHANGE",), "Reason for placement change is not a "
         "valid code.", lambda y: not_in("REASON_PLACE_CHANGE", Y.REASON_PLACE_CHANGE)),
    Rule("", ("Episodes",), ("DEC",), "Date episode ceased is before the date it began",
         lambda y: before("DEC", "DECOM"), problem="ceased_before_began"),
    # Reviews
    Rule("166", ("Reviews",), ("REVIEW",), "Date of review is invalid or blank.",
         lambda y: d("REVIEW").is_null()),
    Rule("167", ("Reviews",), ("REVIEW_CODE",), "Data entry for participation is invalid or blank.",
         lambda y: (present("REVIEW") & ~c("REVIEW_CODE").is_in(list(Y.REVIEW_CODES)).fill_null(False))
         | (absent("REVIEW") & present("REVIEW_CODE"))),
    # UASC
    Rule("104", ("UASC",), ("DUC",), "Date for Unaccompanied Asylum-Seeking Children (UASC) status "
         "ceased is not a valid date.", lambda y: bad_date("DUC")),
    # OC2
    Rule("180", ("OC2",), ("SDQ_SCORE",), "Data entry for the strengths and difficulties "
         "questionnaire (SDQ) score is invalid.",
         lambda y: present("SDQ_SCORE") & ~c("SDQ_SCORE").cast(pl.Int64, strict=False)
         .is_between(0, 40).fill_null(False)),
    Rule("196", ("OC2",), ("SDQ_REASON",), "Strengths and Difficulties (SDQ) reason is not a valid code.",
         lambda y: not_in("SDQ_REASON", Y.SDQ_REASONS)),
    Rule("181", ("OC2",), ("CONVICTED",), "Data items relating to children looked after continuously "
         "for 12 months should be completed with a 0 or 1.",
         lambda y: pl.any_horizontal(not_in(f, Y.ZERO_ONE) for f in (
             "CONVICTED", "HEALTH_CHECK", "IMMUNISATIONS", "TEETH_CHECK", "HEALTH_ASSESSMENT",
             "SUBSTANCE_MISUSE", "INTERVENTION_RECEIVED", "INTERVENTION_OFFERED"))),
    # OC3
    Rule("131", ("OC3",), ("IN_TOUCH",), "Data entry for being in touch after leaving care is invalid.",
         lambda y: absent("IN_TOUCH") | not_in("IN_TOUCH", Y.IN_TOUCH)),
    Rule("132", ("OC3",), ("ACTIV",), "Data entry for activity after leaving care is invalid.",
         lambda y: absent("ACTIV") | not_in("ACTIV", Y.ACTIV)),
    Rule("133", ("OC3",), ("ACCOM",), "Data entry for accommodation after leaving care is invalid. If "
         "reporting on a childs accommodation after leaving care the data entry must be valid",
         lambda y: absent("ACCOM") | not_in("ACCOM", Y.ACCOM)),
    Rule("153", ("OC3",), ("ACCOM",), "All data items relating to a child's activity or accommodation "
         "after leaving care must be coded or left blank.",
         lambda y: ~(pl.all_horizontal(present(f) for f in ("IN_TOUCH", "ACTIV", "ACCOM"))
                     | pl.all_horizontal(absent(f) for f in ("IN_TOUCH", "ACTIV", "ACCOM")))),
    # AD1
    Rule("112", ("AD1",), ("DATE_INT",), "Date should be placed for adoption is not a valid date.",
         lambda y: bad_date("DATE_INT")),
    Rule("113", ("AD1",), ("DATE_MATCH",), "Date matching child and adopter(s) is not a valid date.",
         lambda y: bad_date("DATE_MATCH")),
    Rule("114", ("AD1",), ("FOSTER_CARE",), "Data entry to record the status of former carer(s) of an "
         "adopted child is invalid.", lambda y: not_in("FOSTER_CARE", Y.ZERO_ONE)),
    Rule("175", ("AD1",), ("NB_ADOPTR",), "The number of adopter(s) code is not a valid code.",
         lambda y: not_in("NB_ADOPTR", Y.NB_ADOPTR)),
    Rule("176", ("AD1",), ("SEX_ADOPTR",), "The gender of adopter(s) at the date of adoption code is "
         "not a valid code.", lambda y: not_in("SEX_ADOPTR", Y.SEX_ADOPTR)),
    Rule("177", ("AD1",), ("LS_ADOPTR",), "The legal status of adopter(s) code is not a valid code.",
         lambda y: not_in("LS_ADOPTR", Y.LS_ADOPTR)),
    # PlacedAdoption
    Rule("115", ("PlacedAdoption",), ("DATE_PLACED",), "Date of Local Authority's (LA) decision that a "
         "child should be placed for adoption is not a valid date.", lambda y: bad_date("DATE_PLACED")),
    Rule("116", ("PlacedAdoption",), ("DATE_PLACED_CEASED",), "Date of Local Authority's (LA) decision "
         "that a child should no longer be placed for adoption is not a valid date.",
         lambda y: bad_date("DATE_PLACED_CEASED")),
    Rule("120", ("PlacedAdoption",), ("REASON_PLACED_CEASED",), "The reason for the reversal of the "
         "decision that the child should be placed for adoption code is not valid.",
         lambda y: not_in("REASON_PLACED_CEASED", Y.REASON_PLACED_CEASED)),
    # PrevPerm
    Rule("631", ("PrevPerm",), ("PREV_PERM",), "Previous permanence option not a valid value.",
         lambda y: not_in("PREV_PERM", Y.PREV_PERM)),
    # Missing
    Rule("1004", ("Missing",), ("MIS_START",), "The start date of the missing episode or episode that "
         "the child was away from placement without authorisation is not a valid date.",
         lambda y: d("MIS_START").is_null()),
    Rule("1005", ("Missing",), ("MIS_END",), "The end date of the missing episode or episode that the "
         "child was away from placement without authorisation is not a valid date.",
         lambda y: bad_date("MIS_END")),
    Rule("1006", ("Missing",), ("MISSING",), "Missing type invalid.",
         lambda y: not_in("MISSING", Y.MISSING)),
    Rule("567", ("Missing",), ("MIS_END",), "The date that the missing episode or episode that the child "
         "was away from placement without authorisation ended is before the date that it started.",
         lambda y: before("MIS_END", "MIS_START")),
    # --- Episode sequence: each episode against the child's previous and next episode
    # in DECOM order (context columns from pipelines/returns/context.episode_sequence).
    Rule("142", ("Episodes",), ("DEC",), "A new episode has started, but the previous episode "
         "has not ended.", lambda y: c("@has_next") & (absent("DEC") | absent("REC"))),
    Rule("501", ("Episodes",), ("DECOM",), "A new episode has started before the end date of the "
         "previous episode.", lambda y: c("@has_prev") & before("DECOM", "@prev_DEC")),
    Rule("388", ("Episodes",), ("REC",), "Reason episode ceased is coded new episode begins, but "
         "there is no continuation episode.", lambda y: present("DEC") & (
             (c("@has_next") & (c("REC") == "X1") & d("@next_DECOM").is_not_null()
              & (d("DEC") != d("@next_DECOM")))
             | (c("@has_next") & present("REC") & (c("REC") != "X1")
                & (d("DEC") == d("@next_DECOM")))
             | (~c("@has_next") & (c("REC") == "X1")))),
    Rule("431", ("Episodes",), ("RNE",), "The reason for new episode is started to be looked "
         "after, but the previous episode ended on the same day.",
         lambda y: c("@has_prev") & (c("RNE") == "S") & (d("DECOM") <= d("@prev_DEC"))),
    Rule("432", ("Episodes",), ("RNE",), "The child ceased to be looked after at the end of the "
         "previous episode but the reason for the new episode is not started to be looked after.",
         lambda y: c("@has_prev") & c("@prev_REC").is_in(list(_CEASED)) & (c("RNE") != "S")),
    Rule("433", ("Episodes",), ("RNE",), "The reason for new episode suggests that this is a "
         "continuation episode, but the episode does not start on the same day as the last "
         "episode finished.", lambda y: c("@has_prev") & c("RNE").is_in(["P", "L", "T", "U", "B"])
         & (d("@prev_DEC").is_null() | (d("@prev_DEC") != d("DECOM")))),
    Rule("434", ("Episodes",), ("RNE",), "Reason for new episode is that child's legal status has "
         "changed but not the placement, but this is not reflected in the episode data.",
         lambda y: c("@has_prev") & (c("RNE") == "L")
         & (c("LS").eq_missing(c("@prev_LS")) | ~_same_placement())),
    Rule("435", ("Episodes",), ("RNE",), "Reason for new episode is that child's placement has "
         "changed but not the legal status, but this is not reflected in the episode data.",
         lambda y: c("@has_prev") & c("RNE").is_in(["P", "T"])
         & (~c("LS").eq_missing(c("@prev_LS")) | _same_placement())),
    Rule("436", ("Episodes",), ("RNE",), "Reason for new episode is that both child's placement "
         "and legal status have changed, but this is not reflected in the episode data.",
         lambda y: c("@has_prev") & c("RNE").is_in(["U", "B"])
         & (c("LS").eq_missing(c("@prev_LS")) | _same_placement())),
    Rule("437", ("Episodes",), ("REC",), "Reason episode ceased is child has died or is aged 18 or "
         "over but there are further episodes.",
         lambda y: c("@has_next") & c("REC").is_in(["E2", "E15"])),
    Rule("357", ("Episodes",), ("RNE",), "If this is the first episode ever for this child, reason "
         "for new episode must be S.  Check whether there is an episode immediately preceding "
         "this one, which has been left out.  If not the reason for new episode code must be "
         "amended to S.", lambda y: c("@in_seq") & ~c("@has_prev")
         & (d("DECOM") >= pl.lit(y.start)) & (c("RNE") != "S")),
    Rule("385", ("Episodes",), ("DEC",), "Date episode ceased must be on or before the end of the "
         "current collection year.", lambda y: d("DEC") > pl.lit(y.end)),
    # --- Against last year's return: the open episode at 31 March carries over.
    Rule("502", ("Episodes",), ("DECOM",), "Last year's record ended with an open episode. The "
         "date on which that episode started does not match the start date of the first episode "
         "on this year's record.",
         lambda y: c("@last_open") & (d("DECOM") != d("@last_DECOM")).fill_null(True)),
    Rule("503A", ("Episodes",), ("RNE",), "The reason for new episode in the first episode does "
         "not match open episode at end of last year.", lambda y: _changed_from_last("RNE")),
    Rule("503B", ("Episodes",), ("LS",), "The legal status in the first episode does not match "
         "open episode at end of last year.", lambda y: _changed_from_last("LS")),
    Rule("503C", ("Episodes",), ("CIN",), "The category of need in the first episode does not "
         "match open episode at end of last year.", lambda y: _changed_from_last("CIN")),
    Rule("503D", ("Episodes",), ("PLACE",), "The placement type in the first episode does not "
         "match open episode at end of last year", lambda y: _changed_from_last("PLACE")
         & ~_recoded_place(y)),
    Rule("503E", ("Episodes",), ("PLACE_PROVIDER",), "The placement provider in the first episode "
         "does not match open episode at end of last year.",
         lambda y: _changed_from_last("PLACE_PROVIDER")),
    Rule("503F", ("Episodes",), ("URN",), "The Ofsted URN in the  first episode does not match "
         "open episode at end of last year.", lambda y: _changed_from_last("URN")),
    Rule("562", ("Episodes",), ("DECOM",), "Episode commenced before the start of the current "
         "collection year but there is a missing continuous episode in the previous year.",
         lambda y: (d("DECOM") < pl.lit(y.start)) & ~c("@in_last")),
    Rule("NoE", ("Episodes",), ("DECOM",), "This child has no episodes loaded for previous year "
         "even though child started to be looked after before this current year.",
         lambda y: c("@in_seq") & ~c("@has_prev") & (d("DECOM") < pl.lit(y.start))
         & ~c("@child_in_last")),
    # --- Legal status and placement combinations.
    Rule("358", ("Episodes",), ("LS",), "Child with this legal status should not be under 10.",
         lambda y: c("LS").is_in(["J1", "J2", "J3"])
         & (d("@header_dob").dt.offset_by("10y") >= d("DECOM"))),
    Rule("380", ("Episodes",), ("PLACE",), "A period of care cannot start with a temporary "
         "placement.", lambda y: c("PLACE").is_in(list(_TEMPORARY)) & ~c("RNE").is_in(["P", "B"])),
    Rule("381", ("Episodes",), ("PLACE",), "A period of care cannot end with a temporary "
         "placement.", lambda y: c("PLACE").is_in(list(_TEMPORARY)) & present("REC")
         & (c("REC") != "X1")),
    Rule("550", ("Episodes",), ("PLACE_PROVIDER",), "A placement provider code of PR0 can only be "
         "associated with placement P1.",
         lambda y: (c("PLACE_PROVIDER") == "PR0") & (c("PLACE") != "P1")),
    Rule("527", ("Episodes",), ("PLACE_PROVIDER",), "A placement provider code of PR1 cannot be "
         "associated with placements P1, R2 or R5.",
         lambda y: (c("PLACE_PROVIDER") == "PR1") & c("PLACE").is_in(["P1", "R2", "R5"])),
    Rule("528", ("Episodes",), ("PLACE_PROVIDER",), "A placement provider code of PR2 cannot be "
         "associated with placements P1, R2 or R5.",
         lambda y: (c("PLACE_PROVIDER") == "PR2") & c("PLACE").is_in(["P1", "R2", "R5"])),
    Rule("529", ("Episodes",), ("PLACE_PROVIDER",), "Placement provider code of PR3 cannot be "
         "associated with placements P1, A3 to A6, K1, K2 and U1 to U6 as these placements cannot "
         "be provided by other public organisations.",
         lambda y: (c("PLACE_PROVIDER") == "PR3") & c("PLACE").is_in(list(_NOT_PR3))),
    Rule("530", ("Episodes",), ("PLACE_PROVIDER",), "A placement provider code of PR4 cannot be "
         "associated with placement P1.",
         lambda y: (c("PLACE_PROVIDER") == "PR4") & (c("PLACE") == "P1")),
    Rule("531", ("Episodes",), ("PLACE_PROVIDER",), "A placement provider code of PR5 cannot be "
         "associated with placements P1.",
         lambda y: (c("PLACE_PROVIDER") == "PR5") & (c("PLACE") == "P1")),
    # --- OC2 eligibility: looked after continuously for 12 months at 31 March (`@cla`).
    Rule("185", ("OC2",), ("SDQ_SCORE",), "Child has not been looked after continuously for at "
         "least 12 months at 31 March but a Strengths and Difficulties (SDQ) score has been "
         "completed.", lambda y: present("SDQ_SCORE") & ~c("@cla")),
    Rule("198", ("OC2",), ("SDQ_REASON",), "Child has not been looked after continuously for at "
         "least 12 months at 31 March but a reason for no Strengths and Difficulties (SDQ) score "
         "has been completed.", lambda y: present("SDQ_REASON") & ~c("@cla")),
    Rule("190", ("OC2",), ("CONVICTED",), "Child has not been looked after continuously for at "
         "least 12 months at 31 March but one or more data items relating to children looked "
         "after for 12 months have been completed.",
         lambda y: ~c("@cla") & pl.any_horizontal(present(f) for f in _OC2_ITEMS)),
    Rule("191", ("OC2",), ("IMMUNISATIONS",), "Child has been looked after continuously for at "
         "least 12 months at 31 March but one or more data items relating to children looked "
         "after for 12 months have been left blank.",
         lambda y: c("@cla") & pl.any_horizontal(absent(f) for f in _OC2_REQUIRED)),
    # --- OC3 eligibility: care leavers whose 17th to 21st birthday fell in the year.
    Rule("391", ("OC3",), ("DOB",), "Young person was not 17, 18, 19, 20 or 21 during the current "
         "collection year.", lambda y: pl.any_horizontal(present(f) for f in _OC3_ITEMS)
         & ((d("DOB").dt.offset_by("17y") > pl.lit(y.end))
            | (d("DOB").dt.offset_by("22y") <= pl.lit(y.start)))),
    Rule("1007", ("OC3",), ("IN_TOUCH",), "Care leaver information is not required for 17- or "
         "18-year olds who are still looked after [on their 17th or 18th birthday.]",
         lambda y: c("@in_care_on_birthday")
         & pl.any_horizontal(present(f) for f in _OC3_ITEMS)),
    # --- Missing episodes against the periods of care and each other.
    Rule("581", ("Missing",), ("MIS_START",), "Child is missing but has not yet started to be "
         "looked after.", lambda y: d("MIS_START").is_not_null() & ~c("@in_episode")),
    Rule("574", ("Missing",), ("MIS_START",), "A new missing/away from placement without "
         "authorisation period cannot start when the previous missing/away from placement "
         "without authorisation period is still open. Missing/away from placement without "
         "authorisation periods should also not overlap.",
         lambda y: c("@has_prev") & (absent("@prev_MIS_END") | before("MIS_START", "@prev_MIS_END"))),
)  # fmt: skip

RULES = {"cin": CIN_RULES, "ssda903": SSDA903_RULES}


def rules_for(kind: str, table: str, year: int) -> list[Rule]:
    return [r for r in RULES[kind] if r.applies(table, year)]


def describe(reason: str) -> str:
    """DfE's message for a reason code (`dfe:8630:CINclosureDate`), else the reason."""
    parts = reason.split(":")
    if len(parts) == 3 and parts[0] == "dfe":
        for r in (*CIN_RULES, *SSDA903_RULES):
            if r.code == parts[1]:
                return f"DfE rule {r.code}: {r.message}"
    return reason


def catalogue() -> list[dict[str, str]]:
    """Every implemented rule: return, code, tables, field, kind, years, message."""
    rows = []
    for kind, rules in RULES.items():
        for r in rules:
            rows.append(
                {
                    "return": "CIN census" if kind == "cin" else "SSDA903",
                    "code": r.code or f"schema:{r.problem}",
                    "tables": ", ".join(r.tables),
                    "field": r.fields[0],
                    "kind": r.kind,
                    "years": "all" if r.years is None else ", ".join(map(str, r.years)),
                    "message": r.message,
                }
            )
    return rows
