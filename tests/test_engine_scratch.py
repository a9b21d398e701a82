"""DuckDB's spill files hold the records being scored: they go to the run's zone A
scratch folder (owner-only) and are removed with it, never to `.tmp` in the working
directory."""

from __future__ import annotations

import stat

import polars as pl
import pytest

from pipelines.engine import EngineConfig, EngineError, open_backend


def test_duckdb_spills_into_the_zone_a_scratch_folder_and_removes_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where an unconfigured in-memory DuckDB would spill
    scratch = tmp_path / "scratch"
    # A cap below the data makes DuckDB spill for real.
    config = EngineConfig(memory_limit="64MB", threads=1, scratch=scratch)
    with open_backend(config) as backend:
        assert stat.S_IMODE(scratch.stat().st_mode) == 0o700
        (setting,) = backend.con.execute("SELECT current_setting('temp_directory')").fetchone()
        assert setting == str(scratch / "spill")
        backend.con.execute(  # about 110 MB of text
            "CREATE TABLE t AS SELECT i, repeat('x', 100) || i AS name FROM range(1000000) r(i)"
        )
        assert list((scratch / "spill").glob("*.tmp")), "expected DuckDB to spill past 64MB"
    assert not scratch.exists()
    assert not (tmp_path / ".tmp").exists()


def test_a_run_leaves_no_scratch_folder(tmp_path):
    # The pipeline passes a scratch folder for DuckDB too; the backend removes it even when
    # the linkage fails.
    scratch = tmp_path / ".work.scratch-x"
    config = EngineConfig(scratch=scratch)
    try:
        with open_backend(config) as backend:
            backend.register(pl.DataFrame({"a": [1]}))
            raise RuntimeError("linkage failed")
    except RuntimeError:
        pass
    assert not scratch.exists()


def test_duckdb_memory_limit_is_applied_and_checked():
    with open_backend(EngineConfig(memory_limit="3GB")) as backend:
        (limit,) = backend.con.execute("SELECT current_setting('memory_limit')").fetchone()
    assert limit == "2.7 GiB"  # DuckDB reports 3 GB (10^9 bytes) in GiB
    with pytest.raises(EngineError, match="expected a size such as 2GB"):
        EngineConfig(memory_limit="lots")
