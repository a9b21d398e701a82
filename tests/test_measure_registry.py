"""The measure registry is data (pipelines/derive/measures.toml), read and validated at
import with every problem reported at once."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from pipelines.claims import CLAIM_RULES
from pipelines.derive import LAC_MEASURES, MEASURES, OBJECTIONS_MEASURE
from pipelines.derive.common import GEO, SUSTAIN_DAYS, TIME
from pipelines.derive.measures import (
    MEASURES_PATH,
    MeasureRegistryError,
    load_measures,
    parse_measures,
)
from pipelines.derive.sf_claims import sf_claims


def _raw() -> dict:
    return tomllib.loads(MEASURES_PATH.read_text(encoding="utf-8"))


def test_the_shipped_registry_loads_with_every_measure_in_publication_order():
    reg = load_measures()
    assert list(reg.measures) == list(MEASURES)
    assert list(MEASURES)[:2] == ["contacts", "cin_referrals"]
    # One entry per measure, but one entry for all the claim rules.
    assert len(MEASURES) == len(_raw()["measure"]) - 1 + len(CLAIM_RULES)
    assert MEASURES["sf_claims"].build is sf_claims
    assert OBJECTIONS_MEASURE.meta.name == "objectors_excluded"
    assert OBJECTIONS_MEASURE.meta.name not in MEASURES
    assert [m.meta.name for m in LAC_MEASURES][:1] == ["lac_at_31_march"]
    assert all(MEASURES[m.meta.name] is m for m in LAC_MEASURES)


def test_text_groups_shares_and_claim_rules_are_expanded():
    sf = MEASURES["sf_significant_sustained_progress"].meta
    assert sf.breakdowns == (*GEO, *TIME)
    assert sf.complete_after_days == SUSTAIN_DAYS
    assert sf.denominator is not None and sf.denominator.subset
    assert sf.denominator.measure == "sf_families_closed"
    assert "DLUHC, Supporting Families programme guidance 2022 to 2025" in sf.footnotes[0]
    rate = MEASURES["cin_at_31_march"].meta.denominator
    assert rate is not None and (rate.per, rate.subset) == (10_000, False)
    for rule in CLAIM_RULES:
        meta = MEASURES[f"sf_rule_{rule.key}"].meta
        assert meta.title.startswith("Claim rule met: ")
        assert rule.guidance in meta.footnotes[0]
    # No {NAME} is left unfilled anywhere.
    for m in (*MEASURES.values(), OBJECTIONS_MEASURE):
        texts = (m.meta.title, m.meta.definition, *m.meta.footnotes)
        assert not any("{" in t or "}" in t for t in texts), m.meta.name


def test_every_problem_is_reported_at_once():
    raw = _raw()
    raw["colour"] = "blue"
    raw["text"]["BROKEN"] = "see {NOWHERE}"
    first, second = raw["measure"][0], raw["measure"][1]
    first["breakdowns"] = ["GEO", "shoe_size"]
    first["build"] = "no_such_function"
    first["wibble"] = 1
    second["share_of"] = "not_a_measure"
    second["footnotes"] = ["{UNKNOWN_NOTE}"]
    by_name = {m["name"]: m for m in raw["measure"]}
    by_name["cp_plans_started"]["denominator"] = {"measure": "contacts", "per": 0}
    raw["measure"][3]["name"] = "contacts"  # defined twice
    del raw["measure"][4]["title"]
    raw["measure"][5]["complete_after_days"] = "a while"
    with pytest.raises(MeasureRegistryError) as err:
        parse_measures(raw, Path("measures.toml"))
    text = str(err.value)
    assert text.startswith("measures.toml: ")
    for needle in (
        "unknown top-level key(s) ['colour']",
        "text.BROKEN: names {NOWHERE}",
        "unknown breakdown 'shoe_size'",
        "no measure function 'no_such_function'",
        "unknown key(s) ['wibble']",
        "denominator 'not_a_measure' is not a measure",
        "names {UNKNOWN_NOTE}",
        "per (a positive whole number)",
        "measure 'contacts' is defined twice",
        "missing key(s) ['title']",
        "complete_after_days must be a whole number or 'sustain_days'",
    ):
        assert needle in text, needle
    assert len(err.value.problems) >= 11


def test_a_file_that_is_not_toml_names_the_file(tmp_path):
    bad = tmp_path / "measures.toml"
    bad.write_text("[[measure]\nname = ", encoding="utf-8")
    with pytest.raises(MeasureRegistryError, match="measures.toml: 1 problem"):
        load_measures(bad)
