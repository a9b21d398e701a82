"""Where the linkage runs: DuckDB embedded in the pipeline (the default) or Spark.

Splink runs one model on several SQL backends. The pipeline keeps one code path and
chooses the backend here: `Engine` opens a Splink database API, registers a polars frame
with it, brings predictions back as polars, and forms connected components (persons,
families) on the same backend.

Why this split rather than a dataframe layer that compiles to both engines (Ibis): the
stage that outgrows one machine is pairwise scoring (84 of 100 s at 300,000 people, and
quadratic within blocks), and Splink already compiles it to Spark SQL. The other stages
are polars code, fastest on one machine; with `--engine spark` the row-wise and additive
ones (ingest's row checks, the cubes' cell counts) run that same code on Spark partitions
(`pipelines/partitioned.py`), the rest on the driver. One model, trained once, is
applied by either backend (`apply_model`), so a Spark run reproduces a DuckDB run's
links rather than re-estimating its own (see docs/scale.md).

Zone A on Spark: the records scored here are identifiable. Spark's scratch space
(`spark.local.dir`, shuffle and spill files) and Splink's lineage checkpoints are put in
the run's zone A folder, never in the working directory or /tmp, and removed at the end.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

ENGINES = ("duckdb", "spark")
DEFAULT_SPARK_MASTER = "local[2]"


class EngineError(ValueError):
    """A bad engine setting, or Spark unavailable (missing Java or pyspark)."""


@dataclass(frozen=True)
class EngineConfig:
    """How to run the linkage. `scratch` is a zone A folder for Spark's spill files."""

    name: str = "duckdb"
    spark_master: str | None = None
    memory_limit: str = "2GB"  # DuckDB's cap (it spills to disk past it)
    threads: int = 2
    scratch: Path | None = None  # zone A, owner-only: spill files and checkpoints
    shuffle_partitions: int = 8
    # Graphs (records for persons, persons for families) of at least this many nodes are
    # clustered on Spark; smaller ones on the driver, where they take milliseconds.
    spark_components_from: int = 5_000_000
    # In local mode the driver's JVM is also the executor: Spark's default 1 GB ran out
    # of memory scoring a 100,000-person county (measured). Ignored on a cluster, where
    # the cluster's own settings apply.
    spark_driver_memory: str = "6g"

    def __post_init__(self) -> None:
        if self.name not in ENGINES:
            raise EngineError(f"unknown engine {self.name!r}; choose one of {', '.join(ENGINES)}")
        if self.spark_master is not None and self.name != "spark":
            raise EngineError("--spark-master applies only with --engine spark")
        if not re.fullmatch(
            r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", self.memory_limit, re.I
        ):
            raise EngineError(
                f"memory limit {self.memory_limit!r}: expected a size such as 2GB or 6GB"
            )


class Backend:
    """A Splink database API with the polars edges the pipeline needs."""

    name: str
    api: Any

    def register(self, frame: pl.DataFrame) -> Any:
        raise NotImplementedError

    def to_polars(self, splink_frame: Any, columns: list[str]) -> pl.DataFrame:
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - overridden
        pass


class DuckDBBackend(Backend):
    name = "duckdb"

    def __init__(self, config: EngineConfig) -> None:
        import duckdb
        from splink import DuckDBAPI

        # DuckDB would otherwise take up to 80% of RAM; a cap keeps a county run
        # inside the memory budget (it spills to disk past the cap). Its spill files hold
        # the records being scored (names, dates of birth): without a temp_directory an
        # in-memory DuckDB spills into `.tmp` under whatever the working directory is, so
        # they go to the run's zone A scratch folder instead.
        settings: dict[str, Any] = {"memory_limit": config.memory_limit, "threads": config.threads}
        if config.scratch is not None:
            settings["temp_directory"] = str(config.scratch / "spill")
        self.con = duckdb.connect(config=settings)
        self.api = DuckDBAPI(connection=self.con)

    def register(self, frame: pl.DataFrame) -> Any:
        return self.api.register(frame.to_arrow())

    def to_polars(self, splink_frame: Any, columns: list[str]) -> pl.DataFrame:
        out = pl.from_arrow(splink_frame.as_duckdbpyrelation().select(", ".join(columns)).arrow())
        assert isinstance(out, pl.DataFrame)
        return out

    def close(self) -> None:
        self.con.close()


class SparkBackend(Backend):
    name = "spark"

    def __init__(self, config: EngineConfig) -> None:
        self._session = ExitStack()
        self.spark = self._session.enter_context(owned_spark(config))
        from splink import SparkAPI

        # "parquet": Splink writes each step to the session's checkpoint folder (zone A)
        # to cut Spark's query plans short; plans otherwise grow with every EM iteration.
        self.api = SparkAPI(spark_session=self.spark, break_lineage_method="parquet")

    def register(self, frame: pl.DataFrame) -> Any:
        # Through pandas (Arrow-accelerated): Spark 3 cannot read an Arrow table directly.
        sdf = self.spark.createDataFrame(frame.to_pandas())
        return self.api.register(sdf)

    def to_polars(self, splink_frame: Any, columns: list[str]) -> pl.DataFrame:
        pdf = splink_frame.as_spark_dataframe().select(*columns).toPandas()
        return pl.from_pandas(pdf)

    def close(self) -> None:
        self._session.close()


def spark_session(config: EngineConfig) -> Any:
    """A Spark session for the linkage: local mode unless a master URL is given.

    Raises EngineError with what to install when pyspark or Java is missing."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise EngineError(
            "--engine spark needs pyspark: pip install 'anonymised-portal[spark]' "
            "and a Java runtime (Debian: apt install openjdk-17-jre-headless)"
        ) from exc
    if shutil.which("java") is None and not _java_home():
        raise EngineError(
            "--engine spark needs a Java runtime: apt install openjdk-17-jre-headless "
            "(or set JAVA_HOME)"
        )
    from splink.internals.spark.jar_location import similarity_jar_location

    master = config.spark_master or DEFAULT_SPARK_MASTER
    builder = (
        SparkSession.builder.master(master)
        .appName("portal-linkage")
        # Splink's string-similarity functions (Jaro-Winkler and friends) as Scala UDFs.
        .config("spark.jars", similarity_jar_location())
        .config("spark.sql.shuffle.partitions", str(config.shuffle_partitions))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    if master.startswith("local"):
        builder = builder.config("spark.driver.memory", config.spark_driver_memory)
        # Partition-mapped stages (pipelines/partitioned.py) run polars in Spark's Python
        # workers: in local mode they must be this interpreter, with this environment's
        # packages, not whatever `python3` is first on the PATH (pyspark 3.5 reads only
        # the variable, not a conf). A path, not a secret; one already set is kept. On a
        # cluster the executors' Python is the cluster's (docs/scale.md says what it needs).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if config.scratch is not None:
        builder = builder.config("spark.local.dir", str(config.scratch / "spill"))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    if config.scratch is not None:
        spark.sparkContext.setCheckpointDir(str(config.scratch / "checkpoints"))
    return spark


def stop_session(spark: Any) -> None:
    """Stop a Spark session this process started, so a later one writes its scratch files
    where its own configuration says.

    The JVM outlives the session and caches its first session's local directories
    (`spark.local.dir`) for every later one: without clearing that cache a second session
    (the linkage after ingest, or a second run in the same process) wrote into the first
    one's scratch folder after it had been removed, recreating it world-readable and
    leaving it behind (seen in a test: a zone A folder outliving its run)."""
    jvm = spark._jvm
    spark.stop()
    if jvm is not None:
        getattr(getattr(jvm.org.apache.spark.util, "Utils$"), "MODULE$").clearLocalRootDirs()


@contextmanager
def owned_spark(config: EngineConfig) -> Iterator[Any]:
    """A Spark session for one stage. A session that was running before (Databricks, a
    notebook) belongs to its owner: it is used, never stopped. One started here is stopped
    when the stage ends, because its scratch folder (zone A) is removed then and a later
    session must not write into a folder that is gone."""
    from pyspark.sql import SparkSession

    owned = SparkSession.getActiveSession() is None
    spark = spark_session(config)
    try:
        yield spark
    finally:
        if owned:
            stop_session(spark)


@contextmanager
def zone_a_scratch(config: EngineConfig) -> Iterator[None]:
    """The stage's scratch folder (`config.scratch`: spill files and checkpoints, which
    hold identifiable records), owner-only while the stage runs and removed after it."""
    if config.scratch is not None:
        config.scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        yield
    finally:
        if config.scratch is not None:
            shutil.rmtree(config.scratch, ignore_errors=True)


def _java_home() -> bool:
    home = os.environ.get("JAVA_HOME")
    return home is not None and Path(home, "bin", "java").exists()


@contextmanager
def open_backend(config: EngineConfig | None = None) -> Iterator[Backend]:
    """The backend for one linkage; its zone A scratch folder (Spark's spill and
    checkpoints, DuckDB's spill) is removed afterwards: it holds identifiable records
    while the run lasts."""
    config = config or EngineConfig()
    with zone_a_scratch(config):
        backend: Backend = SparkBackend(config) if config.name == "spark" else DuckDBBackend(config)
        try:
            yield backend
        finally:
            backend.close()


def first_seen_labels(ids: pl.Series, clusters: pl.DataFrame) -> pl.Series:
    """Component labels 0..k-1 numbered in order of each component's first record in
    `ids` (the labels the single-machine `components` gives), from any backend's
    clustering (`clusters`: uid, cluster_id)."""
    frame = pl.DataFrame({"uid": ids}).with_row_index("i").join(clusters, on="uid", how="left")
    if frame["cluster_id"].null_count():
        raise EngineError("the clustering lost records")
    first = frame.group_by("cluster_id").agg(pl.col("i").min().alias("first"))
    first = first.sort("first").with_row_index("component")
    out = frame.join(first, on="cluster_id").sort("i")["component"].cast(pl.Int64)
    return out.alias("component")


def spark_components(ids: pl.Series, edges: pl.DataFrame, config: EngineConfig) -> pl.Series:
    """Connected components of `edges` (uid_l, uid_r) over `ids`, computed on Spark with
    Splink's iterative clustering; labels as `pipelines.link.components` gives them."""
    from splink.clustering import cluster_pairwise_predictions_at_threshold

    with open_backend(config) as backend:
        nodes = backend.register(pl.DataFrame({"uid": ids.cast(pl.Utf8)}))
        links = backend.register(
            edges.select(pl.col("uid_l").cast(pl.Utf8), pl.col("uid_r").cast(pl.Utf8))
        )
        clustered = cluster_pairwise_predictions_at_threshold(
            nodes, links, backend.api, "uid", "uid_l", "uid_r"
        )
        clusters = backend.to_polars(clustered, ["uid", "cluster_id"])
    clusters = clusters.with_columns(pl.col("uid").cast(ids.dtype))
    return first_seen_labels(ids, clusters)


def saved_model(document: dict[str, Any]) -> dict[str, Any]:
    """The Splink model in a saved document: a run's linkage_model.json (which wraps it
    with the threshold and training summary) or a bare Splink model."""
    model = document.get("settings", document)
    if not isinstance(model, dict) or "comparisons" not in model:
        raise EngineError(
            "not a linkage model: expected a run's zone_a/linkage_model.json or a Splink model"
        )
    return model


def apply_model(settings: dict[str, Any], trained: dict[str, Any]) -> dict[str, Any]:
    """`settings` (made for the backend's SQL dialect) with the trained parameters of
    `trained` (a saved model from any backend): the prior, and each level's m and u.

    A saved model's SQL is in the dialect it was trained in, so it cannot be loaded on
    another backend as it is; the comparisons are rebuilt for the new dialect from the
    same settings and the parameters copied level by level. Raises EngineError when the
    two do not describe the same comparisons."""
    out = dict(settings)
    out["probability_two_random_records_match"] = trained["probability_two_random_records_match"]
    new = [dict(c) for c in settings["comparisons"]]
    old = trained["comparisons"]
    if [c["output_column_name"] for c in new] != [c["output_column_name"] for c in old]:
        raise EngineError("the saved model's comparisons differ from the settings'")
    for comparison, saved in zip(new, old, strict=True):
        levels = [dict(level) for level in comparison["comparison_levels"]]
        saved_levels = saved["comparison_levels"]
        labels = [lv.get("label_for_charts") for lv in levels]
        if labels != [lv.get("label_for_charts") for lv in saved_levels]:
            raise EngineError(
                f"the saved model's levels for {comparison['output_column_name']} differ"
            )
        for level, saved_level in zip(levels, saved_levels, strict=True):
            for key in ("m_probability", "u_probability", "tf_minimum_u_value"):
                if key in saved_level:
                    level[key] = saved_level[key]
        comparison["comparison_levels"] = levels
    out["comparisons"] = new
    return out
