"""Derive: zone B events -> record-level frames, one per published measure.

One module per service area (`children_in_need`, `early_help` with Supporting Families,
`looked_after`, `sf_claims`), their shared helpers (`common`), and two sets of rules held
as data: the measure registry (`measures.toml`, read by `measures`) and the
need-to-outcome rules (`need_outcomes.toml`, read by `need_rules`). This package
re-exports the names other modules use.

Each measure is a pure function from the zone B tables to a frame with one row
per counted unit (a contact, a referral, a child, a family), the unit's
persistent identity (`unit_id`, from which the disclosure-control record key is
derived) and its breakdown dimensions. The publish step aggregates these into
release cubes; nothing here is ever shown directly.

People whose objection covers statistics (scope PLANNING_AND_RESEARCH) are removed
before any measure is built (`exclude_objectors`); the objections received, by the
period received, are themselves a (protected) measure (`OBJECTIONS_MEASURE`).

Definitions follow the national guidance and say which, next to each measure in
`MEASURES` (title, definition, unit, breakdowns, footnotes). The rules every
measure shares:

- **Children** are people under 18 on the date counted (Children Act 1989 s.105;
  Working together to safeguard children 2023: "anyone who has not yet reached their
  18th birthday"). Measures that count children, or events about a child, leave out
  anyone 18 or over on that date; a person whose birth month is unknown stays in
  (age band "Not known"). Unborn children are not in the extracts.
- **Periods** are dated by the event the definition names and labelled by
  `registry.periods` (financial years and financial quarters). An event counts only
  from its source's coverage start (declared in the extract manifest, else inferred:
  `coverage_start`), so no period is published for which a source holds only the
  cases still open when its extract began; events before it still serve look-backs
  (a previous referral, a previous plan).
- **Rates per 10,000 children** divide by the children aged 0 to 17 in ONS's
  mid-year population estimates (reference data beside the extracts), as DfE's
  "Children in need" statistics do; not by the children known to services.
- **Working days** exclude weekends and England and Wales bank holidays (the
  `holidays` package, offline), as DfE's validation rules for the CIN census do.
- **Categories** are published as the labels of the code lists in
  `registry.codes` (six major ethnic groups, DfE age bands, ...), never raw codes.
"""

from __future__ import annotations

from dataclasses import replace

import polars as pl

from pipelines.derive.common import (
    SUSTAIN_DAYS,
    Measure,
    ZoneBFrames,
    birth_date,
    coverage_start,
    exclude_objectors,
    with_person_dims,
    working_days,
)
from pipelines.derive.early_help import need_outcomes
from pipelines.derive.measures import LAC_MEASURES, MEASURES, OBJECTIONS_MEASURE

__all__ = [
    "LAC_MEASURES", "MEASURES", "OBJECTIONS_MEASURE", "SUSTAIN_DAYS", "Measure", "ZoneBFrames",
    "birth_date", "coverage_start", "derive_all", "need_outcomes", "with_person_dims",
    "working_days",
]  # fmt: skip


def derive_all(zb: ZoneBFrames) -> tuple[dict[str, pl.DataFrame], int]:
    """Every measure's record-level frame, built without people whose objection covers
    statistics, and the objections measure itself.

    Returns the frames and the number of people excluded as objectors."""
    kept, objectors = exclude_objectors(zb)
    kept = replace(kept, reference=zb.reference)  # reference data is not about people
    frames = {name: m.build(kept) for name, m in MEASURES.items()}
    frames[OBJECTIONS_MEASURE.meta.name] = OBJECTIONS_MEASURE.build(zb)
    return frames, objectors.height
