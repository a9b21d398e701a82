"""Where a row-wise stage runs: here, in polars, or on Spark partitions of its rows.

One implementation of each rule: a stage's row-wise part is a polars function of a frame,
and Spark runs that same function on each partition through Arrow (`mapInArrow`: the
partition's Arrow batches become one polars frame, the function runs on it, its result
goes back as Arrow). So the single-machine engine stays polars and the two engines cannot
drift apart, as a dataframe layer compiling to both (Ibis) or a stage written twice could.

Only a function whose result over the whole frame is the union of its results over any
split of the rows may be mapped: every output row depends on its own input row alone.
Anything that compares rows (a repeated key, a repeated row) is applied afterwards, over
the whole collected frame, by the caller. Each frame carries an order column (the file's
row number, given before partitioning) that the function keeps; the result is sorted by
it, so it is frame-equal to the function applied here.

pyspark is imported only inside the Spark branch: `--engine duckdb` never needs it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import polars as pl

from pipelines.engine import EngineConfig, owned_spark, zone_a_scratch

RowFunction = Callable[[pl.DataFrame], pl.DataFrame]
# Spark jobs of an aggregate submitted at once (Spark schedules them side by side).
CONCURRENT_JOBS = 4


class MapRows(Protocol):
    """Where row-wise and additive polars functions run."""

    @property
    def name(self) -> str:
        """polars or spark."""
        ...

    def __call__(self, frame: pl.DataFrame, fn: RowFunction, *, order: str) -> pl.DataFrame:
        """A row-wise `fn` applied to `frame` (which has the `order` column): its result,
        with `order`, sorted by it."""
        ...

    def aggregate(self, jobs: Mapping[str, Additive]) -> dict[str, pl.DataFrame]:
        """Each job's `fn(frame)`, by name (see `Additive`)."""
        ...


@dataclass(frozen=True)
class Additive:
    """`fn(frame)`, where `fn` is additive: `combine` of the union of `fn` over any split
    of the rows equals `fn` over them all (counts and sums, grouped). Here `fn` runs once
    on the whole frame; on Spark once per partition, then `combine` on the union of the
    partial results."""

    frame: pl.DataFrame
    fn: RowFunction
    combine: RowFunction


@dataclass(frozen=True)
class OnDriver:
    """The function applied to the whole frame in this process (the default)."""

    name: str = "polars"

    def __call__(self, frame: pl.DataFrame, fn: RowFunction, *, order: str) -> pl.DataFrame:
        return fn(frame)

    def aggregate(self, jobs: Mapping[str, Additive]) -> dict[str, pl.DataFrame]:
        return {name: job.fn(job.frame) for name, job in jobs.items()}


ON_DRIVER = OnDriver()


def _spark_arrow_type(t: Any) -> Any:
    """An Arrow type Spark 3.5 can hold: polars exports large strings and lists, and
    unsigned integers, which Spark has no type for (widened to the next signed one)."""
    import pyarrow as pa

    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_dictionary(t):  # polars' categoricals: their values
        return _spark_arrow_type(t.value_type)
    if pa.types.is_large_list(t) or pa.types.is_list(t):
        return pa.list_(_spark_arrow_type(t.value_type))
    widen = {pa.uint8(): pa.int16(), pa.uint16(): pa.int32(), pa.uint32(): pa.int64()}
    return widen.get(t, t)


def spark_schema_of(frame: pl.DataFrame) -> Any:
    """The Spark schema for a polars frame's columns."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import from_arrow_schema

    arrow = frame.head(0).to_arrow().schema
    return from_arrow_schema(pa.schema([(f.name, _spark_arrow_type(f.type)) for f in arrow]))


class OnSpark:
    """The function applied on Spark, one polars call per partition.

    `partitions`: how many partitions the rows are cut into. By default Spark cuts the
    frame into the session's parallelism in slices, in order; given, a row-wise stage's
    rows are cut into contiguous runs of the order column (a partition is a slice of the
    file) and an additive stage's round-robin."""

    name = "spark"

    def __init__(self, spark: Any, *, partitions: int | None = None) -> None:
        self.spark = spark
        self.partitions = partitions

    def to_spark(self, frame: pl.DataFrame, order: str | None = None) -> Any:
        """`frame` as a Spark DataFrame in `self.partitions` partitions: contiguous runs of
        `order` when given, else Spark's round-robin split."""
        from pyspark.sql.pandas.types import to_arrow_schema

        schema = spark_schema_of(frame)
        arrow = frame.to_arrow().cast(to_arrow_schema(schema))
        # Spark 3.5 reads pandas through Arrow (not an Arrow table directly).
        sdf = self.spark.createDataFrame(arrow.to_pandas(), schema=schema)
        if self.partitions is not None and sdf.rdd.getNumPartitions() != self.partitions:
            sdf = (
                sdf.repartitionByRange(self.partitions, order)
                if order is not None
                else sdf.repartition(self.partitions)
            )
        return sdf

    def _map(self, frame: pl.DataFrame, fn: RowFunction, order: str | None) -> pl.DataFrame:
        """`fn` on each partition; the partial results, unioned, in polars."""
        import pyarrow as pa
        from pyspark.sql.pandas.types import to_arrow_schema

        # The result's types, from the function on no rows: what every partition returns.
        expected = fn(frame.head(0))
        out_schema = spark_schema_of(expected)
        out_arrow = to_arrow_schema(out_schema)
        in_types = frame.schema

        # Shipped to the executors: `fn` and the two schemas, nothing else of this process.
        def per_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            got = list(batches)
            if not sum(b.num_rows for b in got):
                return
            part = pl.from_arrow(pa.Table.from_batches(got))
            assert isinstance(part, pl.DataFrame)
            yield from fn(part.cast(in_types)).to_arrow().cast(out_arrow).to_batches()

        mapped = self.to_spark(frame, order).mapInArrow(per_partition, out_schema)
        return _collect(mapped, out_arrow).cast(expected.schema)

    def __call__(self, frame: pl.DataFrame, fn: RowFunction, *, order: str) -> pl.DataFrame:
        out = self._map(frame, fn, order)
        if order not in out.columns:
            raise ValueError(f"a partition-mapped function must keep the order column {order!r}")
        return out.sort(order)

    def aggregate(self, jobs: Mapping[str, Additive]) -> dict[str, pl.DataFrame]:
        # One Spark job per frame (a measure's cube), several submitted at once: each is
        # small and mostly waiting (measured: publish's 31.9 wall s held 14.5 CPU s at
        # 20,000 people when they ran one after another).
        from concurrent.futures import ThreadPoolExecutor

        def run(job: Additive) -> pl.DataFrame:
            return job.combine(self._map(job.frame, job.fn, None))

        with ThreadPoolExecutor(max_workers=CONCURRENT_JOBS) as pool:
            done = {name: pool.submit(run, job) for name, job in jobs.items()}
            return {name: future.result() for name, future in done.items()}


def _collect(sdf: Any, schema: Any) -> pl.DataFrame:
    """A Spark frame's rows as polars, through Arrow (no pandas round trip, which would
    turn list columns into object arrays)."""
    import pyarrow as pa

    to_arrow = getattr(sdf, "toArrow", None)  # public from Spark 4
    table = (
        to_arrow()
        if to_arrow is not None
        else pa.Table.from_batches(sdf._collect_as_arrow(), schema=schema)
    )
    out = pl.from_arrow(table)
    assert isinstance(out, pl.DataFrame)
    return out


@contextmanager
def partition_mapper(config: EngineConfig, *, partitions: int | None = None) -> Iterator[MapRows]:
    """Polars here for `--engine duckdb`; Spark for `--engine spark`, in a session whose
    scratch folder (`config.scratch`, zone A: the rows are identifiable) is removed when
    the stage ends. A session that was running before (a notebook, Databricks) is used and
    left running; one started here is stopped."""
    if config.name != "spark":
        yield ON_DRIVER
        return
    with zone_a_scratch(config), owned_spark(config) as spark:
        yield OnSpark(spark, partitions=partitions)
