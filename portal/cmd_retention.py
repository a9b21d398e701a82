"""`portal retention --dry-run|--apply`: the retention schedule, enforced."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from anonymise.policy import default_policy
from pipelines import retention
from pipelines.store import Store, default_store_url
from portal.cmd_run import actor_name


def register(app: typer.Typer) -> None:
    app.command("retention")(retention_command)


def retention_command(
    apply: Annotated[
        bool,
        typer.Option(
            "--apply/--dry-run",
            help="Delete what is due (--apply) or only list it (--dry-run, the default).",
        ),
    ] = False,
    work: Annotated[Path, typer.Option(help="The pipeline's working folder.")] = Path("data/work"),
    store: Annotated[
        str | None, typer.Option(help="Store URL (SQLAlchemy); default: SQLite file under data/.")
    ] = None,
    extracts: Annotated[
        Path, typer.Option(help="Folder where research extract files are kept.")
    ] = retention.DEFAULT_EXTRACTS_DIR,
    labels: Annotated[
        Path, typer.Option(help="Folder of clerical linkage review labels.")
    ] = retention.DEFAULT_LABELS_DIR,
) -> None:
    """List, or delete, everything the retention schedule says is due (audited by category
    and count)."""
    console = Console()
    policy = default_policy()
    st = Store(store or default_store_url())
    try:
        items = retention.due(
            policy.retention, work_dir=work, store=st, extracts_dir=extracts, labels_dir=labels
        )
        schedule = ", ".join(f"{k} {v} days" for k, v in policy.retention.days().items())
        console.print(f"Retention schedule ({policy.ref}): {schedule}", soft_wrap=True)
        if not items:
            console.print("Nothing is due.")
            return
        for item in items:
            console.print(f"  due: {escape(item.describe())}", soft_wrap=True)
        if not apply:
            console.print("Dry run: nothing was deleted. Run with --apply to delete.")
            return
        deleted = retention.apply(items, store=st, actor=actor_name())
        console.print(
            "Deleted: " + ", ".join(f"{k} {v}" for k, v in deleted.items()) + " (audited)."
        )
    finally:
        st.dispose()
