"""The council's planning settings: who it is (EES codes), its statistical neighbours, its
Supporting Families targets, and which measures have a national equivalent.

Held as data, in TOML: `pipelines/planning/council.toml` (the demo county's values; a
council points `PORTAL_PLANNING_CONFIG` at its own copy) and
`pipelines/planning/comparisons.toml` (the measure -> EES indicator mapping; a council file
may name another with `comparisons_file`). Loading gathers every problem and reports them
together, naming the file and the setting.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.benchmarking import POLARITIES
from registry.periods import FORMATS
from registry.settings import ServiceSettings

PLANNING_CONFIG_ENV = "PORTAL_PLANNING_CONFIG"
PLANNING_DIR = Path(__file__).resolve().parent / "planning"
DEFAULT_COUNCIL = PLANNING_DIR / "council.toml"
DEFAULT_COMPARISONS = PLANNING_DIR / "comparisons.toml"
VALUE_KINDS = ("rate", "per_10000_children")


class PlanningConfigError(ValueError):
    """The planning settings are not valid; `problems` lists every one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid planning settings:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class Authority:
    name: str
    new_la_code: str
    old_la_code: str
    region_code: str
    region_name: str
    country_code: str
    country_name: str


@dataclass(frozen=True)
class Comparison:
    """Our measure and its national equivalent in the comparator data."""

    measure: str
    indicator: str
    value: str  # "rate" or "per_10000_children"
    polarity: str
    filters: Mapping[str, str] = field(default_factory=dict)
    dataset: str | None = None


@dataclass(frozen=True)
class NoEquivalent:
    reason: str
    measure: str | None = None
    measure_prefix: str | None = None

    def covers(self, name: str) -> bool:
        if self.measure is not None:
            return name == self.measure
        return self.measure_prefix is not None and name.startswith(self.measure_prefix)


@dataclass(frozen=True)
class PlanningConfig:
    authority: Authority
    neighbours: tuple[str, ...]
    neighbours_source: str
    targets: Mapping[str, int]  # financial year -> successful family outcomes
    comparisons: tuple[Comparison, ...]
    no_equivalent: tuple[NoEquivalent, ...]
    source: str  # the council file read

    def comparison(self, measure: str) -> Comparison | None:
        return next((c for c in self.comparisons if c.measure == measure), None)

    def why_not_compared(self, measure: str) -> str | None:
        hit = next((n for n in self.no_equivalent if n.covers(measure)), None)
        return hit.reason if hit else None


def _text(table: Mapping[str, Any], key: str, where: str, problems: list[str]) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}: {key} must be a non-empty text")
        return ""
    return value.strip()


def _read(path: Path, problems: list[str]) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        problems.append(f"{path}: cannot be read ({exc.strerror or exc})")
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"{path}: not valid TOML ({exc})")
    return {}


def parse_comparisons(
    raw: Mapping[str, Any], *, file: str, measures: frozenset[str] | None = None
) -> tuple[tuple[Comparison, ...], tuple[NoEquivalent, ...], list[str]]:
    """The mapping's [[compare]] and [[no_equivalent]] tables, and every problem."""
    problems: list[str] = []
    out: list[Comparison] = []
    seen: set[str] = set()
    for i, c in enumerate(raw.get("compare") or [], start=1):
        where = f"{file}: [[compare]] #{i}"
        if not isinstance(c, dict):
            problems.append(f"{where}: must be a table")
            continue
        measure = _text(c, "measure", where, problems)
        indicator = _text(c, "indicator", where, problems)
        value = c.get("value", "rate")
        polarity = c.get("polarity")
        filters = c.get("filters") or {}
        dataset = c.get("dataset")
        if measures is not None and measure and measure not in measures:
            problems.append(f"{where}: no published measure {measure!r}")
        if measure in seen:
            problems.append(f"{where}: {measure!r} is mapped twice")
        seen.add(measure)
        if value not in VALUE_KINDS:
            problems.append(f"{where}: value must be one of {', '.join(VALUE_KINDS)}")
        if polarity not in POLARITIES:
            problems.append(f"{where}: polarity must be one of {', '.join(POLARITIES)}")
        if not isinstance(filters, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in filters.items()
        ):
            problems.append(f"{where}: filters must map filter columns to values (text)")
            filters = {}
        if dataset is not None and not isinstance(dataset, str):
            problems.append(f"{where}: dataset must be text")
            dataset = None
        out.append(Comparison(measure, indicator, str(value), str(polarity), filters, dataset))
    none: list[NoEquivalent] = []
    for i, n in enumerate(raw.get("no_equivalent") or [], start=1):
        where = f"{file}: [[no_equivalent]] #{i}"
        if not isinstance(n, dict):
            problems.append(f"{where}: must be a table")
            continue
        reason = _text(n, "reason", where, problems)
        m, prefix = n.get("measure"), n.get("measure_prefix")
        if (m is None) == (prefix is None):
            problems.append(f"{where}: give either measure or measure_prefix")
            continue
        if m is not None and m in seen:
            problems.append(f"{where}: {m!r} is also in [[compare]]")
        if measures is not None and m is not None and m not in measures:
            problems.append(f"{where}: no published measure {m!r}")
        none.append(NoEquivalent(reason, m, prefix))
    return tuple(out), tuple(none), problems


def load_planning(
    path: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    measures: frozenset[str] | None = None,
) -> PlanningConfig:
    """The council file (`path`, else $PORTAL_PLANNING_CONFIG, else the demo's) and its
    comparisons mapping, validated; raises PlanningConfigError with every problem.
    `measures`: the published measure names the mapping may use."""
    chosen = path or ServiceSettings.load(environ).planning_config
    council_path = chosen or DEFAULT_COUNCIL
    problems: list[str] = []
    raw = _read(council_path, problems)
    file = str(council_path)
    auth = raw.get("authority") or {}
    if not isinstance(auth, dict):
        problems.append(f"{file}: [authority] must be a table")
        auth = {}
    authority = Authority(
        *(
            _text(auth, k, f"{file}: [authority]", problems)
            for k in (
                "name",
                "new_la_code",
                "old_la_code",
                "region_code",
                "region_name",
                "country_code",
                "country_name",
            )
        )  # fmt: skip
    )
    sn = raw.get("statistical_neighbours") or {}
    codes = sn.get("codes") if isinstance(sn, dict) else None
    if not isinstance(codes, list) or not all(isinstance(c, str) and c.strip() for c in codes):
        problems.append(f"{file}: [statistical_neighbours] codes must be a list of LA codes")
        codes = []
    if len(set(codes)) != len(codes):
        problems.append(f"{file}: [statistical_neighbours] lists a code twice")
    if authority.new_la_code and authority.new_la_code in codes:
        problems.append(f"{file}: [statistical_neighbours] lists the council itself")
    source = sn.get("source", "") if isinstance(sn, dict) else ""
    sf = raw.get("supporting_families") or {}
    targets_raw = sf.get("targets", {}) if isinstance(sf, dict) else {}
    targets: dict[str, int] = {}
    if not isinstance(targets_raw, dict):
        problems.append(f"{file}: [supporting_families] targets must map financial years to counts")
        targets_raw = {}
    for fy, n in targets_raw.items():
        if not FORMATS["financial_year"].match(str(fy)):
            problems.append(f"{file}: target year {fy!r} is not a financial year like 2025/26")
        elif not isinstance(n, int) or isinstance(n, bool) or n <= 0:
            problems.append(f"{file}: target for {fy} must be a whole number above 0")
        else:
            targets[str(fy)] = n
    mapping_path = DEFAULT_COMPARISONS
    if raw.get("comparisons_file"):
        mapping_path = (council_path.parent / str(raw["comparisons_file"])).resolve()
    mapping = _read(mapping_path, problems)
    comparisons, none, more = parse_comparisons(mapping, file=str(mapping_path), measures=measures)
    problems += more
    if problems:
        raise PlanningConfigError(problems)
    return PlanningConfig(
        authority=authority,
        neighbours=tuple(c.strip() for c in codes),
        neighbours_source=str(source),
        targets=targets,
        comparisons=comparisons,
        no_equivalent=none,
        source=file,
    )
