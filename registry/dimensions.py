"""The dimension registry: every breakdown a published table may use, with its title,
description, the coarser dimensions it nests in, and its documented categories in order.

The store keeps one cube column per dimension (adding one needs a migration,
`pipelines/migrations`); the release layer orders rows and hides structural zeros by it.
"""

from __future__ import annotations

from dataclasses import dataclass

from registry.codes import PUBLISHED_LEVELS


@dataclass(frozen=True)
class Dimension:
    name: str
    title: str
    description: str
    # Coarser dimensions this one nests in (ward -> locality): used to show only the
    # combinations that exist instead of a grid of structural zeros.
    parents: tuple[str, ...] = ()
    # The documented categories in their natural order (contracts.PUBLISHED_LEVELS):
    # tables list rows in this order ("Under 1" before "1-4"). Empty: natural sort.
    levels: tuple[str, ...] = ()


DIMENSIONS: tuple[Dimension, ...] = (
    # geography
    Dimension("locality", "Locality", "Council locality or area team"),
    Dimension("ward", "Ward", "Electoral ward", ("locality",)),
    Dimension("lsoa", "LSOA", "Lower layer super output area (2021)", ("ward",)),
    Dimension("imd_quintile", "IMD quintile", "Index of Multiple Deprivation quintile of the LSOA"),
    # person and family
    Dimension(
        "age_band",
        "Age band",
        "Age in whole years on the date counted (under 18: children only)",
        levels=PUBLISHED_LEVELS["age_band"],
    ),
    Dimension("sex", "Sex", "Recorded sex", levels=PUBLISHED_LEVELS["sex"]),
    Dimension(
        "ethnicity",
        "Ethnic group",
        "Major ethnic group (DfE main codes grouped)",
        levels=PUBLISHED_LEVELS["ethnicity"],
    ),
    Dimension(
        "sen", "SEN provision", "Special educational needs provision (none, SEN support, EHCP)"
    ),
    Dimension("fsm", "Free school meals", "Eligible for free school meals"),
    Dimension("school_phase", "School phase", "Early years, primary, secondary, post-16"),
    Dimension("family_type", "Family type", "Household composition of the family"),
    # period
    Dimension("year", "Year", "Calendar year"),
    Dimension("financial_year", "Financial year", "April to March"),
    Dimension(
        "quarter",
        "Quarter",
        "Financial quarter: 2025/26 Q1 is April to June 2025",
        ("financial_year",),
    ),
    Dimension("month", "Month", "Calendar month", ("quarter", "year", "financial_year")),
    # service
    Dimension(
        "referral_source",
        "Referral source",
        "Who made the referral or contact",
        levels=PUBLISHED_LEVELS["referral_source"],
    ),
    Dimension("decision", "Decision", "Front door decision", levels=PUBLISHED_LEVELS["decision"]),
    Dimension(
        "need",
        "Need",
        "Need identified at assessment (Supporting Families headline outcome)",
        levels=PUBLISHED_LEVELS["need"],
    ),
    Dimension(
        "cin_category",
        "CIN category",
        "Primary need at assessment (CIN census codes N1 to N9)",
        levels=PUBLISHED_LEVELS["cin_category"],
    ),
    Dimension(
        "plan_type", "Plan type", "Early Help, child in need, child protection, looked after"
    ),
    Dimension(
        "closure_reason",
        "Closure reason",
        "Why the episode closed",
        levels=PUBLISHED_LEVELS["closure_reason"],
    ),
    Dimension(
        "outcome",
        "Outcome",
        "Outcome recorded at closure or review (looked after: reason the period ceased)",
        levels=PUBLISHED_LEVELS["outcome"],
    ),
    Dimension("service", "Service", "Service or team"),
)
DIMENSION_NAMES: tuple[str, ...] = tuple(d.name for d in DIMENSIONS)
_BY_NAME = {d.name: d for d in DIMENSIONS}
_RESERVED = {"release_id", "measure", "n", "ckey"}
assert not _RESERVED & set(DIMENSION_NAMES)
assert all(p in _BY_NAME for d in DIMENSIONS for p in d.parents)


def dimension(name: str) -> Dimension:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(
            f"unknown dimension {name!r}; registry: {', '.join(DIMENSION_NAMES)}"
        ) from None
