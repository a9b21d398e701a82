"""The disclosure control policy: one frozen object loaded once from a versioned TOML file.

Pages and pipelines choose breakdowns; they never choose the policy. There is no
setting that turns protection off: the validator rejects a threshold, noise or
variance that would (see `MIN_THRESHOLD`).

The same file holds the revisions policy (when a release may rewrite published
history: `[revisions]`) and the retention schedule (how long each kind of data is
kept: `[retention]`), so one versioned document governs what is published and for how
long anything behind it is kept.
"""

from __future__ import annotations

import functools
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_POLICY_PATH = Path(__file__).parent / "policies" / "default.toml"

# Floors that keep a policy from disabling protection. 3 is the smallest
# threshold any UK statistical producer we follow uses (DfE); ONS and ACRO use 10.
MIN_THRESHOLD = 3
METHODS = ("cell_key",)
ROUNDING = ("none",)
# A revision compares with the release before it; frequent or tiny ones would let an
# attacker difference single removals, so the schedule has floors too.
MIN_REVISION_INTERVAL_DAYS = 90
MIN_REVISION_PEOPLE = 5
# The audit log is the record of who saw and changed what: never kept for less than a year.
MIN_AUDIT_DAYS = 365


class PolicyError(ValueError):
    """The policy file is missing, malformed or would weaken protection."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid disclosure control policy {source}:\n{lines}")


@dataclass(frozen=True)
class Symbols:
    """GSS symbols shown in place of a number."""

    confidential: str  # suppressed to protect confidentiality
    low: str  # rounds to zero but is not zero
    unavailable: str  # not available
    not_applicable: str  # e.g. a rate whose denominator is zero
    low_reliability: str


@dataclass(frozen=True)
class OutputCheck:
    """ACRO-style output-checking parameters (for magnitude tables, later)."""

    dominance_n: int
    dominance_k: float  # percent
    p_ratio: float  # percent


@dataclass(frozen=True)
class RevisionPolicy:
    """When a revision release (which recomputes published periods) is allowed."""

    min_days_between: int  # data as-at dates at least this far apart
    min_people_changed: int  # only when at least this many people's records changed
    # A cell of revised history changes only when the records of at least this many
    # different people changed in it since the value shown before (0: every change shows).
    materiality: int


@dataclass(frozen=True)
class RetentionSchedule:
    """Days each kind of data is kept (0: removed as soon as the run is done with it)."""

    zone_a_working_copies_days: int
    quarantine_files_days: int
    zone_b_tables_days: int
    superseded_cubes_days: int
    extracts_days: int
    audit_log_days: int
    clerical_labels_days: int

    def days(self) -> dict[str, int]:
        return {
            "zone_a_working_copies": self.zone_a_working_copies_days,
            "quarantine_files": self.quarantine_files_days,
            "zone_b_tables": self.zone_b_tables_days,
            "superseded_cubes": self.superseded_cubes_days,
            "extracts": self.extracts_days,
            "audit_log": self.audit_log_days,
            "clerical_labels": self.clerical_labels_days,
        }


@dataclass(frozen=True)
class Policy:
    policy_id: str
    version: int
    method: str
    description: str
    threshold: int
    max_noise: int
    variance: float
    rounding: str
    max_table_dims: int
    total_label: str
    symbols: Symbols
    output_check: OutputCheck
    revisions: RevisionPolicy
    retention: RetentionSchedule

    @property
    def ref(self) -> str:
        """What a release or table records: "<policy_id>@<version>"."""
        return f"{self.policy_id}@{self.version}"


# (section, key) -> expected python type(s); every key is required.
_SCHEMA: dict[str, dict[str, tuple[type, ...]]] = {
    "policy": {
        "policy_id": (str,),
        "version": (int,),
        "method": (str,),
        "description": (str,),
    },
    "cell_key": {
        "threshold": (int,),
        "max_noise": (int,),
        "variance": (int, float),
        "rounding": (str,),
    },
    "table_builder": {"max_table_dims": (int,), "total_label": (str,)},
    "symbols": {
        "confidential": (str,),
        "low": (str,),
        "unavailable": (str,),
        "not_applicable": (str,),
        "low_reliability": (str,),
    },
    "output_check": {
        "dominance_n": (int,),
        "dominance_k": (int, float),
        "p_ratio": (int, float),
    },
    "revisions": {
        "min_days_between": (int,),
        "min_people_changed": (int,),
        "materiality": (int,),
    },
    "retention": {
        "zone_a_working_copies_days": (int,),
        "quarantine_files_days": (int,),
        "zone_b_tables_days": (int,),
        "superseded_cubes_days": (int,),
        "extracts_days": (int,),
        "audit_log_days": (int,),
        "clerical_labels_days": (int,),
    },
}


def parse_policy(raw: Mapping[str, Any], *, source: str = "<policy>") -> Policy:
    """Validate a parsed TOML document; every problem is reported at once."""
    problems: list[str] = []
    for section in raw:
        if section not in _SCHEMA:
            problems.append(f"unknown section [{section}]")
    values: dict[str, dict[str, Any]] = {}
    for section, keys in _SCHEMA.items():
        body = raw.get(section)
        if not isinstance(body, Mapping):
            problems.append(f"missing section [{section}]")
            values[section] = {}
            continue
        values[section] = {}
        for key in body:
            if key not in keys:
                problems.append(f"unknown key {section}.{key}")
        for key, types in keys.items():
            if key not in body:
                problems.append(f"missing key {section}.{key}")
            elif isinstance(body[key], bool) or not isinstance(body[key], types):
                want = " or ".join(t.__name__ for t in types)
                problems.append(f"{section}.{key} must be {want}, got {body[key]!r}")
            else:
                values[section][key] = body[key]

    pol, ck, tb = values["policy"], values["cell_key"], values["table_builder"]
    sym, oc = values["symbols"], values["output_check"]
    rev, ret = values["revisions"], values["retention"]

    if "policy_id" in pol and not pol["policy_id"].strip():
        problems.append("policy.policy_id must not be empty")
    if "version" in pol and pol["version"] < 1:
        problems.append("policy.version must be at least 1")
    if "method" in pol and pol["method"] not in METHODS:
        problems.append(f"policy.method must be one of {METHODS}, got {pol['method']!r}")
    if "threshold" in ck and ck["threshold"] < MIN_THRESHOLD:
        problems.append(
            f"cell_key.threshold must be at least {MIN_THRESHOLD} (protection cannot be "
            f"switched off), got {ck['threshold']}"
        )
    if "max_noise" in ck and ck["max_noise"] < 1:
        problems.append(f"cell_key.max_noise must be at least 1, got {ck['max_noise']}")
    if "max_noise" in ck and ck["max_noise"] > 20:
        problems.append(f"cell_key.max_noise must be at most 20, got {ck['max_noise']}")
    if "variance" in ck:
        v = float(ck["variance"])
        if not math.isfinite(v) or v <= 0:
            problems.append(f"cell_key.variance must be positive, got {ck['variance']}")
        elif "max_noise" in ck and ck["max_noise"] >= 1 and v > ck["max_noise"] ** 2 / 2:
            # Above D^2/2 the noise piles up at +-D, which makes differencing easier.
            problems.append(
                f"cell_key.variance must be at most max_noise^2/2 = {ck['max_noise'] ** 2 / 2}, "
                f"got {v}"
            )
    if (
        "threshold" in ck
        and "max_noise" in ck
        and ck["max_noise"] >= 1
        and ck["threshold"] <= ck["max_noise"]
    ):
        problems.append("cell_key.threshold must be greater than cell_key.max_noise")
    if "rounding" in ck and ck["rounding"] not in ROUNDING:
        problems.append(f"cell_key.rounding must be one of {ROUNDING}, got {ck['rounding']!r}")
    if "max_table_dims" in tb and not 1 <= tb["max_table_dims"] <= 6:
        problems.append(
            f"table_builder.max_table_dims must be between 1 and 6, got {tb['max_table_dims']}"
        )
    if "total_label" in tb and not tb["total_label"].strip():
        problems.append("table_builder.total_label must not be empty")
    present = [s for s in sym.values() if isinstance(s, str)]
    if any(not s.strip() for s in present):
        problems.append("symbols must not be empty")
    if len(set(present)) != len(present):
        problems.append(f"symbols must be distinct, got {present}")
    for s in present:
        if s.strip().lstrip("-").replace(".", "", 1).isdigit():
            problems.append(f"symbol {s!r} looks like a number")
    if "dominance_n" in oc and oc["dominance_n"] < 1:
        problems.append("output_check.dominance_n must be at least 1")
    for key in ("dominance_k", "p_ratio"):
        if key in oc and not 0 < float(oc[key]) <= 100:
            problems.append(f"output_check.{key} must be a percentage in (0, 100]")

    if "min_days_between" in rev and rev["min_days_between"] < MIN_REVISION_INTERVAL_DAYS:
        problems.append(
            f"revisions.min_days_between must be at least {MIN_REVISION_INTERVAL_DAYS}, "
            f"got {rev['min_days_between']}"
        )
    if "min_people_changed" in rev and rev["min_people_changed"] < MIN_REVISION_PEOPLE:
        problems.append(
            f"revisions.min_people_changed must be at least {MIN_REVISION_PEOPLE} (a revision "
            f"batches changes so that no one person's can be told apart), got "
            f"{rev['min_people_changed']}"
        )
    if "materiality" in rev and rev["materiality"] < 0:
        problems.append(f"revisions.materiality must be 0 or more, got {rev['materiality']}")
    for key, days in ret.items():
        if days < 0:
            problems.append(f"retention.{key} must be 0 or more, got {days}")
    if "audit_log_days" in ret and ret["audit_log_days"] < MIN_AUDIT_DAYS:
        problems.append(
            f"retention.audit_log_days must be at least {MIN_AUDIT_DAYS}, "
            f"got {ret['audit_log_days']}"
        )

    if problems:
        raise PolicyError(source, problems)
    return Policy(
        policy_id=pol["policy_id"],
        version=pol["version"],
        method=pol["method"],
        description=pol["description"],
        threshold=ck["threshold"],
        max_noise=ck["max_noise"],
        variance=float(ck["variance"]),
        rounding=ck["rounding"],
        max_table_dims=tb["max_table_dims"],
        total_label=tb["total_label"],
        symbols=Symbols(**sym),
        output_check=OutputCheck(
            dominance_n=oc["dominance_n"],
            dominance_k=float(oc["dominance_k"]),
            p_ratio=float(oc["p_ratio"]),
        ),
        revisions=RevisionPolicy(**rev),
        retention=RetentionSchedule(**ret),
    )


@functools.lru_cache(maxsize=8)
def _load(path: str) -> Policy:
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PolicyError(path, ["file not found"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(path, [f"not valid TOML: {exc}"]) from None
    return parse_policy(raw, source=path)


def load_policy(path: str | Path | None = None) -> Policy:
    """Load (once per process) and validate a policy file; the packaged default if no path."""
    return _load(str(Path(path or DEFAULT_POLICY_PATH).resolve()))


def default_policy() -> Policy:
    return load_policy(None)
