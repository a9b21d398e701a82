"""`portal measures` and `portal table`: protected tables from the latest release."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import polars as pl
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from anonymise import cellkey
from anonymise.policy import default_policy
from anonymise.release import NoReleaseError, QueryError, tabulate
from anonymise.safe_output import safe_frame
from pipelines.derive import MEASURES
from pipelines.store import Store, StoreError, default_store_url


def register(app: typer.Typer) -> None:
    app.command("measures")(measures)
    app.command("table")(table)


def measures(
    store: Annotated[
        str | None, typer.Option(help="Store URL; default: SQLite under data/.")
    ] = None,
) -> None:
    """List every published measure with its definition and allowed breakdowns."""
    console = Console()
    st = Store(store or default_store_url())
    try:
        latest = st.latest_release()
        metas = (
            st.read_meta(latest.release_id) if latest else {n: m.meta for n, m in MEASURES.items()}
        )
    finally:
        st.dispose()
    head = f"release {latest.release_id}" if latest else "no release published yet"
    console.print(f"[bold]Measures[/bold] ({head})\n", soft_wrap=True)
    for name in sorted(metas):
        m = metas[name]
        console.print(f"[bold]{name}[/bold]: {escape(m.title)} ({m.unit})", soft_wrap=True)
        console.print(f"  {escape(m.definition)}", soft_wrap=True)
        console.print(f"  breakdowns: {', '.join(m.breakdowns)}", soft_wrap=True)
        if m.denominator:
            per = "%" if m.denominator.per == 100 else f"per {m.denominator.per:,}"
            console.print(f"  rate: {per} of {m.denominator.measure}", soft_wrap=True)


def _parse_where(items: list[str]) -> dict[str, list[str]]:
    where: dict[str, list[str]] = {}
    for item in items:
        if "=" not in item:
            raise typer.BadParameter(f"--where expects name=value, got {item!r}")
        k, v = item.split("=", 1)
        where.setdefault(k.strip(), []).append(v.strip())
    return where


def table(
    measure: Annotated[str, typer.Argument(help="Measure name (see `portal measures`).")],
    by: Annotated[str, typer.Option(help="Comma-separated breakdowns, e.g. locality,year.")] = "",
    where: Annotated[
        list[str] | None, typer.Option(help="Filter name=value; repeat for more.")
    ] = None,
    margins: Annotated[bool, typer.Option("--margins", help="Add total rows.")] = False,
    store: Annotated[
        str | None, typer.Option(help="Store URL; default: SQLite under data/.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    demo: Annotated[
        bool, typer.Option("--demo", help="Use the demo disclosure-control secret.")
    ] = False,
    actor: Annotated[str, typer.Option(help="Who is asking (written to the audit log).")] = "cli",
) -> None:
    """Print a protected table (cell-key perturbed, small counts suppressed)."""
    console = Console()
    if fmt not in ("table", "csv", "json"):
        raise typer.BadParameter("--format must be table, csv or json")
    policy = default_policy()
    try:
        secret = cellkey.load_sdc_secret(demo=demo)
    except cellkey.SecretNotConfiguredError as e:
        console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(code=2) from None
    ptable = cellkey.ptable_for(policy.max_noise, policy.variance, secret)
    st = Store(store or default_store_url())
    try:
        result = tabulate(
            st,
            measure,
            by=[b for b in by.split(",") if b],
            where=_parse_where(where or []),
            policy=policy,
            margins=margins,
            ptable=ptable,
            actor=actor,
        )
    except (QueryError, NoReleaseError, StoreError, LookupError) as e:
        console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(code=1) from None
    finally:
        st.dispose()
    shown = safe_frame(
        result.data.select(pl.exclude([c for c in result.data.columns if c.endswith("_value")]))
    )
    if fmt == "csv":
        sys.stdout.write(shown.write_csv())
        return
    if fmt == "json":
        doc = {
            "measure": result.measure,
            "title": result.title,
            "release_id": result.release_id,
            "data_as_at": str(result.data_as_at),
            "policy": result.policy_id,
            "rows": shown.to_dicts(),
            "footnotes": list(result.footnotes),
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    t = Table(title=f"{result.title} (release {result.release_id}, data as at {result.data_as_at})")
    for c in shown.columns:
        t.add_column(c, justify="right" if c in result.value_columns else "left")
    for row in shown.iter_rows():
        t.add_row(*[escape(str(v)) for v in row])
    console.print(t)
    for f in result.footnotes:
        console.print(f"[dim]{escape(f)}[/dim]", soft_wrap=True)
