"""The release store on every backend (SQLite always; PostgreSQL when PORTAL_TEST_PG_URL is set)."""

from __future__ import annotations

import json
import time
from datetime import date

import numpy as np
import polars as pl
import pytest
import sqlalchemy as sa

from pipelines import store as store_mod
from pipelines.store import Store
from pipelines.store import io as store_io
from registry.errors import (
    ReleaseValidationError,
    ReleaseWriteError,
    UnknownMeasureError,
    UnknownReleaseError,
)
from registry.measures import Denominator, MeasureMeta

DIMS = ("locality", "ward", "age_band")


def _cube(seed: int, rows: int = 40) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    wards = [f"W{i}" for i in range(rows // 4)]
    frame = pl.DataFrame(
        {
            "ward": [wards[i % len(wards)] for i in range(rows)],
            "age_band": [
                ("0-4", "5-9", "10-15", "16-17")[i // len(wards) % 4] for i in range(rows)
            ],
        }
    ).unique(["ward", "age_band"], maintain_order=True)
    return frame.select(
        pl.format("L{}", pl.col("ward").str.slice(1).cast(pl.Int64) % 3).alias("locality"),
        "ward",
        "age_band",
        pl.Series("n", rng.integers(1, 50, frame.height), dtype=pl.Int64),
        pl.Series("ckey", rng.integers(0, 256, frame.height), dtype=pl.Int64),
    )


def _meta() -> dict[str, MeasureMeta]:
    return {
        "children": MeasureMeta(
            "children", "Children", "Children living in the county", "children", DIMS
        ),
        "referrals": MeasureMeta(
            "referrals",
            "Referrals",
            "Early Help referrals received",
            "children",
            DIMS,
            denominator=Denominator("children", per=1000),
            footnotes=("Counted once per child.",),
        ),
    }


def _write(store: Store, seed: int, **kw) -> str:
    return store.write_release(
        {"children": _cube(seed), "referrals": _cube(seed + 100)},
        _meta(),
        policy_id="council-sdc@1",
        data_as_at=date(2025, 3, 31),
        **kw,
    )


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(list(DIMS))


def test_write_then_read_round_trip(db_url: str) -> None:
    store = Store(db_url)
    assert store.latest_release() is None
    rid = _write(store, 1, run_metadata={"git": "abc123", "people": 300})
    info = store.latest_release()
    assert info is not None and info.release_id == rid
    assert info.status == "published"
    assert info.policy_id == "council-sdc@1"
    assert info.data_as_at == date(2025, 3, 31)
    assert info.run_metadata == {"git": "abc123", "people": 300}
    assert info.row_counts == {"children": _cube(1).height, "referrals": _cube(101).height}
    assert info.created_at.tzinfo is not None
    assert _sorted(store.read_cube(rid, "children")).equals(_sorted(_cube(1)))
    assert _sorted(store.read_cube(rid, "referrals")).equals(_sorted(_cube(101)))
    meta = store.read_meta(rid)
    assert meta == _meta()
    with pytest.raises(UnknownMeasureError):
        store.read_cube(rid, "nope")
    with pytest.raises(UnknownReleaseError):
        store.get_release("nope")
    audit = store.read_audit(action="release_written")
    assert audit.height == 1 and audit["release_id"][0] == rid
    assert json.loads(audit["detail"][0])["policy_id"] == "council-sdc@1"
    store.dispose()


def test_latest_is_the_newest_and_list_is_newest_first(db_url: str) -> None:
    store = Store(db_url)
    first = _write(store, 1)
    second = _write(store, 2)
    latest = store.latest_release()
    assert latest is not None
    assert latest.release_id == second
    assert [r.release_id for r in store.list_releases()] == [second, first]
    # Each release keeps its own cube.
    assert _sorted(store.read_cube(first, "children")).equals(_sorted(_cube(1)))
    assert _sorted(store.read_cube(second, "children")).equals(_sorted(_cube(2)))
    store.withdraw_release(second, actor="analyst", reason="wrong extract")
    latest = store.latest_release()
    assert latest is not None and latest.release_id == first
    assert store.get_release(second).status == "withdrawn"
    assert store.read_audit(action="release_withdrawn").height == 1
    store.dispose()


def _assert_unchanged_after_failure(store: Store, previous: str) -> None:
    latest = store.latest_release()
    assert latest is not None and latest.release_id == previous
    assert [r.release_id for r in store.list_releases()] == [previous]
    assert _sorted(store.read_cube(previous, "children")).equals(_sorted(_cube(1)))
    assert _sorted(store.read_cube(previous, "referrals")).equals(_sorted(_cube(101)))
    with store.engine.connect() as conn:
        # No orphan rows of the failed release anywhere.
        orphans = conn.execute(
            sa.select(sa.func.count())
            .select_from(store_mod.cube_cells)
            .where(store_mod.cube_cells.c.release_id != previous)
        ).scalar_one()
        orphan_blobs = conn.execute(
            sa.select(sa.func.count())
            .select_from(store_mod.cube_blobs)
            .where(store_mod.cube_blobs.c.release_id != previous)
        ).scalar_one()
        metas = conn.execute(
            sa.select(sa.func.count()).select_from(store_mod.measure_meta)
        ).scalar_one()
    assert orphans == 0
    assert orphan_blobs == 0
    assert metas == 2
    failed = store.read_audit(action="release_failed")
    assert failed.height == 1
    assert store.read_audit(action="release_written").height == 1


def test_failure_mid_write_leaves_previous_release_intact(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(db_url)
    previous = _write(store, 1)
    real_insert = Store._insert_cube
    calls: list[str] = []

    def insert_then_fail(self, conn, release_id, measure, cube, dims):  # type: ignore[no-untyped-def]
        calls.append(measure)
        real_insert(self, conn, release_id, measure, cube, dims)
        if len(calls) == 2:  # both cubes' rows are in the transaction; then the run dies
            raise RuntimeError("disk full")

    monkeypatch.setattr(Store, "_insert_cube", insert_then_fail)
    with pytest.raises(ReleaseWriteError, match="disk full"):
        _write(store, 2)
    assert calls == ["children", "referrals"]
    _assert_unchanged_after_failure(store, previous)
    store.dispose()


def test_constraint_violation_mid_write_rolls_back(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(db_url)
    previous = _write(store, 1)
    # Bypass the Python validation so the database itself rejects a row part-way
    # through the second cube, after the first cube and the release row were written.
    monkeypatch.setattr(store_io, "validate_release", lambda cubes, meta: [])
    bad = _cube(102).with_columns(
        pl.when(pl.int_range(pl.len()) == pl.len() - 1).then(0).otherwise(pl.col("n")).alias("n")
    )
    with pytest.raises(ReleaseWriteError):
        store.write_release(
            {"children": _cube(2), "referrals": bad},
            _meta(),
            policy_id="council-sdc@1",
            data_as_at=date(2025, 3, 31),
        )
    _assert_unchanged_after_failure(store, previous)
    store.dispose()


def test_previous_release_stays_readable_while_a_new_one_is_written(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = Store(db_url)
    reader = Store(db_url)
    previous = _write(writer, 1)
    seen: list[str | None] = []
    real_insert = Store._insert_cube

    def insert_and_look(self, conn, release_id, measure, cube, dims):  # type: ignore[no-untyped-def]
        real_insert(self, conn, release_id, measure, cube, dims)
        # Another connection, mid-transaction: sees only the committed release.
        latest = reader.latest_release()
        seen.append(latest.release_id if latest else None)
        assert reader.read_cube(previous, "children").height == _cube(1).height

    monkeypatch.setattr(Store, "_insert_cube", insert_and_look)
    new = _write(writer, 2)
    assert seen == [previous, previous]
    latest = reader.latest_release()
    assert latest is not None and latest.release_id == new
    writer.dispose()
    reader.dispose()


def test_validation_reports_every_problem_and_writes_nothing(db_url: str) -> None:
    store = Store(db_url)
    good = _cube(1)
    bad = pl.concat([good, good.head(1)]).with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(300).otherwise(pl.col("ckey")).alias("ckey"),
        pl.when(pl.int_range(pl.len()) == 1).then(-2).otherwise(pl.col("n")).alias("n"),
    )
    meta = _meta()
    meta["referrals"] = MeasureMeta(
        "referrals",
        "Referrals",
        "x",
        "children",
        (*DIMS, "postcode"),
        denominator=Denominator("population"),
    )
    with pytest.raises(ReleaseValidationError) as err:
        store.write_release(
            {"children": bad, "referrals": good, "orphan": good},
            meta,
            policy_id="council-sdc@1",
            data_as_at=date(2025, 3, 31),
        )
    text = "\n".join(err.value.problems)
    for expected in (
        "cube 'orphan' has no measure metadata",
        "unknown dimension(s) ['postcode']",
        "denominator 'population' is not in this release",
        "'ckey' must be in 0..255",
        "'n' must be positive",
        "duplicate cells",
        "missing column(s) ['postcode']",
    ):
        assert expected in text
    assert store.list_releases() == []
    assert store.read_audit().height == 0
    store.dispose()


def test_null_and_non_text_dimensions_rejected(db_url: str) -> None:
    store = Store(db_url)
    cube = _cube(1).with_columns(pl.lit(None, pl.String).alias("ward"))
    meta = {"children": _meta()["children"]}
    with pytest.raises(ReleaseValidationError, match="missing value"):
        store.write_release({"children": cube}, meta, policy_id="p@1", data_as_at=date(2025, 1, 1))
    cube = _cube(1).with_columns(pl.lit(3).alias("ward"))
    with pytest.raises(ReleaseValidationError, match="must be text"):
        store.write_release({"children": cube}, meta, policy_id="p@1", data_as_at=date(2025, 1, 1))
    store.dispose()


def test_audit_log(db_url: str) -> None:
    store = Store(db_url)
    store.audit("alice", "table_query", {"measure": "referrals", "by": ["ward"]})
    store.audit("bob", "extract", {"project": "P1", "rows": 120}, release_id="r1")
    log = store.read_audit()
    assert log["actor"].to_list() == ["bob", "alice"]  # newest first
    assert json.loads(log["detail"][0]) == {"project": "P1", "rows": 120}
    assert store.read_audit(action="table_query")["actor"].to_list() == ["alice"]
    assert store.read_audit(release_id="r1").height == 1
    assert store.read_audit(limit=1).height == 1
    store.dispose()


def test_bulk_write_and_read_round_trips(db_url: str) -> None:
    """200,000 cube rows in one release and back (timings printed; speed is measured in
    benchmarks, not asserted here). A new registry dimension needs a migration:
    tests/test_migrations.py fails while the schema and the migrations disagree."""
    rng = np.random.default_rng(0)
    rows = 200_000
    cube = pl.DataFrame(
        {
            "locality": [f"L{i % 8}" for i in range(rows)],
            "ward": [f"W{i % 64:02d}" for i in range(rows)],
            "age_band": [f"A{i // 64}" for i in range(rows)],
            "n": rng.integers(1, 20, rows),
            "ckey": rng.integers(0, 256, rows),
        }
    )
    meta = {"children": _meta()["children"]}
    store = Store(db_url)
    t0 = time.perf_counter()
    rid = store.write_release(
        {"children": cube}, meta, policy_id="p@1", data_as_at=date(2025, 1, 1)
    )
    t1 = time.perf_counter()
    back = store.read_cube(rid, "children")
    t2 = time.perf_counter()
    print(f"\n{store.dialect}: wrote {rows:,} cube rows in {t1 - t0:.2f}s, read in {t2 - t1:.2f}s")
    assert back.height == rows
    assert int(back["n"].sum()) == int(cube["n"].sum())
    store.dispose()


def test_parquet_copy_and_rows_hold_the_same_cube(db_url):
    """read_cube serves the Parquet copy; the constraint-checked rows say the same."""
    store = Store(db_url)
    rid = store.write_release(
        {"children": _cube(7), "referrals": _cube(107)}, _meta(), policy_id="p@1",
        data_as_at=date(2025, 1, 1),
    )  # fmt: skip
    from_blob = _sorted(store.read_cube(rid, "children"))
    with store.engine.begin() as conn:
        conn.execute(
            sa.delete(store_mod.cube_blobs).where(store_mod.cube_blobs.c.release_id == rid)
        )
    from_rows = _sorted(store.read_cube(rid, "children"))
    assert from_blob.equals(from_rows)
    assert from_blob.equals(_sorted(_cube(7)))
    store.dispose()
