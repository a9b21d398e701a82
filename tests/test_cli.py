"""The lazy command line: `portal --help` lists every command without importing any, and
the list is exactly what the command modules register, with the same summaries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer
from typer.testing import CliRunner

from portal import cli

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("polars", "sqlalchemy", "splink", "duckdb", "anonymise", "pipelines", "numpy",
         "pipelines.derive", "holidays", "pydantic", "typer.rich_utils")  # fmt: skip


def _summary(text: str | None) -> str:
    first = (text or "").strip().split("\n\n")[0]
    return " ".join(first.split())


def _registered(app: typer.Typer) -> dict[str, str]:
    out = {}
    for c in app.registered_commands:
        out[c.name or c.callback.__name__] = _summary(c.help or c.callback.__doc__)  # type: ignore[union-attr]
    for g in app.registered_groups:
        info = g.typer_instance.info if g.typer_instance else None
        out[str(g.name)] = _summary(g.help or (info.help if info else None))  # type: ignore[arg-type]
    return out


def test_the_index_is_exactly_what_the_modules_register():
    real = {}
    for module in cli.modules():
        one = cli.build([module])
        got = _registered(one)
        assert all(cli.COMMANDS[name][0] == module for name in got), (module, got)
        real |= got
    assert real == {name: summary for name, (_m, summary) in cli.COMMANDS.items()}


def _loaded_after(argv: list[str]) -> set[str]:
    code = (
        "import sys\nfrom portal import cli\n"
        f"try:\n    cli.run({argv!r})\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in sys.modules if m in {HEAVY!r} or m.startswith('portal.cmd_')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout  # fmt: skip
    return set(eval(out.strip().splitlines()[-1]))  # noqa: S307 - our own printed list


def test_help_imports_nothing_heavy_and_a_command_only_its_own_module():
    assert _loaded_after(["--help"]) == set()
    assert _loaded_after([]) == set()
    # One command loads its own module only: `portal risk` has no need of Splink or DuckDB.
    risk = _loaded_after(["risk", "--help"])
    assert {"polars", "portal.cmd_privacy"} <= risk
    assert not risk & {"splink", "duckdb", "portal.cmd_run", "portal.cmd_table"}
    # `portal table` reads a release: the measure builders (and holidays) stay unloaded.
    table = _loaded_after(["table", "--help"])
    assert "portal.cmd_table" in table
    assert not table & {"pipelines.derive", "holidays", "splink", "duckdb"}
    # Nor the store or the privacy engine: only a local (server) query needs them, and
    # through --service the command is a thin client (tests/test_table_cli.py runs one).
    assert not table & {"polars", "numpy", "sqlalchemy", "anonymise", "pipelines"}


def test_help_lists_every_command_and_a_command_runs_its_real_code(tmp_path):
    result = subprocess.run([sys.executable, "-m", "portal.cli", "--help"], capture_output=True,
                            text=True, cwd=ROOT, check=True)  # fmt: skip
    for name in cli.COMMANDS:
        assert f" {name} " in result.stdout, name
    bad = CliRunner().invoke(cli.app, ["retention", "--work", str(tmp_path / "none"),
                                       "--store", f"sqlite:///{tmp_path / 's.sqlite'}"])  # fmt: skip
    assert bad.exit_code in (0, 1, 2) and "Traceback" not in bad.output
    unknown = subprocess.run([sys.executable, "-m", "portal.cli", "nosuch"], capture_output=True,
                             text=True, cwd=ROOT)  # fmt: skip
    assert unknown.returncode == 2 and "No such command" in unknown.stderr
