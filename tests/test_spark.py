"""The pipeline on Spark (local mode) reproduces the DuckDB run: same persons, same
families, same published tables; ingest's row checks and the cubes' cell counts on Spark
partitions give frame for frame what polars gives on one machine.

The linkage model is trained once (on DuckDB) and applied on Spark through
`--linkage-model`, as a council moving to a cluster would; Splink's SQL for every level
is rebuilt for Spark's dialect (pipelines/engine.py). CI installs Java and pyspark and
sets PORTAL_REQUIRE_SPARK=1, so there a missing Java fails instead of skipping.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from anonymise.policy import default_policy
from anonymise.pseudonymise import MasterKey
from anonymise.release import clear_cache
from pipelines.engine import EngineConfig, EngineError, apply_model, saved_model
from pipelines.link import splink_settings
from pipelines.quality import pairwise_quality
from pipelines.run import run_pipeline
from pipelines.store import Store
from tests.release_tables import protected_tables

pytestmark = pytest.mark.xdist_group("spark")

POLICY = default_policy()
SECRET = b"s" * 32
KEY = MasterKey(b"k" * 32, "environment")


def _spark_available() -> str | None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java runtime"
    return None


def _need_spark() -> None:
    missing = _spark_available()
    if missing is None:
        return
    if os.environ.get("PORTAL_REQUIRE_SPARK") == "1":
        pytest.fail(f"PORTAL_REQUIRE_SPARK=1 but {missing}")
    pytest.skip(missing)


def pair_f1(a: pl.DataFrame, b: pl.DataFrame, key: str) -> float:
    """Pairwise F1 between two clusterings of the same records (uid -> `key`)."""
    joined = a.select("unique_id", pl.col(key).alias("a")).join(
        b.select("unique_id", pl.col(key).alias("b")), on="unique_id"
    )
    return pairwise_quality(joined, cluster="b", truth="a").f1


def _run(raw: Path, root: Path, **engine: Any) -> tuple[pl.DataFrame, dict[str, str], Path]:
    store = Store(f"sqlite:///{root / 'store.sqlite'}")
    try:
        run_pipeline(raw, root / "work", KEY, as_at=date(2026, 3, 31), store=store,
                     sdc_secret=SECRET, accept_unmatched_objections="all", keep_zone_a=True,
                     **engine)  # fmt: skip
        clear_cache()
        tables = protected_tables(store, POLICY, SECRET)
    finally:
        store.dispose()
    records = pl.read_parquet(root / "work" / "zone_a" / "linked_records.parquet")
    return records.select("unique_id", "person_key", "family_key"), tables, root / "work"


@pytest.fixture(scope="module")
def runs(county_20k: Path, tmp_path_factory: pytest.TempPathFactory):
    _need_spark()
    duck_root = tmp_path_factory.mktemp("duck")
    spark_root = tmp_path_factory.mktemp("spark")
    duck = _run(county_20k, duck_root)
    model = json.loads((duck[2] / "zone_a" / "linkage_model.json").read_text())
    spark = _run(county_20k, spark_root, engine="spark", linkage_model=model)
    return duck, spark, spark_root


def test_spark_persons_and_families_match_duckdb(runs):
    (duck_records, _, _), (spark_records, _, spark_work), _ = runs
    assert duck_records.height == spark_records.height > 20_000
    assert set(duck_records["unique_id"]) == set(spark_records["unique_id"])
    assert pair_f1(duck_records, spark_records, "person_key") >= 0.999
    assert pair_f1(duck_records, spark_records, "family_key") >= 0.999
    model = json.loads((spark_work / "zone_a" / "linkage_model.json").read_text())
    assert model["training"]["engine"] == "spark"


def test_spark_published_tables_are_identical(runs):
    (_, duck_tables, _), (_, spark_tables, _), _ = runs
    assert duck_tables.keys() == spark_tables.keys()
    assert len(duck_tables) > 100
    differ = sorted(k for k in duck_tables if duck_tables[k] != spark_tables[k])
    assert differ == []


def test_spark_scratch_is_removed_after_the_run(runs):
    # Spark's spill files and checkpoints hold identifiable records (zone A).
    *_, spark_root = runs
    assert not list(spark_root.glob(".work.scratch-*"))


# ---- ingest and cubes on Spark partitions (pipelines/partitioned.py) -------------

AS_AT = date(2026, 3, 31)
PARTITIONS = 3
FD = {
    "forename": "Zoë", "surname": "o'neill ", "dob": "2015-03-04", "sex": "F",
    "address_line1": "1 High Street", "postcode": "xm1  2ab", "contact_date": "2024-05-06",
    "contact_source": "SCHOOL", "decision": "NFA",
}  # fmt: skip


def _front_door_with_bad_rows() -> pl.DataFrame:
    """60 front-door rows, cut into thirds of 20 by Spark; bad rows in every third, and
    each cross-row problem's two rows in different thirds."""
    rows = [
        dict(FD, contact_id=f"FD{i}", forename=f"Name{chr(65 + i % 26)}", dob=f"2015-03-{1 + i % 28:02d}")
        for i in range(60)
    ]  # fmt: skip
    rows[3]["dob"] = "not a date"  # first third
    rows[25]["decision"] = "MAYBE"  # second third
    rows[50]["forename"] = '=HYPERLINK("http://x.example")'  # last third
    rows[41]["dob"], rows[41]["contact_date"] = "2025-01-01", "2024-01-01"  # dob after event
    rows[57]["contact_id"] = None
    # Cross-row: row 45 repeats row 5's key (and has a bad date too: the reasons' order
    # must be the driver's); row 38 repeats row 12 in every column but its key.
    rows[45]["contact_id"], rows[45]["contact_date"] = "FD5", "31/31/2024"
    rows[38] = dict(rows[12], contact_id="FD38")
    return pl.DataFrame(rows, schema={k: pl.Utf8 for k in ["contact_id", *FD]})


def _cube_frames(n: int) -> dict[str, pl.DataFrame]:
    import numpy as np

    from pipelines.publish import measure_meta

    rng = np.random.default_rng(11)
    out = {}
    for name in ("contacts", "assessments_completed"):
        dims = measure_meta(name).breakdowns
        # Few cells, so each holds units of every partition and its keys' sum passes the
        # modulus many times over.
        spread = {d: 3 if d in ("locality", "sex") else 1 for d in dims}
        values = {d: [f"{d}-{v}" for v in rng.integers(0, spread[d], n)] for d in dims}
        values["locality"] = [None if i % 17 == 0 else v for i, v in enumerate(values["locality"])]
        out[name] = pl.DataFrame({"unit_id": [f"{name}|p{i:032x}" for i in range(n)], **values})
    return out


@pytest.fixture(scope="module")
def on_spark(county_20k: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Everything the tests below compare, computed in one Spark session (closed before
    the tests run, so it never meets the pipeline runs' own sessions)."""
    _need_spark()
    from pyspark import TaskContext

    from pipelines.contracts import get_contract
    from pipelines.ingest import ingest_all, validate
    from pipelines.partitioned import partition_mapper
    from pipelines.publish import build_cubes

    def partition_of(frame: pl.DataFrame) -> pl.DataFrame:
        ctx = TaskContext.get()
        part = ctx.partitionId() if ctx is not None else -1
        return frame.select("_row", pl.lit(part, pl.Int64).alias("partition"))

    scratch = tmp_path_factory.mktemp("partitioned") / "scratch"
    bad = _front_door_with_bad_rows()
    contract = get_contract("front_door")
    frames = _cube_frames(5000)
    with partition_mapper(EngineConfig("spark", scratch=scratch), partitions=PARTITIONS) as rows:
        assert rows.name == "spark"
        got = {
            "county": ingest_all(county_20k, as_at=AS_AT, map_rows=rows),
            "bad": validate(bad, contract, file=Path("front_door.csv"), as_at=AS_AT, map_rows=rows),
            "partitions": rows(bad.with_row_index("_row").with_columns(pl.col("_row").cast(pl.Int64)),
                               partition_of, order="_row"),
            "cubes": build_cubes(frames, SECRET, epoch=2, map_rows=rows),
        }  # fmt: skip
    got["scratch_left"] = scratch.exists()
    got["here"] = {
        "county": ingest_all(county_20k, as_at=AS_AT),
        "bad": validate(bad, contract, file=Path("front_door.csv"), as_at=AS_AT),
        "cubes": build_cubes(frames, SECRET, epoch=2),
    }
    return got


def test_spark_ingest_equals_polars_on_the_county(on_spark):
    from polars.testing import assert_frame_equal

    spark, here = on_spark["county"], on_spark["here"]["county"]
    assert spark.keys() == here.keys()
    for name, result in here.items():
        assert_frame_equal(spark[name].accepted, result.accepted)
        assert_frame_equal(spark[name].quarantined, result.quarantined)
        assert spark[name].rows_in == result.rows_in
    assert sum(r.accepted.height for r in here.values()) > 20_000
    assert sum(r.quarantined.height for r in here.values()) > 0
    assert not on_spark["scratch_left"]  # zone A scratch removed with the session


def test_spark_ingest_applies_cross_row_rules_over_the_whole_file(on_spark):
    """Bad rows in every partition, and a repeated key and a repeated row whose two rows
    sit in different partitions: per partition, neither would be seen."""
    from polars.testing import assert_frame_equal

    part = dict(on_spark["partitions"].iter_rows())
    assert len(set(part.values())) == PARTITIONS
    assert part[5] != part[45] and part[12] != part[38]
    assert {part[3], part[25], part[50]} == set(part.values())

    spark, here = on_spark["bad"], on_spark["here"]["bad"]
    assert_frame_equal(spark.accepted, here.accepted)
    assert_frame_equal(spark.quarantined, here.quarantined)
    reasons = dict(zip(spark.quarantined["line"], spark.quarantined["reasons"], strict=True))
    # Line = row + 2 (the header is line 1): the file's numbering, not the partition's.
    assert reasons == {
        5: "bad_date:dob",
        27: "bad_code:decision",
        40: "duplicate_row",
        43: "impossible_date:dob_after_event",
        47: "duplicate_record_id;bad_date:contact_date",
        52: "formula_like_cell:forename",
        59: "missing_required:contact_id",
    }
    assert spark.accepted.height == 60 - 7  # no partition's rows dropped


def test_spark_cubes_equal_polars(on_spark):
    from polars.testing import assert_frame_equal

    spark, here = on_spark["cubes"], on_spark["here"]["cubes"]
    assert spark.keys() == here.keys()
    for name, cube in here.items():
        assert_frame_equal(spark[name], cube)
        assert cube["n"].sum() == 5000
        assert cube["locality"].null_count() > 0
        # Every cell has tens of units in each partition: its keys pass the modulus there.
        assert cube["n"].min() > 50


# ---- no Spark needed below -------------------------------------------------------


def _levels(dialect: str) -> list[str]:
    settings = splink_settings().get_settings(dialect).as_dict()
    return [lv["sql_condition"] for c in settings["comparisons"] for lv in c["comparison_levels"]]


def test_custom_levels_are_rewritten_for_spark():
    # On Spark a double-quoted name is a string literal: a level written in DuckDB's SQL
    # would compare two constants and never match, silently.
    spark = _levels("spark")
    assert not [s for s in spark if '"' in s]
    assert any("jaro_winkler(" in s for s in spark)
    assert not [s for s in spark if "jaro_winkler_similarity" in s.lower()]
    assert "`forename_l` = `surname_r`" in spark
    duck = _levels("duckdb")
    assert '"forename_l" = "surname_r"' in duck
    assert any(s.startswith('jaro_winkler_similarity("address_line1_l"') for s in duck)
    assert len(spark) == len(duck)


def test_apply_model_copies_every_trained_parameter():
    duck = splink_settings().get_settings("duckdb").as_dict()
    trained = json.loads(json.dumps(duck))
    trained["probability_two_random_records_match"] = 0.000321
    for c in trained["comparisons"]:
        for i, level in enumerate(c["comparison_levels"]):
            if not level.get("is_null_level"):
                level["m_probability"] = 0.5 / (i + 1)
                level["u_probability"] = 0.25 / (i + 1)
    out = apply_model(
        splink_settings().get_settings("spark").as_dict(), {"settings": trained}["settings"]
    )
    assert out["probability_two_random_records_match"] == 0.000321
    for c, t in zip(out["comparisons"], trained["comparisons"], strict=True):
        for level, saved in zip(c["comparison_levels"], t["comparison_levels"], strict=True):
            assert level.get("m_probability") == saved.get("m_probability")
            assert level.get("u_probability") == saved.get("u_probability")
        assert not [lv for lv in c["comparison_levels"] if '"' in lv["sql_condition"]]


def test_apply_model_refuses_a_model_of_other_comparisons():
    spark = splink_settings().get_settings("spark").as_dict()
    other = splink_settings({"unique_id", "forename", "surname", "dob", "postcode"})
    trained = other.get_settings("duckdb").as_dict()
    with pytest.raises(EngineError, match="differ"):
        apply_model(spark, trained)


def test_saved_model_reads_a_run_document_or_a_bare_model():
    bare = splink_settings().get_settings("duckdb").as_dict()
    assert saved_model({"threshold": 0.99, "settings": bare}) == bare
    assert saved_model(bare) == bare
    with pytest.raises(EngineError, match="not a linkage model"):
        saved_model({"threshold": 0.99})


def test_engine_settings_are_checked():
    with pytest.raises(EngineError, match="unknown engine 'polars'"):
        EngineConfig("polars")
    with pytest.raises(EngineError, match="only with --engine spark"):
        EngineConfig("duckdb", spark_master="spark://h:7077")


def test_run_refuses_a_bad_engine_or_model_before_any_work(tmp_path):
    from typer.testing import CliRunner

    from portal import cli

    raw = tmp_path / "raw"
    raw.mkdir()
    env = {"PORTAL_PSEUDONYM_KEY": "ab" * 32, "PORTAL_SDC_SECRET": "cd" * 32}
    bad = CliRunner().invoke(cli.app, ["run", "--raw", str(raw), "--engine", "polars"], env=env)
    assert bad.exit_code == 1
    assert "unknown engine 'polars'" in bad.output
    model = tmp_path / "model.json"
    model.write_text('{"threshold": 0.99}')
    bad = CliRunner().invoke(cli.app, ["run", "--raw", str(raw), "--linkage-model", str(model)],
                             env=env)  # fmt: skip
    assert bad.exit_code == 1
    assert "model.json" in bad.output and "not a linkage model" in bad.output
    model.write_text("{not json")
    bad = CliRunner().invoke(cli.app, ["run", "--raw", str(raw), "--linkage-model", str(model)],
                             env=env)  # fmt: skip
    assert bad.exit_code == 1 and "not JSON (line 1" in bad.output


def test_components_on_spark_give_the_drivers_labels(tmp_path):
    """Spark's clustering (for graphs the driver cannot hold) labels components exactly as
    the driver does: the same partition, numbered in first-seen order."""
    _need_spark()
    import numpy as np

    from pipelines.link import components

    rng = np.random.default_rng(5)
    ids = pl.Series("uid", [f"r{i}" for i in rng.permutation(60)])
    edges = pl.DataFrame({"uid_l": [f"r{i}" for i in rng.integers(0, 60, 40)],
                          "uid_r": [f"r{i}" for i in rng.integers(0, 60, 40)]})  # fmt: skip
    config = EngineConfig("spark", scratch=tmp_path / "scratch", spark_components_from=1)
    on_driver = components(ids, edges)
    on_spark = components(ids, edges, config)
    assert on_spark.to_list() == on_driver.to_list()
    assert on_driver.n_unique() < 60  # the graph has components of several records
    assert not (tmp_path / "scratch").exists()  # zone A scratch removed
    # A second Spark job in the same process works: the first one's session, whose
    # scratch folder is gone, was stopped rather than reused.
    again = EngineConfig("spark", scratch=tmp_path / "scratch2", spark_components_from=1)
    assert components(ids, edges, again).to_list() == on_driver.to_list()
    assert not (tmp_path / "scratch2").exists()
    # The JVM caches its first session's local directories: unless the cache is cleared
    # when a session stops, the second session recreates the first one's removed scratch.
    assert not (tmp_path / "scratch").exists()
