"""`portal`: one console command, thin subcommands over library functions."""

from __future__ import annotations

import typer

from portal import (
    cmd_accounts,
    cmd_comparators,
    cmd_db,
    cmd_extract,
    cmd_linkage,
    cmd_planning,
    cmd_privacy,
    cmd_projects,
    cmd_requests,
    cmd_retention,
    cmd_run,
    cmd_serve,
    cmd_share,
    cmd_synth,
    cmd_table,
    cmd_up,
)

app = typer.Typer(
    name="portal",
    help="Anonymised research and statistics portal for children's services and Early Help.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """Synthetic county -> pipeline -> disclosure-controlled statistics and extracts."""


MODULES = (
    cmd_synth, cmd_run, cmd_table, cmd_extract, cmd_projects, cmd_privacy, cmd_linkage,
    cmd_share, cmd_retention, cmd_requests, cmd_serve, cmd_up, cmd_accounts, cmd_db,
    cmd_comparators,
    cmd_planning,
)  # fmt: skip
for module in MODULES:
    module.register(app)


if __name__ == "__main__":  # pragma: no cover
    app()
