"""The need-to-outcome rules are data (pipelines/derive/need_outcomes.toml): validated on load
with every problem reported at once, and read by the engine rule by rule."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from pipelines.derive.need_rules import (
    NEED_RULES_PATH,
    NeedRulesError,
    load_need_rules,
    parse_need_rules,
    warning_frames,
)
from registry.codes import NEEDS


def _raw() -> dict:
    return tomllib.loads(NEED_RULES_PATH.read_text(encoding="utf-8"))


def test_the_shipped_rules_load_and_cover_every_need():
    rules = load_need_rules()
    assert rules.sustain_days == 183
    covered = {r.need for g in (rules.events, rules.still_running, rules.school_years) for r in g}
    assert covered == set(NEEDS)


def test_every_problem_is_reported_at_once_naming_the_file_and_rule():
    raw = _raw()
    raw["colour"] = "blue"
    raw["event"][0]["need"] = "HAPPINESS"
    raw["event"][1]["source"] = "weather"
    raw["event"][2]["date"] = "offence_day"
    raw["event"][3]["where"] = {"service": ["DENTIST"]}
    raw["event"][4]["extra"] = 1
    del raw["still_running"][0]["end"]
    raw["school_year"][0]["max_absence"] = "ten percent"
    with pytest.raises(NeedRulesError) as err:
        parse_need_rules(raw, Path("rules.toml"))
    msg = str(err.value)
    assert msg.startswith("rules.toml: ")
    for expected in (
        "unknown key 'colour'",
        "[[event]] #1 (HAPPINESS): unknown need 'HAPPINESS'",
        "[[event]] #2 (CRIME): unknown source 'weather'",
        "[[event]] #3 (CRIME): date: source 'youth_justice' has no column 'offence_day'",
        "[[event]] #4 (SUBSTANCE): where.service: unknown code(s) ['DENTIST']",
        "[[event]] #5 (SUBSTANCE): unknown key 'extra'",
        "[[still_running]] #1 (FINANCIAL): missing key 'end'",
        "[[school_year]] #1 (EDUCATION): max_absence must be a float",
        # HAPPINESS replaced the only DOMESTIC_ABUSE rule.
        "need 'DOMESTIC_ABUSE' has no rule",
    ):
        assert expected in msg, expected
    assert len(err.value.problems) == 9


def test_the_engine_applies_each_rule_as_written():
    rules = load_need_rules()
    closed = date(2024, 1, 31)
    eps = pl.DataFrame(
        {
            "family_id": ["F1", "F2", "F3", "F4"],
            "episode_id": ["E1", "E2", "E3", "E4"],
            "closure_date": [closed] * 4,
            "need": ["DOMESTIC_ABUSE", "DOMESTIC_ABUSE", "DOMESTIC_ABUSE", "CRIME"],
        }
    )
    police = pl.DataFrame(
        {
            "family_id": ["F1", "F2", "F3", "F4"],
            # F1: inside six months; F2: after them; F3: the wrong incident type;
            # F4: a suspect in a domestic abuse incident (CRIME's `unless`).
            "incident_date": [
                date(2024, 3, 1),
                date(2024, 9, 1),
                date(2024, 3, 1),
                date(2024, 3, 1),
            ],
            "incident_type": ["DOMESTIC_ABUSE", "DOMESTIC_ABUSE", "THEFT", "DOMESTIC_ABUSE"],
            "role": ["VICTIM", "VICTIM", "VICTIM", "SUSPECT"],
        }
    )
    # The police rules only (the others read other sources).
    police_rules = replace(
        rules,
        events=tuple(r for r in rules.events if r.source == "police"),
        still_running=(),
        school_years=(),
    )
    assert len(police_rules.events) == 3

    def events(source: str) -> pl.DataFrame:
        assert source == "police"
        return police

    missed = pl.concat(warning_frames(police_rules, eps, events)).unique()
    assert sorted(missed["episode_id"].to_list()) == ["E1"]
