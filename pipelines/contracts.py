"""Source contracts: one schema per source system (zone A).

Defined once and shared by the synthetic generator (which writes exactly these
columns) and the ingest validator (which checks every extract against them).
Each source carries the identifiers that the real system carries, so linkage
is as hard here as it is in a council: schools know a child by UPN, DWP by
National Insurance number, health and social care by NHS number, and everyone
else by name, date of birth and address.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

# Defined once in `registry.codes` (the layer both the pipeline and the privacy core
# import); import them from there. SCOPE_PLANNING_AND_RESEARCH is still re-exported for
# pipelines/ingest.py (remove once it imports registry.codes).
from registry.codes import (
    CIN_NEED,
    EH_CLOSURE_LABELS,
    ETHNICITY,
    FRONT_DOOR_DECISION_LABELS,
    NEEDS,
    OBJECTION_SCOPES,
    REFERRAL_SOURCES,
    SCOPE_PLANNING_AND_RESEARCH,  # noqa: F401
    SEX,
)


class Kind(StrEnum):
    """What a column holds; drives validation and standardisation."""

    RECORD_ID = "record_id"  # the source system's own row key
    TEXT = "text"
    NAME = "name"
    DATE = "date"
    INT = "int"
    CODE = "code"  # one of a closed list of codes
    CODES = "codes"  # ';'-separated list of codes
    POSTCODE = "postcode"
    NHS_NUMBER = "nhs_number"
    NI_NUMBER = "ni_number"
    UPN = "upn"
    FLAG = "flag"  # Y / N
    PHONE = "phone"  # UK telephone number; ingest keeps digits only, national form


class Role(StrEnum):
    """Why a column matters for privacy: direct identifiers never leave zone A."""

    KEY = "key"
    DIRECT_IDENTIFIER = "direct_identifier"
    QUASI_IDENTIFIER = "quasi_identifier"
    ATTRIBUTE = "attribute"


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    description: str
    role: Role = Role.ATTRIBUTE
    required: bool = True
    codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceContract:
    name: str
    title: str
    system: str
    description: str
    columns: tuple[Column, ...]
    # Date layouts this system is known to emit (strftime); the first is canonical.
    date_formats: tuple[str, ...] = ("%Y-%m-%d",)
    tells: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    # Columns a file may carry but need not (read when present, else missing values).
    optional_columns: tuple[Column, ...] = ()

    @property
    def file_stem(self) -> str:
        return self.name

    @property
    def record_id(self) -> str:
        keys = [c.name for c in self.columns if c.kind is Kind.RECORD_ID]
        assert len(keys) == 1, self.name
        return keys[0]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def every_column(self) -> tuple[Column, ...]:
        """The contract's columns, then its optional ones."""
        return self.columns + self.optional_columns

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")

    @property
    def event_date(self) -> str | None:
        """The date the row is about: the first required date that is not a birth date."""
        for c in self.columns:
            if c.kind is Kind.DATE and c.required and c.name != "dob":
                return c.name
        return None

    def identifiers(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.role is Role.DIRECT_IDENTIFIER)


def _person(
    *, dob_required: bool = True, address: bool = True, postcode: bool = True
) -> tuple[Column, ...]:
    cols = [
        Column("forename", Kind.NAME, "Given name as recorded", Role.DIRECT_IDENTIFIER),
        Column("surname", Kind.NAME, "Family name as recorded", Role.DIRECT_IDENTIFIER),
        Column(
            "dob",
            Kind.DATE,
            "Date of birth",
            Role.DIRECT_IDENTIFIER,
            required=dob_required,
        ),
        Column("sex", Kind.CODE, "Recorded sex", Role.QUASI_IDENTIFIER, codes=SEX),
    ]
    if address:
        cols.append(_address_line("First line of address"))
    if postcode:
        cols.append(_POSTCODE)
    return tuple(cols)


_DI = Role.DIRECT_IDENTIFIER
_POSTCODE = Column("postcode", Kind.POSTCODE, "Postcode", _DI, required=False)


def _address_line(description: str) -> Column:
    return Column("address_line1", Kind.TEXT, description, _DI, required=False)


def _household_address(*, postcode: bool) -> tuple[Column, ...]:
    """The address a system holds but our extract contract had left out: optional, read
    when the file has it, and used only to form families (pipelines/link.py); it never
    reaches zone B (only a contract's required columns do, and never an identifier)."""
    line = _address_line("First line of the person's address")
    return (line, _POSTCODE) if postcode else (line,)


def _nhs(required: bool = False) -> Column:
    return Column(
        "nhs_number", Kind.NHS_NUMBER, "NHS number (10 digits)", Role.DIRECT_IDENTIFIER, required
    )


def _ethnicity() -> Column:
    return Column(
        "ethnicity", Kind.CODE, "DfE ethnicity code", Role.QUASI_IDENTIFIER, False, ETHNICITY
    )


CONTRACTS: dict[str, SourceContract] = {}


def _register(c: SourceContract) -> SourceContract:
    assert c.name not in CONTRACTS
    CONTRACTS[c.name] = c
    return c


EARLY_HELP = _register(
    SourceContract(
        name="early_help",
        title="Early Help case system",
        system="EHM",
        description="One row per person per Early Help episode (family-level work).",
        tells="referrals, Whole Family Assessments, plans, TAF reviews, closures, needs",
        columns=(
            Column("ehm_record_id", Kind.RECORD_ID, "Row key in the EHM extract", Role.KEY),
            Column("episode_id", Kind.TEXT, "EHM episode reference (shared by the family)"),
            Column("ehm_family_ref", Kind.TEXT, "EHM family group reference"),
            *_person(),
            _nhs(),
            _ethnicity(),
            Column("referral_date", Kind.DATE, "Date the referral was received"),
            Column("referral_source", Kind.CODE, "Who referred", codes=REFERRAL_SOURCES),
            Column(
                "assessment_date", Kind.DATE, "Whole Family Assessment completed", required=False
            ),
            Column("plan_start", Kind.DATE, "Team Around the Family plan started", required=False),
            Column("tafreviews", Kind.INT, "TAF reviews held", required=False),
            Column("closure_date", Kind.DATE, "Episode closed", required=False),
            Column(
                "closure_reason",
                Kind.CODE,
                "Why the episode closed",
                required=False,
                codes=tuple(EH_CLOSURE_LABELS),
            ),
            Column(
                "stepped_down_from_csc", Kind.FLAG, "Episode began as a step-down from social care"
            ),
            Column(
                "needs", Kind.CODES, "Needs identified at assessment", codes=NEEDS, required=False
            ),
            # Supporting Families claims need a lead practitioner for the family (programme
            # guidance 2022 to 2025, chapter 5). A staff reference, not a name; blank where
            # none was allocated. Derive uses only whether one was.
            Column(
                "lead_practitioner",
                Kind.TEXT,
                "Staff reference of the family's lead practitioner (blank: none allocated)",
                required=False,
            ),
        ),
    )
)

FRONT_DOOR = _register(
    SourceContract(
        name="front_door",
        title="Front Door contacts",
        system="MASH / Front Door",
        description="One row per contact about a child.",
        tells="contacts, source, decision",
        date_formats=("%Y-%m-%d", "%d/%m/%Y"),
        columns=(
            Column("contact_id", Kind.RECORD_ID, "Contact reference", Role.KEY),
            *_person(),
            Column("contact_date", Kind.DATE, "Date the contact was received"),
            Column("contact_source", Kind.CODE, "Who made contact", codes=REFERRAL_SOURCES),
            Column(
                "decision",
                Kind.CODE,
                "Outcome of the contact",
                codes=tuple(FRONT_DOOR_DECISION_LABELS),
            ),
        ),
    )
)

SOCIAL_CARE = _register(
    SourceContract(
        name="social_care",
        title="Children's social care",
        system="Liquidlogic-like LCS",
        description="One row per referral episode, CIN-census style.",
        tells="referrals, assessments, s47 enquiries, CIN and CP plans, looked-after episodes",
        columns=(
            Column("csc_record_id", Kind.RECORD_ID, "Referral episode key", Role.KEY),
            Column("lcs_person_id", Kind.TEXT, "LCS person number", Role.DIRECT_IDENTIFIER),
            *_person(address=False),
            _nhs(),
            _ethnicity(),
            Column("referral_date", Kind.DATE, "Referral date"),
            Column("referral_source", Kind.CODE, "Referral source", codes=REFERRAL_SOURCES),
            Column("primary_need", Kind.CODE, "CIN primary need code", codes=CIN_NEED),
            Column("assessment_start", Kind.DATE, "Assessment started", required=False),
            Column("assessment_authorised", Kind.DATE, "Assessment authorised", required=False),
            Column("s47_start", Kind.DATE, "Section 47 enquiry started", required=False),
            Column("cp_plan_start", Kind.DATE, "Child protection plan started", required=False),
            Column("cp_plan_end", Kind.DATE, "Child protection plan ended", required=False),
            Column(
                "cp_category",
                Kind.CODE,
                "CP category of abuse",
                required=False,
                codes=("NEGLECT", "PHYSICAL", "EMOTIONAL", "SEXUAL", "MULTIPLE"),
            ),
            Column("cla_start", Kind.DATE, "Became looked after", required=False),
            Column("cla_end", Kind.DATE, "Ceased to be looked after", required=False),
            Column("closure_date", Kind.DATE, "Episode closed", required=False),
            Column(
                "closure_reason",
                Kind.CODE,
                "Closure reason",
                required=False,
                codes=("RC1", "RC2", "RC3", "RC4", "RC5", "RC6", "RC7", "RC8", "STEP_DOWN_EH"),
            ),
        ),
    )
)

# Contact relationship to the pupil, modelled on the school census common basic data
# set's list (a subset): parent, step-parent, foster carer, other carer, other relative,
# childminder, social worker, other.
SCHOOL_CONTACT_RELATIONSHIPS = ("PAR", "STP", "FOS", "CAR", "REL", "CHM", "SWR", "OTH")


def _school_contact(k: int) -> tuple[Column, ...]:
    """Priority-k parent/carer contact of a pupil, as the school recorded it (may be out
    of date: schools update contacts when a family tells them)."""
    di = Role.DIRECT_IDENTIFIER
    return (
        Column(f"contact{k}_forename", Kind.NAME, f"Contact {k}: given name", di, False),
        Column(f"contact{k}_surname", Kind.NAME, f"Contact {k}: family name", di, False),
        Column(
            f"contact{k}_relationship",
            Kind.CODE,
            f"Contact {k}: relationship to the pupil",
            required=False,
            codes=SCHOOL_CONTACT_RELATIONSHIPS,
        ),
        Column(f"contact{k}_address_line1", Kind.TEXT, f"Contact {k}: address", di, False),
        Column(f"contact{k}_postcode", Kind.POSTCODE, f"Contact {k}: postcode", di, False),
        Column(f"contact{k}_phone", Kind.PHONE, f"Contact {k}: telephone", di, False),
    )


SCHOOL_CENSUS = _register(
    SourceContract(
        name="school_census",
        title="School census and attendance",
        system="Synergy-like education system",
        description="One row per pupil per academic year (spring census plus attendance).",
        tells="school, FSM, SEN/EHCP, sessions missed, suspensions, exclusions",
        columns=(
            Column("census_record_id", Kind.RECORD_ID, "Row key", Role.KEY),
            Column("upn", Kind.UPN, "Unique Pupil Number", Role.DIRECT_IDENTIFIER, required=False),
            *_person(address=False),
            _ethnicity(),
            Column("academic_year", Kind.TEXT, "Academic year, e.g. 2023/24"),
            Column("school_urn", Kind.TEXT, "School URN"),
            Column("ncyear", Kind.INT, "National curriculum year group"),
            Column("fsm_eligible", Kind.FLAG, "Eligible for free school meals"),
            Column("sen_provision", Kind.CODE, "SEN provision", codes=("N", "K", "E")),
            Column("sessions_possible", Kind.INT, "Sessions possible"),
            Column("sessions_missed", Kind.INT, "Sessions missed (all absence)"),
            Column("suspensions", Kind.INT, "Suspensions in the year"),
            Column("permanent_exclusion", Kind.FLAG, "Permanently excluded in the year"),
        ),
        # The education system's pupil record also holds the home address and the
        # parent/carer contacts schools keep (name, relationship, address, phone, in
        # priority order). They are read when the extract has them and used only to form
        # families (pipelines/link.py); none of them reaches zone B.
        optional_columns=(
            Column(
                "address_line1",
                Kind.TEXT,
                "Pupil's home address, first line",
                Role.DIRECT_IDENTIFIER,
                required=False,
            ),
            *(col for k in (1, 2) for col in _school_contact(k)),
        ),
    )
)

EARLY_YEARS = _register(
    SourceContract(
        name="early_years",
        title="Early years",
        system="Early years funding system",
        description="One row per child per funded term.",
        tells="2-year-old and 3-4-year-old funded places, DAF, SEN",
        columns=(
            Column("ey_record_id", Kind.RECORD_ID, "Row key", Role.KEY),
            *_person(address=False),
            Column("term", Kind.TEXT, "Funding term, e.g. 2023-AUT"),
            Column(
                "funding_type",
                Kind.CODE,
                "Funded entitlement",
                codes=("2YO", "3-4YO_UNIVERSAL", "3-4YO_EXTENDED"),
            ),
            Column("funded_hours", Kind.INT, "Funded hours per week"),
            Column("daf", Kind.FLAG, "Disability access fund"),
            Column("sen_support", Kind.FLAG, "SEN support in setting"),
            Column("provider_urn", Kind.TEXT, "Provider reference"),
        ),
        # The funding system also holds the child's address and, for a checked claim
        # (two-year-old places, the 30-hour extended entitlement), the parent or carer who
        # claims, with the details the eligibility check matches on. Families only.
        optional_columns=(
            *_household_address(postcode=False),
            Column("claimant_forename", Kind.NAME, "Claimant's given name", _DI, False),
            Column("claimant_surname", Kind.NAME, "Claimant's family name", _DI, False),
            Column("claimant_dob", Kind.DATE, "Claimant's date of birth", _DI, False),
            Column("claimant_ni_number", Kind.NI_NUMBER, "Claimant's NI number", _DI, False),
        ),
    )
)

POLICE = _register(
    SourceContract(
        name="police",
        title="Police",
        system="Police records management system",
        description="One row per person per incident.",
        tells="crime, anti-social behaviour, domestic abuse incidents, role",
        date_formats=("%d/%m/%Y", "%Y-%m-%d", "%d-%b-%Y"),
        columns=(
            Column("police_record_id", Kind.RECORD_ID, "Row key", Role.KEY),
            Column("incident_ref", Kind.TEXT, "Incident reference"),
            *_person(dob_required=False),
            Column("incident_date", Kind.DATE, "Date of incident"),
            Column(
                "incident_type",
                Kind.CODE,
                "Incident type",
                codes=(
                    "DOMESTIC_ABUSE",
                    "ASB",
                    "VIOLENCE",
                    "THEFT",
                    "CRIMINAL_DAMAGE",
                    "DRUGS",
                    "OTHER",
                ),
            ),
            Column(
                "role",
                Kind.CODE,
                "Person's role",
                codes=("VICTIM", "SUSPECT", "WITNESS", "CHILD_PRESENT"),
            ),
        ),
    )
)

YOUTH_JUSTICE = _register(
    SourceContract(
        name="youth_justice",
        title="Youth justice",
        system="Youth justice case system",
        description="One row per offence outcome.",
        tells="offences, outcomes",
        columns=(
            Column("yj_record_id", Kind.RECORD_ID, "Row key", Role.KEY),
            *_person(address=False, postcode=False),
            Column("offence_date", Kind.DATE, "Date of offence"),
            Column(
                "offence_category",
                Kind.CODE,
                "Offence category",
                codes=("VIOLENCE", "THEFT", "DRUGS", "CRIMINAL_DAMAGE", "MOTORING", "OTHER"),
            ),
            Column(
                "outcome",
                Kind.CODE,
                "Outcome",
                codes=(
                    "COMMUNITY_RESOLUTION",
                    "YOUTH_CAUTION",
                    "YCC",
                    "REFERRAL_ORDER",
                    "YRO",
                    "CUSTODY",
                ),
            ),
        ),
        # The case system records the young person's address (families only).
        optional_columns=_household_address(postcode=True),
    )
)

DWP = _register(
    SourceContract(
        name="dwp",
        title="DWP",
        system="DWP benefit data share",
        description="One row per out-of-work benefit spell.",
        tells="out-of-work benefit spells",
        columns=(
            Column("dwp_record_id", Kind.RECORD_ID, "Row key", Role.KEY),
            Column(
                # Not required: a spell with a mistyped NI number still links on name and DOB.
                "ni_number",
                Kind.NI_NUMBER,
                "National Insurance number",
                Role.DIRECT_IDENTIFIER,
                required=False,
            ),
            *_person(address=False),
            Column("benefit", Kind.CODE, "Benefit", codes=("UC_NO_WORK", "ESA", "JSA", "IS")),
            Column("spell_start", Kind.DATE, "Spell start"),
            Column("spell_end", Kind.DATE, "Spell end", required=False),
        ),
        # The data share carries the claimant's address (families only).
        optional_columns=_household_address(postcode=False),
    )
)

ADULT_SOCIAL_CARE = _register(
    SourceContract(
        name="adult_social_care",
        title="Adult social care",
        system="Adult social care case system",
        description="One row per service received.",
        tells="services received",
        columns=(
            Column("asc_record_id", Kind.RECORD_ID, "Row key", Role.KEY),
            _nhs(required=False),
            *_person(address=False, postcode=False),
            Column(
                "service_type",
                Kind.CODE,
                "Service",
                codes=(
                    "HOME_CARE",
                    "RESIDENTIAL",
                    "DIRECT_PAYMENT",
                    "DAY_CARE",
                    "REABLEMENT",
                    "CARER_SUPPORT",
                ),
            ),
            Column(
                "primary_support_reason",
                Kind.CODE,
                "Primary support reason",
                codes=(
                    "PHYSICAL",
                    "MENTAL_HEALTH",
                    "LEARNING_DISABILITY",
                    "MEMORY",
                    "SUBSTANCE",
                    "SOCIAL",
                ),
            ),
            Column("service_start", Kind.DATE, "Service start"),
            Column("service_end", Kind.DATE, "Service end", required=False),
        ),
        # The case system records the person's address (families only).
        optional_columns=_household_address(postcode=True),
    )
)

HOUSING = _register(
    SourceContract(
        name="housing",
        title="Housing",
        system="Housing options / tenancy system",
        description="One row per housing case.",
        tells="homelessness duties, rent arrears, temporary accommodation",
        date_formats=("%d/%m/%Y", "%Y-%m-%d"),
        columns=(
            Column("housing_case_id", Kind.RECORD_ID, "Case reference", Role.KEY),
            *_person(),
            Column(
                "case_type",
                Kind.CODE,
                "Case type",
                codes=(
                    "PREVENTION_DUTY",
                    "RELIEF_DUTY",
                    "MAIN_DUTY",
                    "RENT_ARREARS",
                    "TEMP_ACCOMMODATION",
                ),
            ),
            Column("case_start", Kind.DATE, "Case opened"),
            Column("case_end", Kind.DATE, "Case closed", required=False),
        ),
    )
)

NEET = _register(
    SourceContract(
        name="neet",
        title="NEET tracking",
        system="Client caseload information system",
        description="One row per young person per monthly status return (16-18).",
        tells="16-18 education, employment or training status",
        columns=(
            Column("neet_record_id", Kind.RECORD_ID, "Row key", Role.KEY),
            *_person(address=False),
            Column("status_month", Kind.TEXT, "Month of the status, YYYY-MM"),
            Column(
                "activity",
                Kind.CODE,
                "Activity group",
                codes=("EDUCATION", "APPRENTICESHIP", "EMPLOYMENT", "NEET", "UNKNOWN"),
            ),
        ),
        # CCIS records the young person's address (families only).
        optional_columns=_household_address(postcode=False),
    )
)

HEALTH = _register(
    SourceContract(
        name="health",
        title="Health (mental health, substance use)",
        system="NHS trust data share",
        description="One row per service contact; NHS number is the only identifier.",
        tells="mental health and substance-use service contacts",
        columns=(
            Column("health_record_id", Kind.RECORD_ID, "Row key", Role.KEY),
            _nhs(required=True),
            Column("contact_date", Kind.DATE, "Contact date"),
            Column(
                "service",
                Kind.CODE,
                "Service",
                codes=("CAMHS", "ADULT_MH", "PERINATAL_MH", "SUBSTANCE_MISUSE"),
            ),
        ),
        # A GP registration carries the patient's address and postcode (families only).
        optional_columns=_household_address(postcode=True),
    )
)

OBJECTIONS = _register(
    SourceContract(
        name="objections",
        title="Objections register",
        system="Information governance register",
        description=(
            "People who objected to their data being used for research or planning. Matched "
            "on any usable identifier; a row is never quarantined while one identifier is good."
        ),
        tells="people excluded from research extracts and, by scope, from statistics",
        columns=(
            Column("objection_id", Kind.RECORD_ID, "Register reference", Role.KEY),
            *_person(),
            _nhs(),
            Column("date_received", Kind.DATE, "Objection received (applies from this date)"),
            Column(
                "scope",
                Kind.CODE,
                "ALL_RESEARCH: left out of research extracts; PLANNING_AND_RESEARCH: left out "
                "of research extracts and of every published statistic",
                codes=OBJECTION_SCOPES,
            ),
        ),
        # A register often records whichever number the person gave.
        optional_columns=(
            Column(
                "ni_number",
                Kind.NI_NUMBER,
                "National Insurance number",
                Role.DIRECT_IDENTIFIER,
                required=False,
            ),
            Column("upn", Kind.UPN, "Unique Pupil Number", Role.DIRECT_IDENTIFIER, required=False),
            Column(
                "lcs_person_id",
                Kind.TEXT,
                "Social care person number",
                Role.DIRECT_IDENTIFIER,
                required=False,
            ),
        ),
    )
)


def all_contracts() -> Iterator[SourceContract]:
    return iter(CONTRACTS.values())


def get_contract(name: str) -> SourceContract:
    if name in CONTRACTS:
        return CONTRACTS[name]
    # The statutory returns' tables are sources too, read from their own folder
    # (pipelines/returns); imported here, late, because their contracts use this module.
    from pipelines.returns.tables import RETURN_CONTRACTS

    if name in RETURN_CONTRACTS:
        return RETURN_CONTRACTS[name]
    raise KeyError(f"unknown source {name!r}; known: {', '.join(CONTRACTS)}")
