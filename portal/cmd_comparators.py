"""`portal comparators load|list`: published national statistics (EES data files) for
comparisons with England, the region and the statistical neighbours."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from registry.settings import login_name

comparators_app = typer.Typer(
    help="Comparator statistics (EES data files): load, list.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(comparators_app, name="comparators")


StoreOpt = Annotated[
    str | None, typer.Option("--store", help="Store URL; default: SQLite under data/.")
]


@comparators_app.command("load")
def load(
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="EES data files (x.csv, with x.meta.csv beside each)."),
    ] = None,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo", help="Load the demo's fictional comparator file (synthetic county)."
        ),
    ] = False,
    store: StoreOpt = None,
    actor: Annotated[
        str | None, typer.Option(help="Who is loading (audit log; default: $USER).")
    ] = None,
) -> None:
    """Check EES data files (and their .meta.csv) and load them into the store; a file with
    the same name replaces the earlier load. Every problem of every file is reported and
    nothing is loaded if there is one."""
    from pipelines.comparators import check_files, coverage_warnings
    from pipelines.ees import EesFileError
    from pipelines.planning_config import PlanningConfigError, load_planning
    from pipelines.store import Store, default_store_url
    from pipelines.store_comparators import replace_datasets
    from synthetic.comparators import shipped_file

    console = Console()
    paths = list(files or [])
    if demo:
        paths.append(shipped_file())
    if not paths:
        console.print("[red]error:[/red] name at least one file, or --demo", soft_wrap=True)
        raise typer.Exit(code=2)
    try:
        checked = check_files(paths)
    except EesFileError as exc:
        console.print(
            f"[red]error:[/red] {len(exc.problems)} problem(s); nothing was loaded:", soft_wrap=True
        )
        for p in exc.problems:
            console.print(f"  - {escape(str(p))}", soft_wrap=True)
        raise typer.Exit(code=1) from None
    st = Store(store or default_store_url())
    try:
        loaded = replace_datasets(
            st,
            [(c.file, c.raw, c.footnotes) for c in checked],
            actor=actor or login_name(),
        )
    finally:
        st.dispose()
    for ds in loaded:
        console.print(
            f"loaded [bold]{escape(ds.dataset)}[/bold]: {ds.rows:,} values, "
            f"{len(ds.indicators)} indicators ({escape(', '.join(ds.indicators))})",
            soft_wrap=True,
        )
    try:
        config = load_planning()
    except PlanningConfigError as exc:
        console.print(f"[yellow]warning:[/yellow] {escape(str(exc))}", soft_wrap=True)
        return
    for w in coverage_warnings([c.file for c in checked], config):
        console.print(f"[yellow]warning:[/yellow] {escape(w)}", soft_wrap=True)


@comparators_app.command("list")
def list_(store: StoreOpt = None) -> None:
    """The comparator data sets in the store."""
    from pipelines.store import Store, default_store_url
    from pipelines.store_comparators import list_datasets

    st = Store(store or default_store_url())
    try:
        found = list_datasets(st)
    finally:
        st.dispose()
    console = Console()
    if not found:
        console.print("no comparator data loaded (portal comparators load FILE...)")
        return
    t = Table(title="Comparator data sets")
    for col in ("data set", "file", "loaded (UTC)", "by", "values", "indicators"):
        t.add_column(col)
    for d in found:
        t.add_row(
            escape(d.dataset),
            escape(d.file_name),
            d.loaded_at.strftime("%Y-%m-%d %H:%M"),
            escape(d.loaded_by),
            f"{d.rows:,}",
            escape(", ".join(d.indicators)),
        )
    console.print(t)
