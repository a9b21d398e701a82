"""What differs between collection years, as data.

A return is validated only against the rules of its own collection year (the year ending
31 March: 2026 is 2025 to 2026). A year not listed here is not validated at all: the file
stops the run with a message saying that year's rules are not implemented, rather than
being checked against another year's code lists.

Sources, read with the search tool (the open validators are the reference):
- CIN census: liia-tools' `CIN_schema_2021.xsd` to `CIN_schema_2024.xsd` (code lists:
  ReferralSource gains 5D and ReasonForClosure RC9 in 2022 to 2023); Data to Insight's
  csc-validator-be-cin rulesets `cin2022_23` to `cin2025_26` (from 2024 to 2025 the
  child's `Sex` is M, F or U, replacing `GenderCurrent` 1, 2, 0 or 9: rule 4180; LA
  child IDs of at most 20 alphanumeric characters: rules 1570 and 1580).
- SSDA903: Data to Insight's csc-validator-be-903 rulesets `lac2022_23` to `lac2025_26`
  (SEX 1 or 2 until 2023 to 2024, then M, F or U: rule 101; PLACE gains K3 in 2024 to
  2025, and in 2025 to 2026 loses H5, P2 and Z1 for Z11 to Z14: rules 146 and 178) and
  liia-tools' `SSDA903_schema_2022.yml` to `SSDA903_schema_2024.yml`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

# --- CIN census code lists ---
_REFERRAL_SOURCES = (
    "1A", "1B", "1C", "1D", "2A", "2B", "3A", "3B", "3C", "3D", "3E", "3F",
    "4", "5A", "5B", "5C", "6", "7", "8", "9", "10",
)  # fmt: skip
_CLOSURE_REASONS = ("RC1", "RC2", "RC3", "RC4", "RC5", "RC6", "RC7", "RC8")
PRIMARY_NEEDS = ("N0", "N1", "N2", "N3", "N4", "N5", "N6", "N7", "N8", "N9")
ABUSE_CATEGORIES = ("NEG", "PHY", "SAB", "EMO", "MUL")
GENDER_CURRENT = ("1", "2", "0", "9")  # male, female, not recorded or unborn, indeterminate
SEX_MFU = ("M", "F", "U")
DISABILITIES = (
    "NONE", "MOB", "HAND", "PC", "INC", "COMM", "LD", "HEAR", "VIS", "BEH", "CON", "AUT", "DDA",
)  # fmt: skip
UPN_UNKNOWN = ("UN1", "UN2", "UN3", "UN4", "UN5", "UN6", "UN7")
YES_NO = ("true", "false", "TRUE", "FALSE", "0", "1")

# --- SSDA903 code lists ---
RNE = ("S", "P", "L", "T", "U", "B")
LEGAL_STATUS = ("C1", "C2", "D1", "E1", "V2", "V3", "V4", "J1", "J2", "J3", "L1", "L2", "L3")
CIN_903 = ("N1", "N2", "N3", "N4", "N5", "N6", "N7", "N8")
_PLACE_TO_2024 = (
    "A3", "A4", "A5", "A6", "H5", "K1", "K2", "P1", "P2", "P3", "R1", "R2", "R3", "R5", "S1",
    "T0", "T1", "T2", "T3", "T4", "U1", "U2", "U3", "U4", "U5", "U6", "Z1",
)  # fmt: skip
_PLACE_2026 = (
    "A3", "A4", "A5", "A6", "K1", "K2", "K3", "P1", "P3", "R1", "R2", "R3", "R5", "S1",
    "T0", "T1", "T2", "T3", "T4", "U1", "U2", "U3", "U4", "U5", "U6", "Z11", "Z12", "Z13", "Z14",
)  # fmt: skip
PROVIDERS = ("PR0", "PR1", "PR2", "PR3", "PR4", "PR5")
REC = (
    "E11", "E12", "E2", "E3", "E4A", "E4B", "E13", "E41", "E45", "E46", "E47", "E48",
    "E5", "E6", "E7", "E8", "E9", "E14", "E15", "E16", "E17", "X1",
)  # fmt: skip
REASON_PLACE_CHANGE = (
    "CARPL", "CLOSE", "ALLEG", "STAND", "APPRR", "CREQB", "CREQO", "CHILD", "LAREQ",
    "PLACE", "CUSTOD", "OTHER",
)  # fmt: skip
REVIEW_CODES = ("PN0", "PN1", "PN2", "PN3", "PN4", "PN5", "PN6", "PN7")
IN_TOUCH = ("YES", "NO", "DIED", "REFU", "NREQ", "RHOM")
ACTIV = ("F1", "P1", "F2", "P2", "F4", "P4", "F5", "P5", "G4", "G5", "G6", "0")
ACCOM = (
    "B1", "B2", "C1", "C2", "D1", "D2", "E1", "E2", "G1", "G2", "H1", "H2", "K1", "K2",
    "R1", "R2", "S2", "T1", "T2", "U1", "U2", "V1", "V2", "W1", "W2", "X2", "Y1", "Y2",
    "Z1", "Z2", "0",
)  # fmt: skip
SDQ_REASONS = ("SDQ1", "SDQ2", "SDQ3", "SDQ4", "SDQ5")
ZERO_ONE = ("0", "1")
NB_ADOPTR = ("1", "2")
SEX_ADOPTR = ("M1", "F1", "MM", "FF", "MF")
LS_ADOPTR = ("L0", "L11", "L12", "L2", "L3", "L4")
REASON_PLACED_CEASED = ("RD1", "RD2", "RD3", "RD4")
PREV_PERM = ("P1", "P2", "P3", "P4", "Z1")
MISSING = ("M", "A")


@dataclass(frozen=True)
class YearRules:
    """The year-specific facts the rules read."""

    year: int  # the year ending 31 March
    codes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    cin_sex_element: str = "GenderCurrent"

    @property
    def start(self) -> date:
        return date(self.year - 1, 4, 1)

    @property
    def end(self) -> date:
        """The reference date: 31 March of the collection year."""
        return date(self.year, 3, 31)

    @property
    def label(self) -> str:
        return f"{self.year - 1} to {self.year}"


def _cin(year: int) -> YearRules:
    sources = _REFERRAL_SOURCES if year <= 2022 else (*_REFERRAL_SOURCES, "5D")
    closures = _CLOSURE_REASONS if year <= 2022 else (*_CLOSURE_REASONS, "RC9")
    sex = GENDER_CURRENT if year <= 2024 else SEX_MFU
    return YearRules(
        year,
        {"ReferralSource": sources, "ReasonForClosure": closures, "Sex": sex},
        "GenderCurrent" if year <= 2024 else "Sex",
    )


def _903(year: int) -> YearRules:
    place: tuple[str, ...]
    if year <= 2024:
        place = _PLACE_TO_2024
    elif year == 2025:
        place = (*_PLACE_TO_2024, "K3")
    else:
        place = _PLACE_2026
    no_provider = tuple(p for p in place if p.startswith(("T", "Z")))
    return YearRules(
        year,
        {
            "SEX": ("1", "2") if year <= 2024 else SEX_MFU,
            "PLACE": place,
            "NO_PROVIDER": no_provider,
        },
    )


CIN_YEARS: dict[int, YearRules] = {y: _cin(y) for y in range(2022, 2027)}
SSDA903_YEARS: dict[int, YearRules] = {y: _903(y) for y in range(2022, 2027)}


def implemented(years: dict[int, YearRules]) -> str:
    first, last = min(years), max(years)
    return f"{first - 1} to {first} up to {last - 1} to {last} (collection years {first}-{last})"
