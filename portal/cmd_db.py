"""`portal db upgrade`: migrate the release store's schema; `portal db grant`: PostgreSQL
roles for the pipeline, the release service and the portal."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from pipelines.store import Store, default_store_url
from pipelines.store_roles import grant_roles
from registry.errors import StoreError

db_app = typer.Typer(
    help="The release store's database: schema migrations and PostgreSQL roles.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def upgrade(
    store: Annotated[
        str | None,
        typer.Option(
            help="Store URL of the owner (the pipeline's role); default $PORTAL_STORE_URL."
        ),  # noqa: E501
    ] = None,
) -> None:
    """Apply the schema migrations (run as the store's owner; opening a store never does)."""
    console = Console()
    target = Store(store or default_store_url(), upgrade=True)
    before, after = target.schema_change or (None, None)
    target.dispose()
    if before == after:
        console.print(f"The store is already at schema revision {after} (the newest).")
    else:
        console.print(f"Schema upgraded from {before or 'none'} to {after}.")


@db_app.command("grant")
def grant(
    service_role: Annotated[str, typer.Option(help="The release service's database role.")],
    web_role: Annotated[
        str | None,
        typer.Option(help="The portal web process's role, if it has one: everything revoked."),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            help="Store URL of the owner (the pipeline's role); default $PORTAL_STORE_URL."
        ),
    ] = None,
) -> None:
    """Create the schema and grant the service role SELECT, plus INSERT/UPDATE on its own
    records only; revoke everything from the web role."""
    console = Console()
    target = Store(store or default_store_url(), upgrade=True)
    try:
        statements = grant_roles(target, service_role=service_role, web_role=web_role)
    except StoreError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(code=2) from None
    finally:
        target.dispose()
    for sql in statements:
        console.print(escape(sql), soft_wrap=True)
    console.print(f"Granted: {len(statements)} statements.")
