"""Each source's events come from a random stream of its own (synthetic/events.py), keyed by
a fixed constant, so adding, removing or changing one source leaves every other source's
events, and every other extract, byte-identical."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from faker import Faker

from pipelines.contracts import CONTRACTS
from synthetic import events as ev
from synthetic.generator import LOCALES, generate_county
from synthetic.geography import build_county
from synthetic.population import Population, build_population

SEED = 5


@pytest.fixture(scope="module")
def pop() -> Population:
    n = 3000
    rng = np.random.default_rng(SEED)
    fakers = {}
    for i, loc in enumerate(LOCALES):
        fk = Faker(loc)
        fk.seed_instance(SEED * 1000 + i)
        fakers[loc] = fk
    geo = Faker("en_GB")
    geo.seed_instance(1)
    county = build_county(n, int(n / 2.2) + 50, rng, geo)
    return build_population(n, rng, fakers, county)


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
