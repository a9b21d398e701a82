"""The measure registry: every published measure with its title, definition, unit,
allowed breakdowns, denominator, footnotes and the function that builds it, in
publication order. Definitions cite the national guidance they follow.

The registry is data (`measures.toml` beside this module); `load_measures` reads and
validates it at import, gathering every problem (unknown keys, breakdowns, functions or
{NAME}s in the text, a denominator that is not a measure, a name defined twice) into one
`MeasureRegistryError` that names the file and the entry. This module holds only the
functions an entry may name as its `build`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

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
from registry.dimensions import DIMENSION_NAMES
from registry.errors import RulesFileError
from registry.measures import Denominator, MeasureMeta

# The registry itself (titles, definitions, units, breakdowns, denominators, footnotes and
# which function builds each measure) is data: measures.toml beside this module, read and
# validated at import. This module holds only the functions it may name.
MEASURES_PATH = Path(__file__).with_name("measures.toml")
# Groups of breakdowns a measure may name instead of listing each dimension.
DIMENSION_GROUPS: dict[str, tuple[str, ...]] = {
    "GEO": GEO,
    "PERSON": PERSON,
    "TIME": TIME,
    "SNAPSHOT": SNAPSHOT_DIMS,
    "CARE_LEAVER": CARE_LEAVER_DIMS,
}
Build = Callable[[ZoneBFrames], pl.DataFrame]


def objections_received(zb: ZoneBFrames) -> pl.DataFrame:
    """One row per person whose objection covers statistics, dated by when it was received
    (objections received after the data as-at date count from the period received)."""
    p = zb.persons.filter(
        pl.col("objected_statistics") & pl.col("objection_received").is_not_null()
    )
    df = p.with_columns(*time_dims("objection_received"), _unit("objection", pl.col("person_id")))
    return _select(df, TIME)


BUILDERS: dict[str, Build] = {
    f.__name__: f
    for f in (
        contacts,
        cin_referrals,
        cin_rereferrals,
        assessments_completed,
        assessments_within_45_days,
        s47_enquiries,
        cp_plans_started,
        cp_plans_second_or_subsequent,
        cp_plans_ended,
        cp_plans_ended_after_2_years,
        child_population,
        cin_at_31_march,
        cp_plans_at_31_march,
        eh_referrals,
        eh_step_up,
        eh_step_down,
        eh_closures,
        whole_family_assessments,
        eh_family_rereferrals,
        sf_families_worked_with,
        sf_needs_at_entry,
        sf_families_closed_judgeable,
        sf_families_with_progress,
        sf_claim_reviews,
        sf_claims,
        sf_needs_reviewed,
        sf_needs_sustained,
        lac_at_31_march,
        lac_3_placements,
        lac_started,
        lac_ceased,
        adoptions,
        lac_missing_incidents,
        lac_went_missing,
        care_leavers,
        care_leavers_eet,
        care_leavers_suitable_accommodation,
        objections_received,
    )
}
# Builders of a `for_each = "claim_rule"` entry: called with the rule's key.
RULE_BUILDERS: dict[str, Callable[[str], Build]] = {"rule_met": _rule_met}
SERVICES = ("looked_after",)  # an entry's optional `service` (LAC_MEASURES)

_REQUIRED = ("name", "title", "unit", "breakdowns", "definition", "build")
_OPTIONAL = ("share_of", "denominator", "complete_after_days", "footnotes", "service", "for_each")
_DENOMINATOR_KEYS = ("measure", "per", "decimals", "subset")


class MeasureRegistryError(RulesFileError):
    """The measure registry file is invalid; every problem is listed."""


@dataclass(frozen=True)
class Registry:
    measures: dict[str, Measure]  # publication order
    looked_after: tuple[str, ...]  # names of the measures from the SSDA903 return
    objections: Measure


def _fill(text: object, values: Mapping[str, str], where: str, problems: list[str]) -> str:
    """`text` with each {NAME} replaced from `values` (the [text] table, or a claim
    rule's fields)."""
    if not isinstance(text, str):
        problems.append(f"{where}: must be text, got {type(text).__name__}")
        return ""
    try:
        return text.format_map(values)
    except KeyError as e:
        problems.append(f"{where}: names {{{e.args[0]}}}, which is not defined")
    except (ValueError, IndexError) as e:
        problems.append(f"{where}: a brace that is not a {{NAME}} ({e})")
    return text


def _texts(raw: object, problems: list[str]) -> dict[str, str]:
    """The [text] table, each value filled from the entries above it."""
    if not isinstance(raw, dict):
        problems.append("text: must be a table")
        return {}
    out: dict[str, str] = {}
    for key, value in raw.items():
        out[key] = _fill(value, out, f"text.{key}", problems)
    return out


def _breakdowns(raw: object, where: str, problems: list[str]) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        problems.append(f"{where}: breakdowns must be a list of dimension or group names")
        return ()
    out: list[str] = []
    for name in raw:
        if name in DIMENSION_GROUPS:
            out.extend(DIMENSION_GROUPS[name])
        elif name in DIMENSION_NAMES:
            out.append(name)
        else:
            problems.append(
                f"{where}: unknown breakdown {name!r}; groups: {', '.join(DIMENSION_GROUPS)}; "
                f"dimensions: {', '.join(DIMENSION_NAMES)}"
            )
    if len(set(out)) != len(out):
        problems.append(f"{where}: a breakdown is named twice")
    return tuple(out)


def _whole(x: object, *, least: int) -> TypeGuard[int]:
    return isinstance(x, int) and not isinstance(x, bool) and x >= least


def _denominator(entry: Mapping[str, Any], where: str, problems: list[str]) -> Denominator | None:
    share, den = entry.get("share_of"), entry.get("denominator")
    if share is not None and den is not None:
        problems.append(f"{where}: give share_of or denominator, not both")
        return None
    if share is not None:
        if not isinstance(share, str):
            problems.append(f"{where}: share_of must be a measure name")
            return None
        # A percentage of `share`, whose records include every record of the numerator.
        return Denominator(share, 100, 1, subset=True)
    if den is None:
        return None
    if not isinstance(den, dict):
        problems.append(f"{where}: denominator must be a table")
        return None
    unknown = sorted(set(den) - set(_DENOMINATOR_KEYS))
    if unknown:
        problems.append(f"{where}: unknown denominator key(s) {unknown}")
    measure, per, decimals = den.get("measure"), den.get("per"), den.get("decimals", 1)
    subset = den.get("subset", False)
    if (
        isinstance(measure, str)
        and _whole(per, least=1)
        and _whole(decimals, least=0)
        and isinstance(subset, bool)
    ):
        return Denominator(measure, per, decimals, subset=subset)
    problems.append(
        f"{where}: denominator needs measure (text), per (a positive whole number), "
        "optional decimals (a whole number) and subset (true or false)"
    )
    return None


def _complete_after(raw: object, where: str, problems: list[str]) -> int:
    if raw is None:
        return 0
    if raw == "sustain_days":  # the need rules' "sustained" (need_outcomes.toml)
        return SUSTAIN_DAYS
    if _whole(raw, least=0):
        return raw
    problems.append(f"{where}: complete_after_days must be a whole number or 'sustain_days'")
    return 0


def _measure(
    entry: Mapping[str, Any],
    where: str,
    texts: Mapping[str, str],
    build: Build | None,
    problems: list[str],
) -> tuple[MeasureMeta, Measure | None]:
    """The entry's metadata (for cross-checks even when it has problems) and, when it has
    none, the measure."""
    n = len(problems)
    name = _fill(entry["name"], texts, f"{where}.name", problems)
    fill = {k: _fill(entry[k], texts, f"{where}.{k}", problems) for k in ("title", "unit")}
    definition = _fill(entry["definition"], texts, f"{where}.definition", problems)
    notes = entry.get("footnotes", [])
    if not isinstance(notes, list):
        problems.append(f"{where}: footnotes must be a list of text")
        notes = []
    footnotes = tuple(
        _fill(x, texts, f"{where}.footnotes[{i}]", problems) for i, x in enumerate(notes)
    )
    meta = MeasureMeta(
        name=name,
        title=fill["title"],
        definition=definition,
        unit=fill["unit"],
        breakdowns=_breakdowns(entry["breakdowns"], where, problems),
        denominator=_denominator(entry, where, problems),
        footnotes=footnotes,
        complete_after_days=_complete_after(entry.get("complete_after_days"), where, problems),
    )
    if build is None or len(problems) > n:
        return meta, None
    return meta, Measure(meta, build)


def parse_measures(raw: Mapping[str, Any], path: Path) -> Registry:
    """The registry from a parsed measures.toml; every problem raised at once."""
    problems: list[str] = []
    unknown = sorted(set(raw) - {"version", "text", "measure", "objections"})
    if unknown:
        problems.append(f"unknown top-level key(s) {unknown}")
    if raw.get("version") != 1:
        problems.append(f"version must be 1, got {raw.get('version')!r}")
    texts = _texts(raw.get("text", {}), problems)
    entries = raw.get("measure", [])
    if not isinstance(entries, list) or not entries:
        problems.append("no [[measure]] entries")
        entries = []
    names: dict[str, MeasureMeta] = {}  # every entry's, for the cross-checks
    measures: dict[str, Measure] = {}
    looked_after: list[str] = []
    for i, entry in enumerate(entries, 1):
        where = f"measure {i} ({entry.get('name', '?')})" if isinstance(entry, dict) else ""
        if not isinstance(entry, dict):
            problems.append(f"measure {i}: must be a table")
            continue
        bad = sorted(set(entry) - set(_REQUIRED) - set(_OPTIONAL))
        missing = [k for k in _REQUIRED if k not in entry]
        if bad:
            problems.append(f"{where}: unknown key(s) {bad}")
        if missing:
            problems.append(f"{where}: missing key(s) {missing}")
            continue
        service = entry.get("service")
        if service is not None and service not in SERVICES:
            problems.append(f"{where}: unknown service {service!r}; known: {SERVICES}")
        each = entry.get("for_each")
        built: list[tuple[MeasureMeta, Measure | None]] = []
        if each is None:
            build = BUILDERS.get(entry["build"])
            if build is None:
                problems.append(f"{where}: no measure function {entry['build']!r}")
            built.append(_measure(entry, where, texts, build, problems))
        elif each == "claim_rule":
            factory = RULE_BUILDERS.get(entry["build"])
            if factory is None:
                problems.append(f"{where}: no claim rule builder {entry['build']!r}")
            for rule in CLAIM_RULES:
                fields = {
                    **texts,
                    "rule_key": rule.key,
                    "rule_title_sentence": rule.title[0].lower() + rule.title[1:],
                    "rule_title_lower": rule.title.lower(),
                    "rule_guidance": rule.guidance,
                }
                build = factory(rule.key) if factory else None
                built.append(_measure(entry, f"{where}[{rule.key}]", fields, build, problems))
        else:
            problems.append(f"{where}: for_each must be 'claim_rule', got {each!r}")
        for meta, m in built:
            if meta.name in names:
                problems.append(f"{where}: measure {meta.name!r} is defined twice")
            names[meta.name] = meta
            if m is not None:
                measures[meta.name] = m
            if service == "looked_after":
                looked_after.append(meta.name)
    for meta in names.values():
        den = meta.denominator
        if den is not None and den.measure not in names:
            problems.append(f"{meta.name}: denominator {den.measure!r} is not a measure")
    objections: Measure | None = None
    obj = raw.get("objections")
    if not isinstance(obj, dict):
        problems.append("[objections]: missing (the objections-received measure)")
    else:
        bad = sorted(set(obj) - set(_REQUIRED))
        missing = [k for k in _REQUIRED if k not in obj]
        if bad or missing:
            problems.append(f"[objections]: unknown key(s) {bad}, missing key(s) {missing}")
        else:
            build = BUILDERS.get(obj["build"])
            if build is None:
                problems.append(f"[objections]: no measure function {obj['build']!r}")
            objections = _measure(obj, "[objections]", texts, build, problems)[1]
    if problems or objections is None:
        raise MeasureRegistryError(path, problems)
    return Registry(measures, tuple(looked_after), objections)


def load_measures(path: Path = MEASURES_PATH) -> Registry:
    return parse_measures(MeasureRegistryError.read_toml(path), path)


_REGISTRY = load_measures()
MEASURES: dict[str, Measure] = _REGISTRY.measures
LAC_MEASURES: tuple[Measure, ...] = tuple(MEASURES[n] for n in _REGISTRY.looked_after)
OBJECTIONS_MEASURE: Measure = _REGISTRY.objections
