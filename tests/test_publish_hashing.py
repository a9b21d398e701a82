"""Publishing hashes every measure's units in one call (a unit counted by several
measures is hashed once, and the work can be shared with a second process): the ledgers
and cubes must be exactly what hashing each measure on its own gives."""

from __future__ import annotations

import polars as pl
import pytest

from anonymise import cellkey
from anonymise.cellkey import build_cube, unit_hashes, with_record_key
from pipelines.publish import build_cubes, hashed_frames, measure_meta

SECRET = bytes(range(7, 39))


def _frames() -> dict[str, pl.DataFrame]:
    """Two measures sharing some unit ids, one of them empty-stringed and non-ASCII."""
    frames = {}
    for name, ids in (
        ("cin_referrals", ["p1|2025-04", "p2|2025-05", "Zoë|2025-06", "", "p3|2025-07"]),
        ("contacts", ["p1|2025-04", "p9|2025-04", "p2|2025-05"]),
    ):
        dims = measure_meta(name).breakdowns
        frames[name] = pl.DataFrame(
            {"unit_id": ids, **{d: [f"{d}-{i % 2}" for i in range(len(ids))] for d in dims}}
        )
    return frames


@pytest.mark.parametrize("parallel_from", [10**9, 2], ids=["one process", "two processes"])
def test_hashing_measures_together_changes_nothing(monkeypatch, parallel_from) -> None:
    monkeypatch.setattr(cellkey, "PARALLEL_HASH_FROM", parallel_from)
    frames = _frames()
    together = hashed_frames(frames, SECRET)
    for name, frame in frames.items():
        alone = frame.with_columns(unit_hashes(frame["unit_id"], SECRET))
        assert together[name].equals(alone)
    for epoch in (0, 2):
        cubes = build_cubes(together, SECRET, epoch=epoch)
        assert list(cubes) == list(together)
        for name, frame in together.items():
            keyed = with_record_key(frame.lazy(), pseudonym="unit_hash", secret=SECRET, epoch=epoch)
            assert cubes[name].equals(build_cube(keyed, measure_meta(name).breakdowns).collect())
