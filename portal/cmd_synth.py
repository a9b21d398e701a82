"""`portal synth`: write a synthetic county (one extract per source + ground truth)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from synthetic.generator import generate_county


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)


def synth(
    people: Annotated[
        int, typer.Option(help="Approximate number of people in the county.")
    ] = 20000,
    seed: Annotated[
        int, typer.Option(help="Random seed; the same seed gives identical files.")
    ] = 7,
    out: Annotated[Path, typer.Option(help="Output folder (extracts + truth/).")] = Path(
        "data/raw"
    ),
    parquet: Annotated[
        bool, typer.Option("--parquet", help="Write Parquet instead of CSV.")
    ] = False,
) -> None:
    """Generate a synthetic county: one extract per source system plus ground truth."""
    console = Console()
    if people < 200:
        console.print("[red]error:[/red] --people must be at least 200")
        raise typer.Exit(code=2)
    t0 = time.perf_counter()
    summary = generate_county(people, seed, out, fmt="parquet" if parquet else "csv")
    elapsed = time.perf_counter() - t0
    table = Table(
        title=f"Synthetic county: {summary.people:,} people, {summary.households:,} households"
    )
    table.add_column("source")
    table.add_column("rows", justify="right")
    for name, rows in summary.rows.items():
        table.add_row(name, f"{rows:,}")
    table.add_row("[bold]total[/bold]", f"[bold]{summary.total_rows:,}[/bold]")
    console.print(table)
    console.print(f"Wrote extracts to {out}/ and ground truth to {out}/truth/ in {elapsed:.1f} s")
