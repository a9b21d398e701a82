"""`portal run`: ingest -> link -> pseudonymise (-> derive -> publish as they land)."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from anonymise.cellkey import SecretNotConfiguredError, load_sdc_secret
from anonymise.pseudonymise import PseudonymKeyError, load_master_key
from pipelines.ingest import SourceFileError
from pipelines.reference import extract_as_at
from pipelines.run import RunResult, run_pipeline
from pipelines.store import Store, StoreError, default_store_url


def register(app: typer.Typer) -> None:
    app.command("run")(run)


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
) -> None:
    """Run the pipeline on a folder of source extracts."""
    console = Console()
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

    try:
        as_at_date = date.fromisoformat(as_at) if as_at else extract_as_at(raw)
        result = run_pipeline(
            raw,
            work,
            key,
            as_at=as_at_date,
            store=target,
            sdc_secret=sdc_secret,
            progress=progress,
        )
    except (SourceFileError, StoreError) as e:
        console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(code=1) from None
    finally:
        target.dispose()
    _print_summary(console, result)
    console.print(
        f"Published release [bold]{result.release_id}[/bold] to {escape(target_label(store))}; "
        f"{result.objectors_excluded:,} people on the objections register were excluded."
    )


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
    times = ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items() if "." not in k)
    console.print(f"Run {result.run_id} finished: {times}. Outputs in {result.work_dir}/")
