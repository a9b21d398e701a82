"""`portal run`: ingest -> link -> pseudonymise -> derive -> publish; `portal releases`."""

from __future__ import annotations

import getpass
import time
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from anonymise.cellkey import SecretNotConfiguredError, load_sdc_secret
from anonymise.pseudonymise import PseudonymKeyError, load_master_key
from pipelines.ingest import SourceFileError
from pipelines.mapping import MappingError, load_mapping
from pipelines.objections import ObjectionError
from pipelines.publish import NoLedgerError, RevisionRefused, RoutineRefused
from pipelines.reference import extract_as_at
from pipelines.run import RunResult, run_pipeline
from pipelines.store import Store, default_store_url
from registry.errors import StoreError


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("releases")(releases)


def actor_name() -> str:
    """Who ran a command, for the audit log."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def run(
    raw: Annotated[Path, typer.Option(help="Folder of source extracts (zone A).")],
    work: Annotated[Path, typer.Option(help="Working folder for zone A/B outputs.")] = Path(
        "data/work"
    ),
    store: Annotated[
        str | None, typer.Option(help="Store URL (SQLAlchemy); default: SQLite file under data/.")
    ] = None,
    key_file: Annotated[
        Path | None, typer.Option(help="Pseudonymisation key file (else $PORTAL_PSEUDONYM_KEY).")
    ] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Demo mode: generate a local key if none is set.")
    ] = False,
    as_at: Annotated[
        str | None,
        typer.Option(
            help="Data as-at date (YYYY-MM-DD); later dates are impossible. Default: the "
            "extracts' date (declared in extract.json, else their latest event date)."
        ),
    ] = None,
    revision: Annotated[
        bool,
        typer.Option(
            "--revision",
            help="Publish a revision release (recomputes published periods); refused unless "
            "the policy's [revisions] schedule allows one.",
        ),
    ] = False,
    accept_unmatched_objections: Annotated[
        str | None,
        typer.Option(
            help="Acknowledge objections that match nobody or several people: register "
            "references separated by commas, or 'all' (audited; kept for later runs).",
        ),
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option(help="Mapping file (TOML): how the council's own exports map to sources."),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(help="Where the linkage runs: duckdb (embedded, default) or spark."),
    ] = "duckdb",
    spark_master: Annotated[
        str | None,
        typer.Option(help="Spark master URL (default local[2]); only with --engine spark."),
    ] = None,
    linkage_model: Annotated[
        Path | None,
        typer.Option(
            help="Apply a saved linkage model (a run's zone_a/linkage_model.json) instead of "
            "training one: the same links on another engine."
        ),
    ] = None,
    memory_limit: Annotated[
        str,
        typer.Option(
            help="DuckDB's memory cap for the linkage (e.g. 2GB, 6GB); past it DuckDB spills "
            "to an owner-only scratch folder beside the work folder (docs/scale.md)."
        ),
    ] = "2GB",
) -> None:
    """Run the pipeline on a folder of source extracts."""
    console = Console()
    try:
        source_map = load_mapping(mapping) if mapping else None
    except MappingError as e:
        console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(code=1) from None
    from pipelines.engine import EngineConfig, EngineError

    try:
        EngineConfig(engine, spark_master=spark_master, memory_limit=memory_limit)
        trained = _read_model(linkage_model) if linkage_model else None
    except EngineError as e:
        console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(code=1) from None
    try:
        key = load_master_key(demo=demo, key_file=key_file)
        sdc_secret = load_sdc_secret(demo=demo)
    except (PseudonymKeyError, SecretNotConfiguredError) as e:
        console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(code=2) from None
    target = Store(store or default_store_url())
    started = time.perf_counter()

    def progress(stage: str, message: str) -> None:
        elapsed = time.perf_counter() - started
        console.print(f"[bold cyan]{stage:>12}[/bold cyan]  {message}  [dim]{elapsed:6.1f} s[/dim]")

    as_at_date = date.fromisoformat(as_at) if as_at else extract_as_at(raw)
    accept: str | list[str] = ()  # type: ignore[assignment]
    if accept_unmatched_objections:
        text = accept_unmatched_objections.strip()
        accept = "all" if text.lower() == "all" else [r.strip() for r in text.split(",") if r]
    elif demo:
        # The demo county's register, like a real one, holds people who are in no source.
        accept = "all"
        console.print(
            "[yellow]demo mode:[/yellow] objections that match nobody are acknowledged "
            "automatically (audited as such)"
        )

    def go(revise: bool) -> RunResult:
        return run_pipeline(
            raw,
            work,
            key,
            as_at=as_at_date,
            store=target,
            sdc_secret=sdc_secret,
            progress=progress,
            revision=revise,
            accept_unmatched_objections=accept,
            actor="demo" if demo and not accept_unmatched_objections else actor_name(),
            mapping=source_map,
            engine=engine,
            spark_master=spark_master,
            linkage_model=trained,
            memory_limit=memory_limit,
        )

    try:
        try:
            result = go(revision)
        except NoLedgerError:
            if not demo:
                raise
            # A demo store from before the revisions policy: start a new series.
            console.print("[yellow]demo mode:[/yellow] the store's releases kept no ledger; "
                          "publishing a revision to start a new series")  # fmt: skip
            result = go(True)
    except ObjectionError as e:
        console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(code=3) from None
    except (RevisionRefused, RoutineRefused) as e:
        console.print(f"[red]refused:[/red] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(code=4) from None
    except (SourceFileError, StoreError, EngineError) as e:
        console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(code=1) from None
    finally:
        target.dispose()
    _print_summary(console, result)
    kind = result.published.plan.kind if result.published else "routine"
    console.print(
        f"Published {kind} release [bold]{result.release_id}[/bold] to "
        f"{escape(target_label(store))}; {result.objectors_excluded:,} people whose objection "
        "covers statistics were left out of every figure."
    )


def _read_model(path: Path) -> dict[str, Any]:
    """A saved linkage model, or EngineError naming the file and what is wrong."""
    import json

    from pipelines.engine import EngineError, saved_model

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise EngineError(f"{path}: cannot read the linkage model ({e.strerror})") from None
    except json.JSONDecodeError as e:
        raise EngineError(f"{path}: not JSON (line {e.lineno}: {e.msg})") from None
    try:
        return saved_model(document if isinstance(document, dict) else {})
    except EngineError as e:
        raise EngineError(f"{path}: {e}") from None


def target_label(url: str | None) -> str:
    """The store's location without any password."""
    from sqlalchemy.engine import make_url

    return make_url(url or default_store_url()).render_as_string(hide_password=True)


def _print_summary(console: Console, result: RunResult) -> None:
    t = Table(title="Ingest: rows in = accepted + quarantined")
    for c in ("source", "rows in", "accepted", "quarantined"):
        t.add_column(c, justify="left" if c == "source" else "right")
    for row in result.ingest.iter_rows(named=True):
        t.add_row(
            row["source"], f"{row['rows_in']:,}", f"{row['accepted']:,}", f"{row['quarantined']:,}"
        )
    console.print(t)
    if result.quarantine.height:
        q = Table(title="Quarantine reasons")
        for c in ("source", "reason", "rows"):
            q.add_column(c, justify="right" if c == "rows" else "left")
        for row in result.quarantine.iter_rows(named=True):
            q.add_row(row["source"], row["reason"], f"{row['rows']:,}")
        console.print(q)
    n = result.counts
    console.print(
        f"Linked {n['records']:,} records into {n['persons']:,} persons and "
        f"{n['families']:,} families "
        f"({n['deterministic_links']:,} deterministic and {n['probabilistic_links']:,} "
        "probabilistic links)."
    )
    if result.linkage:
        lq = Table(title="Linkage quality against the synthetic ground truth")
        for col in ("level", "precision", "recall", "F1", "split", "merged"):
            lq.add_column(col, justify="right")
        for level, q_ in result.linkage.items():
            lq.add_row(
                level,
                f"{q_.precision:.4f}",
                f"{q_.recall:.4f}",
                f"{q_.f1:.4f}",
                f"{q_.split_persons:.2%}",
                f"{q_.merged_clusters:.2%}",
            )
        console.print(lq)
    if result.objections:
        oc = result.objections.counts
        console.print(
            f"Objections: {oc['received']:,} received, {oc['matched']:,} matched, "
            f"{oc['unmatched']:,} matching nobody and {oc['ambiguous']:,} matching several "
            f"people ({oc['acknowledged']:,} acknowledged); applied to "
            f"{oc['people_excluded_from_research']:,} people (research extracts), "
            f"{oc['people_excluded_from_statistics']:,} of them also "
            "left out of statistics."
        )
        warnings = result.objections.warning_counts()
        if warnings:
            console.print(
                "  register rows used despite a bad field: "
                + ", ".join(f"{k} {v}" for k, v in warnings.items())
            )
    if result.requests:
        rc = result.requests.counts()
        console.print(
            f"Requests: {rc['erasure_requests']:,} erasure and {rc['restriction_requests']:,} "
            f"restriction requests active; {rc['people_removed']:,} people left out of zone B "
            f"({rc['requests_matching_nobody']:,} requests matched nobody)."
        )
    if result.published:
        p = result.published.summary()
        ch = p["changes_since_published"]
        console.print(
            f"Release: {p['kind']} (record-key epoch {p['key_epoch']}"
            + (f", history revised through {p['revised_through']}" if p["revised_through"] else "")
            + f"); {ch['carried']:,} units carried as published, {ch['added']:,} new; waiting "
            f"for a revision: {ch['late']:,} late, {ch['changed']:,} changed, {ch['gone']:,} "
            "no longer in the data."
        )
    if result.retention_due:
        console.print(
            "Retention: due for deletion under the schedule: "
            + "; ".join(d.describe() for d in result.retention_due)
            + ". Run `portal retention --apply`."
        )
    else:
        console.print("Retention: nothing is due under the schedule.")
    times = ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items() if "." not in k)
    console.print(f"Run {result.run_id} finished: {times}. Outputs in {result.work_dir}/")


def releases(
    store: Annotated[
        str | None, typer.Option(help="Store URL (SQLAlchemy); default: SQLite file under data/.")
    ] = None,
) -> None:
    """List every release: routine or revision, key epoch, history revised through."""
    console = Console()
    st = Store(store or default_store_url())
    try:
        rows = st.list_releases()
    finally:
        st.dispose()
    t = Table(title="Releases (newest first)")
    for col in ("release", "kind", "status", "data as at", "key epoch", "revised through"):
        t.add_column(col)
    for r in rows:
        t.add_row(
            r.release_id,
            "[bold]revision[/bold]" if r.is_revision else "routine",
            r.status + (" (tables removed)" if r.cubes_removed_at else ""),
            r.data_as_at.isoformat(),
            str(r.key_epoch),
            r.revised_through.isoformat() if r.revised_through else "",
        )
    console.print(t)
    for r in rows:
        if r.revision_note:
            console.print(f"{r.release_id}: {escape(r.revision_note)}", soft_wrap=True)
