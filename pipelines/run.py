"""The orchestrator: chains the pure stages, and is the only place that writes.

A run writes into a fresh folder beside the previous outputs and swaps it in
only when every stage has succeeded, so a failed run changes nothing that was
there before (and file-level problems stop the run before anything is written).

Work folder layout (default data/work):
    zone_a/                 identifiable; never served by the portal
        quarantine/<source>.csv     quarantined rows with their reasons
        quarantine_report.csv       counts by source and reason
        linkage_model.json          Splink settings, threshold, training summary
        linked_records.parquet      every accepted record with its person/family key (kept
                                    only as long as the retention schedule keeps zone A
                                    copies: clerical review and evaluation shares read it)
        linkage_decisions.parquet   every merge decision the threshold made (clerical review)
        clerical_labels.parquet     people's labels of sampled decisions, carried from run
                                    to run (`portal linkage review`)
    zone_b/                 pseudonymous
        persons.parquet
        events/<source>.parquet
        research_table.parquet  one row per person: the source of research extracts
        geography.parquet       LSOA -> ward -> locality
    run.json                summary of the run (no identifiers, no key)

Before anything is written, every objection in the register must be applied or
acknowledged (pipelines/objections.py) and active erasure and restriction requests
are applied (pipelines/requests.py). The release is routine or, with `revision=True`
and when the revisions policy allows it, a revision (pipelines/publish.py). Each run
lists what the retention schedule says is due (pipelines/retention.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from anonymise.policy import Policy, default_policy
from anonymise.pseudonymise import MasterKey
from pipelines import objections as obj
from pipelines import retention
from pipelines.clerical import estimate_quality, read_labels
from pipelines.derive import ZoneBFrames, derive_all
from pipelines.engine import EngineConfig, saved_model
from pipelines.ingest import IngestResult, ingest_all, ingest_summary, quarantine_report
from pipelines.link import Linked, link, load_trace_response
from pipelines.mapping import Mapping
from pipelines.partitioned import partition_mapper
from pipelines.publish import (
    Published,
    ReleasePlan,
    RevisionRefused,
    check_revision_schedule,
    plan_release,
    publish,
)
from pipelines.quality import LinkageQuality, linkage_quality, load_truth
from pipelines.reference import load_reference
from pipelines.requests import RequestMatches, active_requests, match_requests, record_applied
from pipelines.research import build_research_table
from pipelines.store import Store
from pipelines.zone_b import ZoneB, build_zone_b, load_postcode_lookup, person_pseudonyms
from registry.settings import WorkFolder

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
    linkage_model: dict[str, Any] = field(default_factory=dict)
    objections: obj.ObjectionReport | None = None
    requests: RequestMatches | None = None
    published: Published | None = None
    retention_due: list[retention.DueItem] = field(default_factory=list)

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
            # No ground truth needed: the model's own estimates, and the clerical
            # review's where people have labelled decisions.
            "linkage_model": self.linkage_model,
            "objections": self.objections.counts if self.objections else None,
            "objection_warnings": self.objections.warning_counts() if self.objections else None,
            "requests": self.requests.counts() if self.requests else None,
            "release": self.published.summary() if self.published else None,
            "retention_due": {d.category: d.count for d in self.retention_due},
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
    revision: bool = False,
    accept_unmatched_objections: obj.Acknowledge = (),
    actor: str = "pipeline",
    run_date: date | None = None,
    keep_zone_a: bool | None = None,
    mapping: Mapping | None = None,
    engine: str = "duckdb",
    spark_master: str | None = None,
    linkage_model: dict[str, Any] | None = None,
    memory_limit: str = "2GB",
) -> RunResult:
    """ingest -> link -> objections and requests -> pseudonymise -> derive -> publish.

    Outputs land in `work_dir` only if every stage succeeds; the release is
    written (one transaction) only when `store` and `sdc_secret` are given.

    revision: write a revision release (refused unless the policy's `[revisions]` allows
    it). accept_unmatched_objections: register references (or "all") whose unmatched or
    ambiguous objection is acknowledged (kept in the store and audited); any other such
    objection, or a register row with no usable identifier, stops the run with
    `ObjectionError` before anything is written. keep_zone_a: keep the identifiable linked
    records in zone_a/ (default: only if the retention schedule keeps zone A copies).
    mapping: how the council's own exports map to the source contracts (a mapping file).
    engine, spark_master: where the linkage runs (pipelines/engine.py; DuckDB by default).
    linkage_model: a saved linkage model (a run's zone_a/linkage_model.json) to apply
    instead of training a new one, e.g. to reproduce a run on another engine.
    memory_limit: DuckDB's cap for the linkage; past it, it spills to zone A scratch."""
    as_at = as_at or date.today()
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
    timings: dict[str, float] = {}
    policy = policy or default_policy()
    publishing = store is not None and sdc_secret is not None

    def stage(name: str) -> None:
        if after_stage is not None:
            after_stage(name)

    # Refuse a revision the schedule does not allow before any work is done.
    plan: ReleasePlan | None = None
    if publishing:
        assert store is not None
        plan = plan_release(store, revision=revision, data_as_at=as_at)
        check_revision_schedule(plan, policy, as_at)
    elif revision:
        raise RevisionRefused("a revision release needs a store and the disclosure-control secret")
    reference = load_reference(raw_dir)  # before the long stages: a missing file stops here

    engine_config = EngineConfig(
        engine,
        spark_master=spark_master,
        memory_limit=memory_limit,
        # Spill files (DuckDB's and Spark's) and Spark's checkpoints hold identifiable
        # records: a zone A folder beside the work folder, owner-only, removed when the
        # linkage ends.
        scratch=work_dir.parent / f".{work_dir.name}.scratch-{run_id}",
    )

    t = time.perf_counter()
    progress("ingest", f"reading and validating extracts ({_where_rows_run(engine)})")
    # On Spark each extract's row checks run on partitions, in a session of their own
    # whose zone A scratch folder (the rows are identifiable) is removed when ingest ends.
    with partition_mapper(_stage_scratch(engine_config, "ingest")) as rows:
        results: dict[str, IngestResult] = ingest_all(
            raw_dir, as_at=as_at, run_date=run_date, mapping=mapping, map_rows=rows
        )
    timings["ingest"] = time.perf_counter() - t
    stage("ingest")

    t = time.perf_counter()
    progress("link", f"linking records into persons and families (Splink on {engine})")
    linked: Linked = link(
        results,
        trace=load_trace_response(raw_dir),
        engine=engine_config,
        trained=saved_model(linkage_model) if linkage_model is not None else None,
    )
    timings["link"] = time.perf_counter() - t
    timings.update({f"link.{k}": v for k, v in linked.timings.items()})
    stage("link")

    # Every objection is applied or acknowledged before anything is written.
    report = obj.assess(results["objections"], linked.objections, obj.load_acknowledgements(store))
    new_acks = obj.to_acknowledge(report, accept_unmatched_objections)
    if new_acks:
        report = obj.assess(
            results["objections"],
            linked.objections,
            obj.load_acknowledgements(store) | set(new_acks),
        )
    if report.blocking:
        if store is not None:
            store.audit(actor, "objections_refused", {"run_id": run_id, **report.counts})
        raise obj.ObjectionError(report)
    obj.acknowledge(store, new_acks, actor=actor, run_id=run_id)
    progress(
        "objections",
        f"{report.counts['received']:,} received, {report.counts['matched']:,} matched, "
        f"{report.counts['people_excluded_from_research']:,} people excluded",
    )

    requests = match_requests(
        linked.records,
        active_requests(store) if store is not None else active_requests_none(),
        key,
    )

    quality = None
    truth = load_truth(raw_dir)
    if truth is not None:
        t = time.perf_counter()
        progress("quality", "measuring linkage against the synthetic ground truth")
        quality = linkage_quality(linked.records, truth)
        timings["quality"] = time.perf_counter() - t

    t = time.perf_counter()
    progress("pseudonymise", "building the pseudonymous person and family index")
    zb = build_zone_b(
        linked.records,
        results,
        key,
        load_postcode_lookup(raw_dir),
        objections=report.applied,
        removed=requests.removed,
    )
    removed_ids = (
        person_pseudonyms(linked.records, key).filter(
            pl.col("person_key").is_in(requests.removed.implode())
        )["person_id"]
        if requests.removed.len()
        else pl.Series("person_id", [], dtype=pl.String)
    )
    timings["pseudonymise"] = time.perf_counter() - t
    stage("pseudonymise")

    t = time.perf_counter()
    progress("derive", "deriving measures (objectors excluded)")
    frames, n_objectors = derive_all(ZoneBFrames(zb.persons, zb.events, as_at, reference))
    research = build_research_table(zb.persons, zb.events, as_at)
    attribution: dict[str, pl.DataFrame] | None = None
    if plan is not None and (
        plan.kind == "revision" or (plan.base and plan.base.reference_release)
    ):
        # Whose records a revised series removed: the same measures with nobody left out,
        # used only to count how many people changed in each cell (materiality).
        everyone = zb.persons.with_columns(pl.lit(False).alias("objected_statistics"))
        attribution, _ = derive_all(ZoneBFrames(everyone, zb.events, as_at, reference))
    timings["derive"] = time.perf_counter() - t
    stage("derive")

    review = None
    labels = read_labels(WorkFolder(work_dir).clerical_labels)
    if linked.decisions is not None and labels.height:
        review = estimate_quality(linked.decisions, labels, linked.model.threshold).to_dict()
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
        linkage_model={
            "threshold": linked.model.training.get("threshold"),
            "clerical_review": review,
        },
        objections=report,
        requests=requests,
    )

    def publish_release() -> None:
        if not publishing:
            return
        assert store is not None and sdc_secret is not None
        t = time.perf_counter()
        progress("publish", f"protecting and publishing a {plan.kind if plan else 'routine'} "
                 "release (one transaction)")  # fmt: skip
        # On Spark the cubes' cells are counted on partitions (the record keys, and the
        # secret, stay here), in a session of their own with its own zone A scratch.
        with partition_mapper(_stage_scratch(engine_config, "publish")) as rows:
            result.published = publish(
                store,
                frames,
                policy=policy,
                secret=sdc_secret,
                data_as_at=as_at,
                run_metadata={
                    "run_id": run_id,
                    "counts": result.counts,
                    "objections": report.counts,
                    "requests": requests.counts(),
                },
                plan=plan,
                excluded_people={
                    "objections": zb.persons.filter(pl.col("objected_statistics"))["person_id"],
                    "erasure_or_restriction": removed_ids,
                },
                attribution=attribution,
                map_rows=rows,
            )
        result.release_id = result.published.release_id
        record_applied(store, requests, actor=actor, run_id=run_id)
        timings["publish"] = time.perf_counter() - t
        stage("publish")

    keep_linked = (
        keep_zone_a if keep_zone_a is not None else policy.retention.zone_a_working_copies_days > 0
    )
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
            keep_linked=keep_linked,
        )
    timings["write"] = time.perf_counter() - t - timings.get("publish", 0.0)
    result.retention_due = retention.due(policy.retention, work_dir=work_dir, store=store)
    return result


def _where_rows_run(engine: str) -> str:
    return "Spark partitions" if engine == "spark" else "polars"


def _stage_scratch(config: EngineConfig, stage: str) -> EngineConfig:
    """The engine setting for one partition-mapped stage: its own zone A scratch folder
    beside the linkage's (each stage's Spark session removes its own when it ends)."""
    scratch = config.scratch
    return replace(
        config, scratch=scratch.with_name(f"{scratch.name}-{stage}") if scratch else None
    )


def active_requests_none() -> pl.DataFrame:
    """No store, no requests."""
    return pl.DataFrame(
        schema={"request_id": pl.String, "kind": pl.String, "tokens": pl.List(pl.String)}
    )


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
    keep_linked: bool = True,
) -> None:
    work_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = work_dir.parent / f".{work_dir.name}.staging-{result.run_id}"
    try:
        out, prior = WorkFolder(staging), WorkFolder(work_dir)
        qdir = out.quarantine
        qdir.mkdir(parents=True)
        for name, r in results.items():
            r.quarantined.write_csv(qdir / f"{name}.csv")
        result.quarantine.write_csv(out.quarantine_report)
        out.linkage_model.write_text(linked.model.to_json())
        if keep_linked:  # identifiable: kept only under the retention schedule
            linked.records.write_parquet(out.linked_records)
        # The pair decisions name source records; clerical review reads them beside the
        # linked records, so they are kept (and deleted) with them.
        if keep_linked and linked.decisions is not None:
            linked.decisions.write_parquet(out.clerical_decisions)
        # Clerical labels outlive a run: a later run re-uses them for the same records.
        if prior.clerical_labels.exists():
            shutil.copy2(prior.clerical_labels, out.clerical_labels)
        out.events.mkdir(parents=True)
        zb.persons.write_parquet(out.persons)
        research.write_parquet(out.research_table)
        geography(zb.persons).write_parquet(out.geography)
        for name, ev in zb.events.items():
            ev.write_parquet(out.events_of(name))
        after_stage("write")
        # The release is written only once every output is staged; if it fails the
        # previous release and the previous outputs both stay as they were.
        before_swap()
        out.run_manifest.write_text(json.dumps(result.summary(), indent=2, default=str))
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
