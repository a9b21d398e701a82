"""`portal requests add|list|lift`: erasure and restriction requests, kept as keyed tokens."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from anonymise.pseudonymise import PseudonymKeyError, load_master_key
from pipelines import requests as reqs
from pipelines.store import Store, default_store_url
from portal.cmd_run import actor_name

app = typer.Typer(
    help="Erasure and restriction requests: recorded as keyed tokens, applied by every run.",
    no_args_is_help=True,
)


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="requests")


StoreOpt = Annotated[
    str | None, typer.Option(help="Store URL (SQLAlchemy); default: SQLite file under data/.")
]


@app.command("add")
def add(
    kind: Annotated[str, typer.Option("--type", help="erasure or restriction")],
    nhs_number: Annotated[str | None, typer.Option(help="NHS number")] = None,
    ni_number: Annotated[str | None, typer.Option(help="National Insurance number")] = None,
    upn: Annotated[str | None, typer.Option(help="Unique Pupil Number")] = None,
    lcs_id: Annotated[str | None, typer.Option(help="Social care person number")] = None,
    forename: Annotated[
        str | None, typer.Option(help="Forename (with surname, DOB, postcode)")
    ] = None,
    surname: Annotated[str | None, typer.Option(help="Surname")] = None,
    dob: Annotated[str | None, typer.Option(help="Date of birth, YYYY-MM-DD")] = None,
    postcode: Annotated[str | None, typer.Option(help="Postcode")] = None,
    received: Annotated[
        str | None, typer.Option(help="Date the request was received (YYYY-MM-DD; default today)")
    ] = None,
    store: StoreOpt = None,
    key_file: Annotated[
        Path | None, typer.Option(help="Pseudonymisation key file (else $PORTAL_PSEUDONYM_KEY).")
    ] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Demo mode: use the local demo key.")
    ] = False,
) -> None:
    """Record a request. Only keyed tokens of the identifiers are kept, never the values."""
    console = Console()
    try:
        key = load_master_key(demo=demo, key_file=key_file)
        identifiers = reqs.normalise_identifiers(
            nhs_number=nhs_number, ni_number=ni_number, upn=upn, lcs_person_id=lcs_id,
            forename=forename, surname=surname, dob=dob, postcode=postcode,
        )  # fmt: skip
        received_on = date.fromisoformat(received) if received else date.today()
    except (PseudonymKeyError, reqs.RequestError) as e:
        console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(code=2) from None
    except ValueError:
        console.print("[red]error:[/red] --received must be YYYY-MM-DD", soft_wrap=True)
        raise typer.Exit(code=2) from None
    st = Store(store or default_store_url())
    try:
        request_id = reqs.add_request(
            st, key, kind, identifiers, received_on=received_on, actor=actor_name()
        )
    except reqs.RequestError as e:
        console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(code=2) from None
    finally:
        st.dispose()
    console.print(
        f"Recorded {kind} request [bold]{request_id}[/bold] "
        f"({', '.join(sorted(identifiers))}); the next run applies it."
    )


@app.command("list")
def list_command(store: StoreOpt = None) -> None:
    """Every request with its status and when it was last applied (no identifiers)."""
    console = Console()
    st = Store(store or default_store_url())
    try:
        df = reqs.list_requests(st)
        counts = reqs.request_counts(st)
    finally:
        st.dispose()
    t = Table(title="Erasure and restriction requests")
    for col in ("request", "type", "received", "status", "identifiers", "last applied", "people"):
        t.add_column(col)
    for r in df.iter_rows(named=True):
        t.add_row(
            r["request_id"],
            r["type"],
            r["received_on"].isoformat(),
            r["status"],
            r["identifier_kinds"],
            r["last_run_at"].strftime("%Y-%m-%d %H:%M") if r["last_run_at"] else "not yet",
            "" if r["people_matched_last_run"] is None else str(r["people_matched_last_run"]),
        )
    console.print(t)
    console.print(", ".join(f"{k} {v}" for k, v in counts.items()))


@app.command("lift")
def lift(
    request_id: Annotated[str, typer.Argument(help="The request to lift (restrictions only)")],
    store: StoreOpt = None,
) -> None:
    """Lift a restriction: the person is processed again from the next run."""
    console = Console()
    st = Store(store or default_store_url())
    try:
        reqs.lift_request(st, request_id, actor=actor_name())
    except reqs.RequestError as e:
        console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(code=2) from None
    finally:
        st.dispose()
    console.print(f"Lifted {request_id}.")
