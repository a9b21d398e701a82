"""`portal accounts hash`: a password hash for the release service's accounts file."""

from __future__ import annotations

import getpass
import sys
from typing import Annotated

import typer

from portal.service.accounts import MIN_PASSWORD_LENGTH, hash_password

accounts_app = typer.Typer(
    help="Local accounts of the release service (the accounts file holds hashes only).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(accounts_app, name="accounts")


@accounts_app.command("hash")
def hash_(
    stdin: Annotated[
        bool,
        typer.Option("--stdin", help="Read the password from standard input (for scripts)."),
    ] = False,
) -> None:
    """Print an argon2id hash of a new password (read twice, without echo)."""
    if stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("New password: ")
        if password != getpass.getpass("Repeat it: "):
            typer.echo("error: the passwords differ", err=True)
            raise typer.Exit(code=2)
    if len(password) < MIN_PASSWORD_LENGTH:
        typer.echo(f"error: use at least {MIN_PASSWORD_LENGTH} characters", err=True)
        raise typer.Exit(code=2)
    typer.echo(hash_password(password))
