"""`portal synth`: write a synthetic county (one extract per source + ground truth)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)


def synth(
    people: Annotated[int, typer.Option(help="Approximate number of people in the county.")] = 20000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives identical files.")] = 7,
    out: Annotated[Path, typer.Option(help="Output folder (extracts + truth/).")] = Path("data/raw"),
    parquet: Annotated[bool, typer.Option("--parquet", help="Write Parquet instead of CSV.")] = False,
) -> None:
    """Generate a synthetic county: one extract per source system plus ground truth."""
    raise typer.Exit(code=1)
