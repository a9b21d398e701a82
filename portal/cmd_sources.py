"""`portal sources check`: validate a folder of extracts before a run, reporting every
problem at once (file-level problems, and each quarantined row with its file, line and
reasons), without writing anything."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from pipelines.ingest import SourceFileError
from pipelines.mapping import MappingError, load_mapping
from pipelines.reference import extract_as_at
from pipelines.sources_check import check_sources

sources_app = typer.Typer(help="Check source extracts before a run.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(sources_app, name="sources")


@sources_app.command("check")
def check(
    raw: Annotated[Path, typer.Option(help="Folder of source extracts (zone A).")],
    mapping: Annotated[
        Path | None,
        typer.Option(help="Mapping file (TOML): how the council's own exports map to sources."),
    ] = None,
    as_at: Annotated[
        str | None,
        typer.Option(help="Data as-at date (YYYY-MM-DD). Default: the extracts' date."),
    ] = None,
    limit: Annotated[int, typer.Option(help="Quarantined rows listed per source.")] = 20,
) -> None:
    """Validate every extract in RAW: exit 0 when a run would accept the files (rows may
    still be quarantined, each listed), 1 when a file-level problem would stop it."""
    console = Console()
    try:
        source_map = load_mapping(mapping) if mapping else None
        when = date.fromisoformat(as_at) if as_at else _as_at(raw)
        report = check_sources(raw, as_at=when, mapping=source_map)
    except (MappingError, SourceFileError) as e:
        console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(code=1) from None
    for line in report.lines(limit=limit):
        console.print(escape(line), soft_wrap=True, highlight=False)
    if report.file_problems:
        raise typer.Exit(code=1)


def _as_at(raw: Path) -> date:
    """The extracts' date as `portal run` takes it; today when it cannot be told (a mapped
    export under its own name): a check must not fail for want of a default."""
    try:
        return extract_as_at(raw)
    except Exception:
        return date.today()
