"""Code lists and their published labels: defined once, here.

Each code list carries the human label it is published under, in the list's natural
order. The generator writes the codes, ingest validates them (through the source
contracts in `pipelines.contracts`, which import them from here), derive publishes the
labels, the privacy core generalises ethnicity by them and the release layer sorts by
this order. Pure data: this module imports nothing from the project.
"""

from __future__ import annotations

NOT_KNOWN = "Not known"

SEX_LABELS = {"F": "Female", "M": "Male", "U": NOT_KNOWN}
SEX = tuple(SEX_LABELS)
# DfE main ethnicity codes (school census / CIN census).
ETHNICITY = (
    "WBRI", "WIRI", "WOTH", "WIRT", "WROM", "MWBC", "MWBA", "MWAS", "MOTH",
    "AIND", "APKN", "ABAN", "AOTH", "CHNE", "BCRB", "BAFR", "BOTH", "OOTH",
    "REFU", "NOBT",
)  # fmt: skip
# Each code's major ethnic group (the published breakdown and the first generalisation).
ETHNIC_MAJOR_GROUP = {
    "WBRI": "White", "WIRI": "White", "WOTH": "White", "WIRT": "White", "WROM": "White",
    "MWBC": "Mixed", "MWBA": "Mixed", "MWAS": "Mixed", "MOTH": "Mixed",
    "AIND": "Asian", "APKN": "Asian", "ABAN": "Asian", "AOTH": "Asian", "CHNE": "Asian",
    "BCRB": "Black", "BAFR": "Black", "BOTH": "Black",
    "OOTH": "Other", "REFU": NOT_KNOWN, "NOBT": NOT_KNOWN,
}  # fmt: skip
assert set(ETHNIC_MAJOR_GROUP) == set(ETHNICITY)
# The six published groups, in the order DfE tables list them (refused and not yet
# obtained are published together as "Not known").
ETHNIC_GROUPS = ("White", "Mixed", "Asian", "Black", "Other", NOT_KNOWN)
assert set(ETHNIC_MAJOR_GROUP.values()) == set(ETHNIC_GROUPS)

# Age on the date a record is counted, in the DfE children in need bands; a child is
# anyone under 18 (Children Act 1989 s.105; Working Together 2023, introduction).
AGE_BANDS = ("Under 1", "1-4", "5-9", "10-15", "16-17")
# Lower bound (years) of each band; 18 is where childhood ends.
AGE_BAND_FROM = {"Under 1": 0, "1-4": 1, "5-9": 5, "10-15": 10, "16-17": 16}
ADULT_AGE = 18

# Supporting Families headline needs (short codes used across sources), labelled with
# the ten headline outcomes of the National Supporting Families Outcome Framework
# (Supporting Families programme guidance 2022 to 2025, chapter 5).
NEED_LABELS = {
    "EDUCATION": "Getting a good education",
    "EARLY_YEARS": "Good early years development",
    "HEALTH": "Improved mental and physical health",
    "SUBSTANCE": "Better managed substance use",
    "RELATIONSHIPS": "Improved family relationships",
    "ABUSE_EXPLOITATION": "Children safe from abuse and exploitation",
    "CRIME": "Families diverted from crime",
    "DOMESTIC_ABUSE": "Safe from domestic abuse",
    "HOUSING": "Secure housing",
    "FINANCIAL": "Financial stability",
}
NEEDS = tuple(NEED_LABELS)
REFERRAL_SOURCE_LABELS = {
    "SCHOOL": "School",
    "HEALTH_VISITOR": "Health visitor",
    "GP": "GP",
    "POLICE": "Police",
    "SELF": "The child or young person",
    "FAMILY": "Family, friends or neighbours",
    "HOUSING": "Housing",
    "SOCIAL_CARE": "Children's social care",
    "ANON": "Anonymous",
    "OTHER": "Other",
}
REFERRAL_SOURCES = tuple(REFERRAL_SOURCE_LABELS)
FRONT_DOOR_DECISION_LABELS = {
    "NFA": "No further action",
    "INFO_ADVICE": "Information and advice",
    "EARLY_HELP": "Early Help",
    "SOCIAL_CARE": "Referral to children's social care",
}
EH_CLOSURE_LABELS = {
    "OUTCOMES_MET": "Outcomes met",
    "STEP_UP_CSC": "Stepped up to children's social care",
    "DISENGAGED": "Family disengaged",
    "MOVED_AWAY": "Moved away",
    "UNIVERSAL_SERVICES": "Stepped down to universal services",
    "OTHER": "Other",
}
# CIN census primary need codes N1..N9 (Children in need census guide, primary need
# code list), with DfE's published category names.
CIN_NEED_LABELS = {
    "N1": "Abuse or neglect",
    "N2": "Child's disability or illness",
    "N3": "Parental disability or illness",
    "N4": "Family in acute stress",
    "N5": "Family dysfunction",
    "N6": "Socially unacceptable behaviour",
    "N7": "Low income",
    "N8": "Absent parenting",
    "N9": "Cases other than children in need",
}
CIN_NEED = tuple(CIN_NEED_LABELS)
# SSDA903 reason episode ceased (REC), grouped as DfE publishes children who ceased to be
# looked after ('Children looked after in England including adoptions', reason ceased).
# X1 (a new episode starts the same day) ends an episode but not a period of care.
LAC_CEASED_LABELS = {
    "E4A": "Returned home to parents or relatives",
    "E4B": "Returned home to parents or relatives",
    "E11": "Adopted",
    "E12": "Adopted",
    "E45": "Special guardianship order",
    "E46": "Special guardianship order",
    "E47": "Special guardianship order",
    "E48": "Special guardianship order",
    "E41": "Child arrangements order",
    "E13": "Left care to live with relatives or others (no parental responsibility)",
    "E5": "Moved into independent living",
    "E6": "Moved into independent living",
    "E17": "Aged 18 and remained with current carers",
    "E7": "Transferred to adult social care",
    "E9": "Sentenced to custody",
    "E2": "Other",
    "E3": "Other",
    "E8": "Other",
    "E14": "Other",
    "E15": "Other",
    "E16": "Other",
}

# The documented categories of every published coded dimension, in natural order.
# Geography (locality, ward) comes from the postcode lookup and periods from
# `registry.periods`; every other published value must be one of these.
PUBLISHED_LEVELS: dict[str, tuple[str, ...]] = {
    "age_band": (*AGE_BANDS, NOT_KNOWN),
    "sex": tuple(SEX_LABELS.values()),
    "ethnicity": ETHNIC_GROUPS,
    "referral_source": (*REFERRAL_SOURCE_LABELS.values(), NOT_KNOWN),
    "decision": (*FRONT_DOOR_DECISION_LABELS.values(), NOT_KNOWN),
    "closure_reason": (*EH_CLOSURE_LABELS.values(), NOT_KNOWN),
    "need": (*NEED_LABELS.values(), NOT_KNOWN),
    "cin_category": (*CIN_NEED_LABELS.values(), NOT_KNOWN),
    "outcome": (*dict.fromkeys(LAC_CEASED_LABELS.values()), NOT_KNOWN),
}
# Objection scopes: research extracts only, or research extracts and statistics.
OBJECTION_SCOPES = ("ALL_RESEARCH", "PLANNING_AND_RESEARCH")
SCOPE_RESEARCH_ONLY, SCOPE_PLANNING_AND_RESEARCH = OBJECTION_SCOPES
