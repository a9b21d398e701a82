"""Publish: derived record-level frames -> release cubes -> one atomic release.

Each measure's frame (one row per counted unit) gets persistent record keys
(from its unit id, keyed with the disclosure-control secret) and is aggregated
to its finest cube. The cubes go into the store in one transaction; the
release layer (`anonymise/release.py`) is the only reader, and it only ever
returns protected tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import polars as pl

from anonymise.cellkey import build_cube, with_record_key
from anonymise.policy import Policy
from pipelines.derive import MEASURES
from pipelines.store import MeasureMeta, Store

OBJECTORS_MEASURE = MeasureMeta(
    name="objectors_excluded",
    title="People excluded because they objected",
    definition=(
        "People on the objections register, left out of every statistic and research "
        "extract. Shown so that readers know the figures exclude them."
    ),
    unit="people",
    breakdowns=("locality",),
)


def build_cubes(frames: Mapping[str, pl.DataFrame], secret: bytes) -> dict[str, pl.DataFrame]:
    """Record keys per unit, then the finest cube of each measure's breakdowns."""
    cubes = {}
    for name, frame in frames.items():
        meta = OBJECTORS_MEASURE if name == OBJECTORS_MEASURE.name else MEASURES[name].meta
        keyed = with_record_key(frame.lazy(), pseudonym="unit_id", secret=secret)
        cubes[name] = build_cube(keyed, meta.breakdowns).collect()
    return cubes


def objector_frame(persons: pl.DataFrame) -> pl.DataFrame:
    return persons.filter(pl.col("objected")).select(
        pl.concat_str(pl.lit("objector|"), "person_id").alias("unit_id"),
        pl.col("locality").fill_null("Not known"),
    )


def publish(
    store: Store,
    frames: Mapping[str, pl.DataFrame],
    *,
    policy: Policy,
    secret: bytes,
    data_as_at: date,
    run_metadata: Mapping[str, Any],
) -> str:
    cubes = build_cubes(frames, secret)
    meta = {name: MEASURES[name].meta for name in frames if name in MEASURES}
    if OBJECTORS_MEASURE.name in frames:
        meta[OBJECTORS_MEASURE.name] = OBJECTORS_MEASURE
    return store.write_release(
        cubes,
        meta,
        policy_id=policy.ref,
        data_as_at=data_as_at,
        run_metadata=dict(run_metadata),
    )
