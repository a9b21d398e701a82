"""Every `portal` subcommand is documented in the README."""

from pathlib import Path

from portal.cli import app

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _commands() -> list[str]:
    names = [c.name or c.callback.__name__ for c in app.registered_commands]  # type: ignore[union-attr]
    return sorted(names)


def test_readme_documents_every_subcommand():
    commands = _commands()
    assert "synth" in commands
    missing = [c for c in commands if f"`portal {c}" not in README]
    assert not missing, f"subcommands missing from README: {missing}"


def test_readme_gives_the_two_commands():
    assert "make run" in README and "make test" in README
