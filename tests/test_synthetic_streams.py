"""Each source's events come from a random stream of its own (synthetic/events.py), keyed by
a fixed constant, so adding, removing or changing one source leaves every other source's
events, and every other extract, byte-identical."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipelines.contracts import CONTRACTS
from synthetic import events as ev
from synthetic import population
from synthetic.generator import generate_county, population_for
from synthetic.population import Population

SEED = 5


@pytest.fixture(scope="module")
def pop() -> Population:
    return population_for(3000, SEED, geo_seed=1)[0]


def _csv(df: pl.DataFrame) -> bytes:
    return df.write_csv().encode()


def _new_source(s: ev.Shared, rng: np.random.Generator) -> pl.DataFrame:
    """A source added later: draws plenty from its own stream."""
    return pl.DataFrame({"pidx": rng.integers(0, s.people.n_p, 5000)})


def test_every_source_and_stage_has_its_own_fixed_stream():
    assert set(ev.SOURCES) == set(CONTRACTS)
    assert set(ev.SOURCES) <= set(ev.STREAMS)
    assert len(set(ev.STREAMS.values())) == len(ev.STREAMS)


def test_adding_removing_or_changing_a_source_leaves_the_others_byte_identical(pop, monkeypatch):
    base = ev.build_events(pop, SEED)
    monkeypatch.setitem(ev.STREAMS, "new_source", 999)
    changed = dict(ev.SOURCES)
    del changed["police"]  # removed
    changed["new_source"] = _new_source  # added, drawn between the others
    # changed: youth justice drawn from another generator
    changed["youth_justice"] = lambda s, _rng: ev.youth_justice(s, np.random.default_rng(1))
    # Dict order is the order the functions run in: move front_door to the end, so a
    # positional scheme would hand it a different stream.
    changed["front_door"] = changed.pop("front_door")
    other = ev.build_events(pop, SEED, changed)

    assert "police" not in other.by_source and other.by_source["new_source"].height == 5000
    assert not base.by_source["youth_justice"].equals(other.by_source["youth_justice"])
    same = set(CONTRACTS) - {"police", "youth_justice"}
    assert len(same) == 11
    for name in same:
        assert _csv(base.by_source[name]) == _csv(other.by_source[name]), name
    assert _csv(base.families) == _csv(other.families)


def test_a_stream_is_a_function_of_the_seed_and_the_stage_alone():
    a = ev.stream(SEED, "police").random(4)
    assert np.array_equal(a, ev.stream(SEED, "police").random(4))
    assert not np.array_equal(a, ev.stream(SEED, "health").random(4))
    assert not np.array_equal(a, ev.stream(SEED + 1, "police").random(4))


def test_build_events_refuses_a_source_without_a_stream(pop):
    with pytest.raises(ValueError, match="no random stream for source"):
        ev.build_events(pop, SEED, {**ev.SOURCES, "unkeyed": _new_source})


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_changing_one_source_changes_no_other_extract(tmp_path, monkeypatch):
    """End to end: the extracts are rendered from per-source streams too
    (synthetic.render.render_stream), so only the changed source's extract, and the files
    that gather every source (the linkage truth, the trace response, the row counts),
    move."""
    generate_county(2000, SEED, tmp_path / "a")
    police = ev.police
    # The police record a different draw of the same incidents (its own stream, reseeded).
    monkeypatch.setitem(ev.SOURCES, "police", lambda s, _rng: police(s, np.random.default_rng(3)))
    generate_county(2000, SEED, tmp_path / "b")
    a, b = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert a.keys() == b.keys()
    moved = {k for k in a if a[k] != b[k]}
    assert "police.csv" in moved
    assert moved <= {
        "police.csv",
        "truth/records.csv",
        "truth/manifest.json",
        "reference/dbs_trace_response.csv",
    }, sorted(moved)
    # Every other extract, every return file and the reference data are as they were (a
    # year in which nobody was looked after has no 903, so the count of files varies).
    unchanged = a.keys() - moved
    assert {f"{c}.csv" for c in CONTRACTS if c != "police"} <= unchanged
    returns = {k for k in a if k.startswith("returns/")}
    assert len(returns) >= 40 and returns <= unchanged
    reference = {k for k in a if k.startswith("reference/")} - {"reference/dbs_trace_response.csv"}
    assert len(reference) >= 2 and reference <= unchanged


# --- forenames within a household ---------------------------------------------------------


def test_nobody_shares_a_forename_with_their_household(county_20k):
    """Two sisters both "Dawn Gill" were the pairs linkage wrongly merged (issue 16). Drawn
    freely, 72 of the 19,952 people at 20,000 (seed 7) had the forename of someone earlier in
    their household, so this fails without the rule."""
    people = pl.read_csv(county_20k / "truth" / "people.csv", infer_schema=False)
    repeated = people.group_by("family_id", "forename").len().filter(pl.col("len") > 1)
    assert repeated.height == 0, repeated.head()
    # The rule is per household: one name may still be common across the county.
    assert people.group_by("forename").len()["len"].max() > 50


def test_the_earlier_member_keeps_the_name_and_redraws_come_from_their_own_pool():
    pools = {
        ("en_GB", True): np.array(["Ann", "Beth", "Cara", "Dawn", "Eve"], dtype=object),
        ("en_GB", False): np.array(["Sam", "Tom"], dtype=object),
        ("pl_PL", True): np.array(["Ola", "Zofia"], dtype=object),
    }
    # Household 0: a mother and two daughters all drawn "Dawn", a son "Sam", a daughter
    # "Sam" (the pools of one locale may share a name); household 1: two Polish sisters;
    # household 2: a "Dawn" alone, so nothing to change.
    hh = np.array([0, 0, 0, 0, 0, 1, 1, 2])
    female = np.array([True, True, True, False, True, True, True, True])
    locale = np.array(["en_GB"] * 5 + ["pl_PL"] * 2 + ["en_GB"])
    drawn = np.array(["Dawn", "Dawn", "Dawn", "Sam", "Sam", "Ola", "Ola", "Dawn"], dtype=object)

    def redraw(seed: int) -> np.ndarray:
        names = drawn.copy()
        population.distinct_in_household(
            names, hh, female, locale, pools, np.random.default_rng(seed)
        )
        return names

    names = redraw(1)
    assert names[0] == "Dawn" and names[3] == "Sam" and names[5] == "Ola" and names[7] == "Dawn"
    assert len(set(names[:5])) == 5 and set(names[[1, 2, 4]]) <= set(pools[("en_GB", True)])
    assert names[6] == "Zofia"
    assert np.array_equal(names, redraw(1))  # the same stream gives the same names


def test_the_forename_rule_changes_only_the_names_it_must(monkeypatch):
    """The redraws have a stream of their own (synthetic.population.FORENAME_STREAM), so
    every other column of the population, and every name without a clash, is what the
    county's generator drew."""

    def build() -> Population:
        return population_for(3000, SEED, geo_seed=1)[0]

    ruled = build()
    monkeypatch.setattr(population, "distinct_in_household", lambda *a, **k: None)
    free = build()
    assert ruled.people.drop("forename").equals(free.people.drop("forename"))
    assert ruled.households.equals(free.households)
    assert ruled.address_history.equals(free.address_history)
    first = free.people.select(pl.struct("family_id", "forename").is_first_distinct())
    clashed = ~first.to_series()
    changed = ruled.people["forename"] != free.people["forename"]
    assert clashed.sum() > 0
    # Every clash was redrawn; a redraw may in turn push out a later member's name, but
    # nobody outside a household with a clash is touched.
    assert (changed | ~clashed).all()
    touched = set(ruled.people.filter(changed)["family_id"])
    assert touched <= set(free.people.filter(clashed)["family_id"])
