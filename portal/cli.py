"""`portal`: one console command, thin subcommands over library functions.

Commands load lazily. Importing every command's module pulls in polars, SQLAlchemy, Splink
and the privacy engine, which took most of a second before any work was done. So:

- `portal --help` (or no command) lists the commands from `COMMANDS` and imports none;
- `portal CMD ...` imports only the module that defines CMD;
- `app`, the whole Typer app with every command, is built on first use (tests and
  documentation read it); `tests/test_cli.py` proves `COMMANDS` lists exactly what the
  modules register, with the same summaries.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from typing import Any

import typer

HELP = "Anonymised research and statistics portal for children's services and Early Help."

# command -> (module in `portal`, its one-line summary as `portal --help` shows it).
# In the order `portal --help` lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": (
        "cmd_synth",
        "Generate a synthetic county: one extract per source system plus ground truth.",
    ),
    "run": ("cmd_run", "Run the pipeline on a folder of source extracts."),
    "releases": (
        "cmd_run",
        "List every release: routine or revision, key epoch, history revised through.",
    ),
    "measures": (
        "cmd_table",
        "List every published measure with its definition and allowed breakdowns.",
    ),
    "table": (
        "cmd_table",
        "Print a protected table (cell-key perturbed, small counts suppressed).",
    ),
    "extract": (
        "cmd_extract",
        "Build a research extract for an approved project, checked against all it already holds.",
    ),
    "check-output": (
        "cmd_extract",
        "Check a researcher's own table before it leaves: threshold, dominance (n,k), p% rule.",
    ),
    "projects": (
        "cmd_projects",
        "Approved research projects: add, list, show, close; expired extracts.",
    ),
    "risk": (
        "cmd_privacy",
        "Print every disclosure-risk measure and the riskiest classes (never the raw rows).",
    ),
    "anonymise": (
        "cmd_privacy",
        "Anonymise FILE optimally (least loss) to k (and l, t); write OUT and a JSON report.",
    ),
    "linkage": (
        "cmd_linkage",
        "Clerical review of record linkage: label sampled decisions, estimate quality.",
    ),
    "share": (
        "cmd_share",
        "Data shares for national evaluations: identifiers and attributes kept apart.",
    ),
    "retention": (
        "cmd_retention",
        "List, or delete, everything the retention schedule says is due (audited by category "
        "and count).",
    ),
    "requests": (
        "cmd_requests",
        "Erasure and restriction requests: recorded as keyed tokens, applied by every run.",
    ),
    "serve": (
        "cmd_serve",
        "Run the release service: protected tables, releases, extracts and sign-in over HTTP.",
    ),
    "up": ("cmd_up", "Start the release service and the portal (Ctrl-C stops both)."),
    "accounts": (
        "cmd_accounts",
        "Local accounts of the release service (the accounts file holds hashes only).",
    ),
    "sources": ("cmd_sources", "Check source extracts before a run."),
    "comparators": ("cmd_comparators", "Comparator statistics (EES data files): load, list."),
    "sf-return": (
        "cmd_planning",
        "The Supporting Families quarterly progress return for one quarter, from one release: "
        "every figure protected, in the return's layout (pipelines/planning/sf_return.toml).",
    ),
    "publish-ees": (
        "cmd_planning",
        "Every published measure of a release as open data in the Explore Education "
        "Statistics format: a tidy CSV and .meta.csv per measure, footnotes, data guidance and "
        "a manifest, all from protected tables and checked against the EES rules before they "
        "are written.",
    ),
    "db": ("cmd_db", "The release store's database: schema migrations and PostgreSQL roles."),
}


def _typer() -> typer.Typer:
    t = typer.Typer(
        name="portal", help=HELP, no_args_is_help=True, add_completion=False, rich_markup_mode=None
    )

    @t.callback()
    def main() -> None:
        """Synthetic county -> pipeline -> disclosure-controlled statistics and extracts."""

    return t


def modules() -> list[str]:
    """Every command module, in the order of `COMMANDS`."""
    return list(dict.fromkeys(module for module, _ in COMMANDS.values()))


def build(names: Iterable[str] | None = None) -> typer.Typer:
    """A Typer app with the commands of the named modules (default: all of them)."""
    t = _typer()
    for name in modules() if names is None else names:
        importlib.import_module(f"portal.{name}").register(t)
    return t


def _index() -> typer.Typer:
    """An app whose commands carry only their names and summaries: what `portal --help`
    prints. None of them runs: `run` dispatches a named command to its real module."""
    t = _typer()
    for name, (_module, summary) in COMMANDS.items():
        # short_help: click would otherwise cut each summary to fit one line.
        t.command(name, help=summary, short_help=summary)(_not_loaded)
    return t


def _not_loaded() -> None:  # pragma: no cover - `run` never dispatches to the index
    raise typer.Exit(code=2)


def run(argv: list[str] | None = None) -> None:
    """The console script: load only what the command line asks for."""
    args = sys.argv[1:] if argv is None else argv
    first = next((a for a in args if not a.startswith("-")), None)
    if first in COMMANDS:
        app_ = build([COMMANDS[first][0]])
    elif first is None:
        app_ = _index()
    else:
        app_ = build()  # Typer's own "No such command" message
    try:
        app_(args=args, prog_name="portal")
    except Exception as exc:
        # A store that cannot be used (no schema yet, an older revision, unreachable) is the
        # user's to fix: say what, without a traceback. Anything else is a bug: show it.
        store_error = sys.modules.get("pipelines.store")
        if store_error is None or not isinstance(exc, store_error.StoreError):
            raise
        from rich.console import Console
        from rich.markup import escape

        Console(stderr=True).print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise SystemExit(2) from None


_APP: typer.Typer | None = None


def __getattr__(name: str) -> Any:
    # PEP 562: `from portal.cli import app` builds the whole app only when asked for.
    global _APP
    if name == "app":
        if _APP is None:
            _APP = build()
        return _APP
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":  # pragma: no cover
    run()
