"""`portal`: one console command, thin subcommands over library functions."""

from __future__ import annotations

import typer

from portal import (
    cmd_accounts,
    cmd_db,
    cmd_extract,
    cmd_privacy,
    cmd_run,
    cmd_serve,
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


for module in (
    cmd_synth,
    cmd_run,
    cmd_table,
    cmd_extract,
    cmd_privacy,
    cmd_serve,
    cmd_up,
    cmd_accounts,
    cmd_db,
):
    module.register(app)


if __name__ == "__main__":  # pragma: no cover
    app()
