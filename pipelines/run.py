"""The orchestrator: chains the pure stages, and is the only place that writes.

A run writes into a fresh folder beside the previous outputs and swaps it in
only when every stage has succeeded, so a failed run changes nothing that was
there before (and file-level problems stop the run before anything is written).

Work folder layout (default data/work):
    zone_a/                 identifiable; never served by the portal
        quarantine/<source>.csv     quarantined rows with their reasons
        quarantine_report.csv       counts by source and reason
        linkage_model.json          Splink settings, threshold, training summary
        linked_records.parquet      every accepted record with its person/family key
    zone_b/                 pseudonymous
        persons.parquet
        events/<source>.parquet
        research_table.parquet  one row per person: the source of research extracts
        geography.parquet       LSOA -> ward -> locality
    run.json                summary of the run (no identifiers, no key)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from anonymise.policy import Policy, default_policy
from anonymise.pseudonymise import MasterKey
from pipelines.derive import ZoneBFrames, derive_all
from pipelines.ingest import IngestResult, ingest_all, ingest_summary, quarantine_report
from pipelines.link import Linked, link, load_trace_response
from pipelines.publish import OBJECTORS_MEASURE, objector_frame, publish
from pipelines.quality import LinkageQuality, linkage_quality, load_truth
from pipelines.research import build_research_table
from pipelines.store import Store
from pipelines.zone_b import ZoneB, build_zone_b, load_postcode_lookup

Progress = Callable[[str, str], None]  # (stage, message)


@dataclass
class RunResult:
    run_id: str
    work_dir: Path
    ingest: pl.DataFrame
    quarantine: pl.DataFrame
    linkage: dict[str, LinkageQuality] | None
    counts: dict[str, int]
    timings: dict[str, float] = field(default_factory=dict)
    zone_b: ZoneB | None = None
    release_id: str | None = None
    objectors_excluded: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "release_id": self.release_id,
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
            "counts": self.counts,
            "ingest": self.ingest.to_dicts(),
            "quarantine": self.quarantine.to_dicts(),
            "linkage_quality": {k: v.to_dict() for k, v in self.linkage.items()}
            if self.linkage
            else None,
        }


def _noop(stage: str, message: str) -> None:
    return None


def run_pipeline(
    raw_dir: Path,
    work_dir: Path,
    key: MasterKey,
    *,
    as_at: date | None = None,
    store: Store | None = None,
    sdc_secret: bytes | None = None,
    policy: Policy | None = None,
    progress: Progress = _noop,
    after_stage: Callable[[str], None] | None = None,
) -> RunResult:
    """ingest -> link -> pseudonymise -> derive -> publish.

    Outputs land in `work_dir` only if every stage succeeds; the release is
    written (one transaction) only when `store` and `sdc_secret` are given."""
    as_at = as_at or date.today()
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
    timings: dict[str, float] = {}

    def stage(name: str) -> None:
        if after_stage is not None:
            after_stage(name)

    t = time.perf_counter()
    progress("ingest", "reading and validating extracts")
    results: dict[str, IngestResult] = ingest_all(raw_dir, as_at=as_at)
    timings["ingest"] = time.perf_counter() - t
    stage("ingest")

    t = time.perf_counter()
    progress("link", "linking records into persons and families (Splink on DuckDB)")
    linked: Linked = link(results, trace=load_trace_response(raw_dir))
    timings["link"] = time.perf_counter() - t
    timings.update({f"link.{k}": v for k, v in linked.timings.items()})
    stage("link")

    quality = None
    truth = load_truth(raw_dir)
    if truth is not None:
        t = time.perf_counter()
        progress("quality", "measuring linkage against the synthetic ground truth")
        quality = linkage_quality(linked.records, truth)
        timings["quality"] = time.perf_counter() - t

    t = time.perf_counter()
    progress("pseudonymise", "building the pseudonymous person and family index")
    zb = build_zone_b(linked.records, results, key, load_postcode_lookup(raw_dir))
    timings["pseudonymise"] = time.perf_counter() - t
    stage("pseudonymise")

    t = time.perf_counter()
    progress("derive", "deriving measures (objectors excluded)")
    frames, n_objectors = derive_all(ZoneBFrames(zb.persons, zb.events, as_at))
    frames[OBJECTORS_MEASURE.name] = objector_frame(zb.persons)
    research = build_research_table(zb.persons, zb.events, as_at)
    timings["derive"] = time.perf_counter() - t
    stage("derive")

    result = RunResult(
        run_id=run_id,
        work_dir=work_dir,
        ingest=ingest_summary(results),
        quarantine=quarantine_report(results),
        linkage=quality,
        counts=dict(linked.model.counts),
        timings=timings,
        zone_b=zb,
        objectors_excluded=n_objectors,
    )

    def publish_release() -> None:
        if store is None or sdc_secret is None:
            return
        t = time.perf_counter()
        progress("publish", "protecting and publishing the release (one transaction)")
        result.release_id = publish(
            store,
            frames,
            policy=policy or default_policy(),
            secret=sdc_secret,
            data_as_at=as_at,
            run_metadata={"run_id": run_id, "counts": result.counts},
        )
        timings["publish"] = time.perf_counter() - t
        stage("publish")

    t = time.perf_counter()
    progress("write", f"writing outputs to {work_dir}")
    with owner_only():
        _write_outputs(
            work_dir,
            result,
            results,
            linked,
            zb,
            research,
            after_stage=stage,
            before_swap=publish_release,
        )
    timings["write"] = time.perf_counter() - t - timings.get("publish", 0.0)
    return result


@contextlib.contextmanager
def owner_only() -> Iterator[None]:
    """Everything created inside is the owner's alone: folders 0700, files 0600. Zone A
    holds names, dates of birth and NHS numbers; zone B pseudonymous records. The umask is
    process-wide, which is why only the writing step sets it (the pipeline writes from one
    thread)."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def geography(persons: pl.DataFrame) -> pl.DataFrame:
    """LSOA -> ward -> locality for every LSOA in the index (from the public lookup)."""
    return (
        persons.select(
            pl.col("lsoa_code").alias("lsoa"),
            pl.col("ward").fill_null("Not known"),
            pl.col("locality").fill_null("Not known"),
        )
        .drop_nulls("lsoa")
        .unique("lsoa")
        .sort("lsoa")
    )


def _write_outputs(
    work_dir: Path,
    result: RunResult,
    results: dict[str, IngestResult],
    linked: Linked,
    zb: ZoneB,
    research: pl.DataFrame,
    *,
    after_stage: Callable[[str], None],
    before_swap: Callable[[], None],
) -> None:
    work_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = work_dir.parent / f".{work_dir.name}.staging-{result.run_id}"
    try:
        qdir = staging / "zone_a" / "quarantine"
        qdir.mkdir(parents=True)
        for name, r in results.items():
            r.quarantined.write_csv(qdir / f"{name}.csv")
        result.quarantine.write_csv(staging / "zone_a" / "quarantine_report.csv")
        (staging / "zone_a" / "linkage_model.json").write_text(linked.model.to_json())
        linked.records.write_parquet(staging / "zone_a" / "linked_records.parquet")
        edir = staging / "zone_b" / "events"
        edir.mkdir(parents=True)
        zb.persons.write_parquet(staging / "zone_b" / "persons.parquet")
        research.write_parquet(staging / "zone_b" / "research_table.parquet")
        geography(zb.persons).write_parquet(staging / "zone_b" / "geography.parquet")
        for name, ev in zb.events.items():
            ev.write_parquet(edir / f"{name}.parquet")
        after_stage("write")
        # The release is written only once every output is staged; if it fails the
        # previous release and the previous outputs both stay as they were.
        before_swap()
        (staging / "run.json").write_text(json.dumps(result.summary(), indent=2, default=str))
        # Swap in: the old outputs survive until the new ones are complete.
        old = work_dir.parent / f".{work_dir.name}.old-{result.run_id}"
        if work_dir.exists():
            work_dir.rename(old)
        staging.rename(work_dir)
        if old.exists():
            shutil.rmtree(old)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
