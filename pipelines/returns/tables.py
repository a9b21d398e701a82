"""The returns' tables, defined once: DfE's field names, the contract column each becomes,
and the source contract of each table (shared by the generator, ingest, linkage and
zone B, like every other source's contract).

CIN census (DfE's XML schema, as liia-tools' CIN_schema_2017..2024.xsd and Data to
Insight's csc-validator-be-cin read it): each `Child` has `ChildIdentifiers`,
`ChildCharacteristics` and one or more `CINdetails`; a CINdetails nests `Assessments`,
`CINPlanDates`, `Section47` and `ChildProtectionPlans`. Each becomes a table of its own
(one row per element), every row carrying its child's identifiers and its referral's
date, so a row can be linked and validated on its own.

SSDA903 (DfE's CSV layout, as Data to Insight's csc-validator-be-903 `config.column_names`
lists it): ten tables, identified by their columns (file names vary between systems).

The child's identifiers take the names every source shares (`lcs_person_id` for
LAchildID and CHILD: councils use their case system's person number as the return's
child id; `upn`, `dob`, `sex`, `ethnicity`), so linkage treats them like any other
source's. `sex` is stored as the shared code list (F, M, U), whatever the year's code.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.contracts import Column, Kind, Role, SourceContract
from registry.codes import ETHNICITY, SEX

# --- SSDA903 ------------------------------------------------------------------------

TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "Header": ("CHILD", "SEX", "DOB", "ETHNIC", "UPN", "MOTHER", "MC_DOB"),
    "Episodes": (
        "CHILD", "DECOM", "RNE", "LS", "CIN", "PLACE", "PLACE_PROVIDER", "DEC", "REC",
        "REASON_PLACE_CHANGE", "HOME_POST", "PL_POST", "URN",
    ),
    "Reviews": ("CHILD", "DOB", "REVIEW", "REVIEW_CODE"),
    "UASC": ("CHILD", "SEX", "DOB", "DUC"),
    "OC2": (
        "CHILD", "DOB", "SDQ_SCORE", "SDQ_REASON", "CONVICTED", "HEALTH_CHECK",
        "IMMUNISATIONS", "TEETH_CHECK", "HEALTH_ASSESSMENT", "SUBSTANCE_MISUSE",
        "INTERVENTION_RECEIVED", "INTERVENTION_OFFERED",
    ),
    "OC3": ("CHILD", "DOB", "IN_TOUCH", "ACTIV", "ACCOM"),
    "AD1": (
        "CHILD", "DOB", "DATE_INT", "DATE_MATCH", "FOSTER_CARE", "NB_ADOPTR", "SEX_ADOPTR",
        "LS_ADOPTR",
    ),
    "PlacedAdoption": ("CHILD", "DOB", "DATE_PLACED", "DATE_PLACED_CEASED", "REASON_PLACED_CEASED"),
    "PrevPerm": ("CHILD", "DOB", "PREV_PERM", "LA_PERM", "DATE_PERM"),
    "Missing": ("CHILD", "DOB", "MISSING", "MIS_START", "MIS_END"),
}  # fmt: skip
# The file names Data to Insight's tool and its test data use; a folder may use others
# (tables are recognised by their columns).
TABLE_FILES: dict[str, str] = {
    "Header": "header.csv",
    "Episodes": "episodes.csv",
    "Reviews": "reviews.csv",
    "UASC": "uasc.csv",
    "OC2": "oc2.csv",
    "OC3": "oc3.csv",
    "AD1": "ad1.csv",
    "PlacedAdoption": "placed_for_adoption.csv",
    "PrevPerm": "previous_permanence.csv",
    "Missing": "missing.csv",
}
RETURN_SOURCE: dict[str, str] = {
    "Header": "ssda903_header",
    "Episodes": "ssda903_episodes",
    "Reviews": "ssda903_reviews",
    "UASC": "ssda903_uasc",
    "OC2": "ssda903_oc2",
    "OC3": "ssda903_oc3",
    "AD1": "ssda903_ad1",
    "PlacedAdoption": "ssda903_placed_adoption",
    "PrevPerm": "ssda903_prev_perm",
    "Missing": "ssda903_missing",
}
# Tables every year's 903 must have; the others may be absent (no rows that year).
REQUIRED_903 = ("Header", "Episodes")
DATE_903 = "%d/%m/%Y"
DATE_CIN = "%Y-%m-%d"

# --- CIN census -----------------------------------------------------------------------

CIN_MODULES: dict[str, str] = {
    "CINdetails": "cin_census",
    "Assessments": "cin_assessments",
    "CINPlanDates": "cin_plans",
    "Section47": "cin_section47",
    "ChildProtectionPlans": "cin_cp_plans",
}
CHILD_FIELDS = (
    "LAchildID", "UPN", "FormerUPN", "UPNunknown", "PersonBirthDate",
    "ExpectedPersonBirthDate", "GenderCurrent", "Sex", "PersonDeathDate", "Ethnicity",
    "Disabilities",
)  # fmt: skip
MODULE_FIELDS: dict[str, tuple[str, ...]] = {
    "CINdetails": (
        "CINreferralDate", "ReferralSource", "PrimaryNeedCode", "CINclosureDate",
        "ReasonForClosure", "DateOfInitialCPC", "ReferralNFA",
    ),
    "Assessments": (
        "AssessmentActualStartDate", "AssessmentInternalReviewDate",
        "AssessmentAuthorisationDate", "AssessmentFactors",
    ),
    "CINPlanDates": ("CINPlanStartDate", "CINPlanEndDate"),
    "Section47": ("S47ActualStartDate", "InitialCPCtarget", "DateOfInitialCPC", "ICPCnotRequired"),
    "ChildProtectionPlans": (
        "CPPstartDate", "CPPendDate", "InitialCategoryOfAbuse", "LatestCategoryOfAbuse",
        "NumberOfPreviousCPP", "CPPreviewDate",
    ),
}  # fmt: skip
# Elements that repeat inside a module; a row keeps them ';'-separated.
REPEATED = ("Disability", "AssessmentFactors", "CPPreviewDate")


@dataclass(frozen=True)
class Field:
    """One field of a return table: DfE's name and the contract column it becomes."""

    dfe: str
    column: str
    kind: Kind
    description: str
    role: Role = Role.ATTRIBUTE
    codes: tuple[str, ...] = ()


def _f(dfe: str, column: str, kind: Kind, description: str, role: Role = Role.ATTRIBUTE,
       codes: tuple[str, ...] = ()) -> Field:  # fmt: skip
    return Field(dfe, column, kind, description, role, codes)


ID, DI, QI = Role.KEY, Role.DIRECT_IDENTIFIER, Role.QUASI_IDENTIFIER
T, D, C, N = Kind.TEXT, Kind.DATE, Kind.CODE, Kind.INT

# The child, as every row of a return carries it.
CIN_CHILD: tuple[Field, ...] = (
    _f("LAchildID", "lcs_person_id", T, "LA child ID (the case system's person number)", DI),
    _f("UPN", "upn", Kind.UPN, "Unique Pupil Number", DI),
    _f("FormerUPN", "former_upn", T, "Former UPN", DI),
    _f("UPNunknown", "upn_unknown", C, "Why the UPN is unknown (UN1-UN7)"),
    _f("PersonBirthDate", "dob", D, "Date of birth", DI),
    _f("ExpectedPersonBirthDate", "expected_dob", D, "Expected date of birth (unborn)", DI),
    _f("Sex", "sex", C, "Sex (GenderCurrent before 2024 to 2025), as F, M or U", QI, SEX),
    _f("PersonDeathDate", "death_date", D, "Date of death", DI),
    _f("Ethnicity", "ethnicity", C, "DfE ethnicity code", QI, ETHNICITY),
    _f("Disabilities", "disabilities", T, "Disability codes, ';'-separated"),
)
CIN_TABLE_FIELDS: dict[str, tuple[Field, ...]] = {
    "CINdetails": (
        _f("CINreferralDate", "referral_date", D, "Referral date (N00100)"),
        _f("ReferralSource", "referral_source", C, "Source of referral (CIN code)"),
        _f("PrimaryNeedCode", "primary_need", C, "Primary need N0-N9"),
        _f("CINclosureDate", "closure_date", D, "CIN closure date"),
        _f("ReasonForClosure", "closure_reason", C, "Reason for closure RC1-RC9"),
        _f("DateOfInitialCPC", "icpc_date", D, "Initial child protection conference"),
        _f("ReferralNFA", "referral_nfa", Kind.FLAG, "Referral with no further action"),
    ),
    "Assessments": (
        _f("CINreferralDate", "referral_date", D, "The referral's date"),
        _f("AssessmentActualStartDate", "assessment_start", D, "Assessment started (N00159)"),
        _f("AssessmentInternalReviewDate", "assessment_review", D, "Internal review"),
        _f("AssessmentAuthorisationDate", "assessment_authorised", D, "Authorised (N00160)"),
        _f("AssessmentFactors", "factors", T, "Factors identified, ';'-separated"),
    ),
    "CINPlanDates": (
        _f("CINreferralDate", "referral_date", D, "The referral's date"),
        _f("CINPlanStartDate", "cin_plan_start", D, "CIN plan started"),
        _f("CINPlanEndDate", "cin_plan_end", D, "CIN plan ended"),
    ),
    "Section47": (
        _f("CINreferralDate", "referral_date", D, "The referral's date"),
        _f("S47ActualStartDate", "s47_start", D, "Section 47 enquiry started"),
        # InitialCPCtarget is read and checked (a valid date) but not kept: a target may
        # lie after the data date, which the contract would quarantine, and no measure
        # uses it.
        _f("DateOfInitialCPC", "icpc_date", D, "Initial child protection conference"),
        _f("ICPCnotRequired", "icpc_not_required", Kind.FLAG, "Conference not required"),
    ),
    "ChildProtectionPlans": (
        _f("CINreferralDate", "referral_date", D, "The referral's date"),
        _f("CPPstartDate", "cp_plan_start", D, "Plan started (N00105)"),
        _f("CPPendDate", "cp_plan_end", D, "Plan ended (N00115)"),
        _f("InitialCategoryOfAbuse", "initial_category", C, "Initial category of abuse"),
        _f("LatestCategoryOfAbuse", "latest_category", C, "Latest category of abuse"),
        _f("NumberOfPreviousCPP", "previous_plans", N, "Number of previous plans"),
        # CPPreviewDate is read (';'-separated) but not kept: a list of dates as text
        # would reach zone B as text, and no measure uses it.
    ),
}

_CHILD_903 = _f("CHILD", "lcs_person_id", T, "Child's LA identifier", DI)
_DOB_903 = _f("DOB", "dob", D, "Date of birth", DI)
SSDA903_FIELDS: dict[str, tuple[Field, ...]] = {
    "Header": (
        _CHILD_903,
        _f("SEX", "sex", C, "Sex, as F, M or U", QI, SEX),
        _DOB_903,
        _f("ETHNIC", "ethnicity", C, "DfE ethnicity code", QI, ETHNICITY),
        _f("UPN", "upn", Kind.UPN, "Unique Pupil Number (or UN1-UN5)", DI),
        _f("MOTHER", "mother", C, "Is a mother (1) or not (0)"),
        _f("MC_DOB", "mc_dob", D, "Date of birth of her first child", DI),
    ),
    "Episodes": (
        _CHILD_903,
        _f("DECOM", "decom", D, "Date episode commenced"),
        _f("RNE", "rne", C, "Reason for new episode"),
        _f("LS", "ls", C, "Legal status"),
        _f("CIN", "cin", C, "Category of need"),
        _f("PLACE", "place", C, "Placement type"),
        _f("PLACE_PROVIDER", "place_provider", C, "Placement provider"),
        _f("DEC", "dec", D, "Date episode ceased"),
        _f("REC", "rec", C, "Reason episode ceased"),
        _f("REASON_PLACE_CHANGE", "reason_place_change", C, "Reason for placement change"),
        _f("HOME_POST", "home_post", Kind.POSTCODE, "Home postcode", DI),
        _f("PL_POST", "pl_post", Kind.POSTCODE, "Placement postcode", DI),
        _f("URN", "urn", T, "Ofsted URN of the placement", DI),
    ),
    "Reviews": (
        _CHILD_903,
        _DOB_903,
        _f("REVIEW", "review", D, "Date of review"),
        _f("REVIEW_CODE", "review_code", C, "Participation (PN0-PN7)"),
    ),  # fmt: skip
    "UASC": (
        _CHILD_903,
        _f("SEX", "sex", C, "Sex, as F, M or U", QI, SEX),
        _DOB_903,
        _f("DUC", "duc", D, "Date UASC status ceased"),
    ),
    "OC2": (
        _CHILD_903,
        _DOB_903,
        _f("SDQ_SCORE", "sdq_score", N, "Strengths and difficulties score (0-40)"),
        _f("SDQ_REASON", "sdq_reason", C, "Reason for no SDQ score"),
        _f("CONVICTED", "convicted", C, "Convicted during the year (0/1)"),
        _f("HEALTH_CHECK", "health_check", C, "Health surveillance checks up to date (0/1)"),
        _f("IMMUNISATIONS", "immunisations", C, "Immunisations up to date (0/1)"),
        _f("TEETH_CHECK", "teeth_check", C, "Teeth checked (0/1)"),
        _f("HEALTH_ASSESSMENT", "health_assessment", C, "Health assessment (0/1)"),
        _f("SUBSTANCE_MISUSE", "substance_misuse", C, "Substance misuse problem (0/1)"),
        _f("INTERVENTION_RECEIVED", "intervention_received", C, "Intervention received (0/1)"),
        _f("INTERVENTION_OFFERED", "intervention_offered", C, "Intervention offered (0/1)"),
    ),  # fmt: skip
    "OC3": (
        _CHILD_903,
        _DOB_903,
        _f("IN_TOUCH", "in_touch", C, "Authority in touch"),
        _f("ACTIV", "activ", C, "Main activity"),
        _f("ACCOM", "accom", C, "Accommodation (second character 1: suitable, 2: not)"),
    ),  # fmt: skip
    "AD1": (
        _CHILD_903,
        _DOB_903,
        _f("DATE_INT", "date_int", D, "Decision that the child should be placed for adoption"),
        _f("DATE_MATCH", "date_match", D, "Matched with adopters"),
        _f("FOSTER_CARE", "foster_care", C, "Adopted by former foster carers (0/1)"),
        _f("NB_ADOPTR", "nb_adoptr", C, "Number of adopters"),
        _f("SEX_ADOPTR", "sex_adoptr", C, "Sex of adopters"),
        _f("LS_ADOPTR", "ls_adoptr", C, "Legal status of adopters"),
    ),  # fmt: skip
    "PlacedAdoption": (
        _CHILD_903,
        _DOB_903,
        _f("DATE_PLACED", "date_placed", D, "Decision that the child should be placed"),
        _f("DATE_PLACED_CEASED", "date_placed_ceased", D, "Decision that they should no longer be"),
        _f("REASON_PLACED_CEASED", "reason_placed_ceased", C, "Why (RD1-RD4)"),
    ),  # fmt: skip
    "PrevPerm": (
        _CHILD_903,
        _DOB_903,
        _f("PREV_PERM", "prev_perm", C, "Previous permanence option"),
        _f("LA_PERM", "la_perm", T, "Authority that arranged it"),
        _f("DATE_PERM", "date_perm", T, "Date of the order (may be partial)"),
    ),  # fmt: skip
    "Missing": (
        _CHILD_903,
        _DOB_903,
        _f("MISSING", "missing", C, "Missing (M) or away without authorisation (A)"),
        _f("MIS_START", "mis_start", D, "Started"),
        _f("MIS_END", "mis_end", D, "Ended"),
    ),  # fmt: skip
}
assert all(tuple(f.dfe for f in SSDA903_FIELDS[t]) == TABLE_COLUMNS[t] for t in TABLE_COLUMNS), (
    "903 fields out of step with the table layout"
)

_TITLES = {
    "cin_census": "CIN census: referrals (CINdetails)",
    "cin_assessments": "CIN census: assessments",
    "cin_plans": "CIN census: child in need plans",
    "cin_section47": "CIN census: section 47 enquiries",
    "cin_cp_plans": "CIN census: child protection plans",
    "ssda903_header": "SSDA903: children (Header)",
    "ssda903_episodes": "SSDA903: episodes of care",
    "ssda903_reviews": "SSDA903: reviews",
    "ssda903_uasc": "SSDA903: unaccompanied asylum-seeking children",
    "ssda903_oc2": "SSDA903: children looked after for 12 months (OC2)",
    "ssda903_oc3": "SSDA903: care leavers (OC3)",
    "ssda903_ad1": "SSDA903: adoptions (AD1)",
    "ssda903_placed_adoption": "SSDA903: decisions to place for adoption",
    "ssda903_prev_perm": "SSDA903: previous permanence",
    "ssda903_missing": "SSDA903: missing and away from placement",
}


def _contract(source: str, fields: tuple[Field, ...], system: str, date_format: str,
              description: str) -> SourceContract:  # fmt: skip
    cols: list[Column] = [Column("row_key", Kind.RECORD_ID, "File and line of the row", Role.KEY)]
    seen: set[str] = set()
    for f in fields:
        if f.column in seen:
            continue
        seen.add(f.column)
        # Every field is optional to the contract: DfE's rules (pipelines/returns/rules.py)
        # say which must be present, year by year. The row's main date is required so
        # `event_date` names it.
        required = f.kind is Kind.DATE and f.column == _MAIN_DATE.get(source)
        # A return's code lists change year by year, so its rules check them
        # (pipelines/returns/years.py); the contract checks only the shared lists.
        kind = Kind.TEXT if f.kind is Kind.CODE and not f.codes else f.kind
        cols.append(Column(f.column, kind, f.description, f.role, required, f.codes))
    cols.append(Column("collection_year", Kind.INT, "Collection year (ending 31 March)"))
    return SourceContract(
        name=source,
        title=_TITLES[source],
        system=system,
        description=description,
        columns=tuple(cols),
        date_formats=(date_format,),
        tells=_TITLES[source],
    )


# The date each table's rows are about (`SourceContract.event_date`).
_MAIN_DATE = {
    "cin_census": "referral_date",
    "cin_assessments": "assessment_start",
    "cin_plans": "cin_plan_start",
    "cin_section47": "s47_start",
    "cin_cp_plans": "cp_plan_start",
    "ssda903_episodes": "decom",
    "ssda903_reviews": "review",
    "ssda903_ad1": "date_match",
    "ssda903_placed_adoption": "date_placed",
    "ssda903_missing": "mis_start",
}


def _build() -> dict[str, SourceContract]:
    out: dict[str, SourceContract] = {}
    for module, source in CIN_MODULES.items():
        out[source] = _contract(
            source, CIN_CHILD + CIN_TABLE_FIELDS[module], "CIN census XML", DATE_CIN,
            f"One row per {module} element of the CIN census, with its child's identifiers.",
        )  # fmt: skip
    for table, source in RETURN_SOURCE.items():
        out[source] = _contract(
            source, SSDA903_FIELDS[table], "SSDA903 CSV", DATE_903,
            f"One row per row of the 903's {table} table.",
        )  # fmt: skip
    return out


RETURN_CONTRACTS: dict[str, SourceContract] = _build()
