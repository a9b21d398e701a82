"""`portal sf-return` and `portal publish-ees`: documents built on the server from one
release's protected tables (the same library code the release service runs).

Both need what only the server has, the store and the disclosure-control secret, as
`portal table` without `--service` does; every table they ask for is audited with `--actor`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from pipelines.planning_config import PlanningConfig
    from pipelines.store import Store
    from portal.protected import Tables
    from registry.measures import ReleaseInfo

ReleaseOpt = Annotated[
    str | None, typer.Option("--release", help="A release id (default: the latest).")
]
StoreOpt = Annotated[
    str | None, typer.Option("--store", help="Store URL; default: SQLite under data/.")
]
DemoOpt = Annotated[bool, typer.Option("--demo", help="Use the demo disclosure-control secret.")]
ActorOpt = Annotated[str, typer.Option(help="Who is asking (written to the audit log).")]


def register(app: typer.Typer) -> None:
    app.command("sf-return")(sf_return)
    app.command("publish-ees")(publish_ees)


def _fail(console: Console, message: str, code: int = 1) -> NoReturn:
    console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code=code)


def _open(
    store: str | None, release: str | None, demo: bool, actor: str, console: Console
) -> tuple[Store, ReleaseInfo, Tables]:
    """The store, the release asked for and its protected tables (audited as `actor`)."""
    from anonymise import cellkey
    from anonymise.policy import default_policy
    from pipelines.store import Store, default_store_url
    from portal.protected import Tables
    from registry.errors import UnknownReleaseError

    policy = default_policy()
    try:
        secret = cellkey.load_sdc_secret(demo=demo)
    except cellkey.SecretNotConfiguredError as e:
        _fail(console, str(e), 2)
    ptable = cellkey.ptable_for(policy.max_noise, policy.variance, secret)
    st = Store(store or default_store_url())
    try:
        info = st.get_release(release) if release else st.latest_release()
    except UnknownReleaseError as e:
        st.dispose()
        _fail(console, str(e))
    if info is None:
        st.dispose()
        _fail(console, "no release published yet (portal run)")
    return st, info, Tables(st, policy, ptable, info.release_id, actor=actor)


def _planning(st: Store, release_id: str, console: Console) -> PlanningConfig:
    from pipelines.planning_config import PlanningConfigError, load_planning

    try:
        return load_planning(measures=frozenset(st.read_meta(release_id)))
    except PlanningConfigError as e:
        st.dispose()
        _fail(console, str(e))


def sf_return(
    quarter: Annotated[
        str, typer.Option("--quarter", help="The financial quarter to return, e.g. '2025/26 Q2'.")
    ],
    release: ReleaseOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="csv (to submit) or json.")] = "csv",
    out: Annotated[
        Path | None, typer.Option("--out", help="Write to this file (default: print).")
    ] = None,
    store: StoreOpt = None,
    demo: DemoOpt = False,
    actor: ActorOpt = "cli",
) -> None:
    """The Supporting Families quarterly progress return for one quarter, from one release:
    every figure protected, in the return's layout (pipelines/planning/sf_return.toml)."""
    from portal.supporting_families import (
        ReturnError,
        load_return_layout,
        quarterly_return,
        return_csv,
    )

    console = Console(stderr=True)
    if fmt not in ("csv", "json"):
        raise typer.BadParameter("--format must be csv or json")
    st, info, tables = _open(store, release, demo, actor, console)
    try:
        config = _planning(st, info.release_id, console)
        layout = load_return_layout(measures=set(st.read_meta(info.release_id)))
        doc = quarterly_return(
            tables,
            config,
            layout,
            quarter=quarter.strip(),
            release_id=info.release_id,
            data_as_at=info.data_as_at,
        )
    except ReturnError as e:
        _fail(console, str(e))
    finally:
        st.dispose()
    text = return_csv(doc) if fmt == "csv" else json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(
            f"wrote {escape(str(out))} ({len(doc['lines'])} lines, release {info.release_id})"
        )


def publish_ees(
    out: Annotated[Path, typer.Option("--out", help="An empty folder for the files.")],
    release: ReleaseOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Write into a folder that is not empty.")
    ] = False,
    store: StoreOpt = None,
    demo: DemoOpt = False,
    actor: ActorOpt = "cli",
) -> None:
    """Every published measure of a release as open data in the Explore Education Statistics
    format: a tidy CSV and .meta.csv per measure, footnotes, data guidance and a manifest,
    all from protected tables and checked against the EES rules before they are written."""
    from portal.ees_export import ExportError
    from portal.ees_export import publish_ees as write_files

    console = Console()
    st, info, tables = _open(store, release, demo, actor, console)
    try:
        config = _planning(st, info.release_id, console)
        files = write_files(st, tables, config, release_id=info.release_id, out=out, force=force)
    except ExportError as e:
        _fail(console, str(e))
    finally:
        st.dispose()
    rows = sum(f.rows for f in files)
    console.print(
        f"wrote {len(files)} data files ({rows:,} rows) with their .meta.csv, footnotes.csv, "
        f"data-guidance.md and manifest.json to {escape(str(out))} (release {info.release_id})",
        soft_wrap=True,
    )
