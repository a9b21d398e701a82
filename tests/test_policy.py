"""The versioned disclosure control policy."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

import pytest

from anonymise.policy import (
    DEFAULT_POLICY_PATH,
    MIN_THRESHOLD,
    PolicyError,
    default_policy,
    load_policy,
    parse_policy,
)


def _raw() -> dict[str, Any]:
    return tomllib.loads(DEFAULT_POLICY_PATH.read_text())


def test_default_policy_values() -> None:
    p = default_policy()
    assert p.policy_id == "council-sdc" and p.version == 2
    assert p.ref == "council-sdc@2"
    assert p.method == "cell_key"
    assert p.threshold == 10
    assert p.max_noise == 3 and p.variance == 1.0
    assert p.rounding == "none"
    assert p.max_table_dims == 3
    assert (p.symbols.confidential, p.symbols.low, p.symbols.unavailable) == ("c", "low", "x")
    assert (p.symbols.not_applicable, p.symbols.low_reliability) == ("z", "u")
    assert (p.output_check.dominance_n, p.output_check.dominance_k) == (2, 90.0)
    assert p.output_check.p_ratio == 10.0


def test_policy_is_frozen_and_loaded_once() -> None:
    p = default_policy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.threshold = 1  # type: ignore[misc]
    assert load_policy() is p
    assert load_policy(DEFAULT_POLICY_PATH) is p


def test_every_problem_is_reported_together(tmp_path: Path) -> None:
    raw = _raw()
    raw["cell_key"]["threshold"] = 1
    raw["cell_key"]["variance"] = -1.0
    raw["cell_key"]["treshold"] = 10  # a typo must not pass silently
    raw["policy"]["method"] = "secondary_suppression"
    del raw["symbols"]["confidential"]
    raw["symbols"]["low"] = "x"  # clashes with unavailable
    del raw["output_check"]
    raw["extras"] = {}
    with pytest.raises(PolicyError) as err:
        parse_policy(raw, source="test")
    problems = "\n".join(err.value.problems)
    for expected in (
        "cell_key.threshold must be at least",
        "cell_key.variance must be positive",
        "unknown key cell_key.treshold",
        "policy.method must be one of",
        "missing key symbols.confidential",
        "symbols must be distinct",
        "missing section [output_check]",
        "unknown section [extras]",
    ):
        assert expected in problems
    assert len(err.value.problems) >= 8


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("cell_key", "threshold", 0, "threshold must be at least"),
        ("cell_key", "threshold", MIN_THRESHOLD - 1, "threshold must be at least"),
        ("cell_key", "max_noise", 0, "max_noise must be at least 1"),
        ("cell_key", "variance", 0.0, "variance must be positive"),
        ("cell_key", "variance", 5.0, "variance must be at most"),
        ("cell_key", "rounding", "off", "rounding must be one of"),
        ("policy", "method", "none", "method must be one of"),
        ("cell_key", "threshold", True, "must be int"),
        ("table_builder", "max_table_dims", 0, "max_table_dims must be between"),
    ],
)
def test_protection_cannot_be_switched_off(
    section: str, key: str, value: Any, message: str
) -> None:
    raw = _raw()
    raw[section][key] = value
    with pytest.raises(PolicyError, match=message):
        parse_policy(raw)


def test_threshold_must_exceed_max_noise() -> None:
    raw = _raw()
    raw["cell_key"]["threshold"] = 3
    raw["cell_key"]["max_noise"] = 3
    with pytest.raises(PolicyError, match="greater than cell_key.max_noise"):
        parse_policy(raw)


def test_bad_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="file not found"):
        load_policy(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[policy\n")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(broken)


def test_a_custom_policy_file_loads(tmp_path: Path) -> None:
    text = DEFAULT_POLICY_PATH.read_text().replace("threshold = 10", "threshold = 8")
    text = text.replace("version = 2", "version = 3")
    path = tmp_path / "nhs.toml"
    path.write_text(text)
    p = load_policy(path)
    assert p.threshold == 8 and p.ref == "council-sdc@3"
