"""Errors of the release store, shared by the store (which raises them) and the release
layer (which raises and catches them), so that neither imports the other's module; and the
error of a rules file checked as a whole."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any


class RulesFileError(ValueError):
    """A rules or registry file is invalid; every problem is listed, so one edit can fix
    them all."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{path}: {len(problems)} problem(s):\n{lines}")

    @classmethod
    def read_toml(cls, path: Path) -> dict[str, Any]:
        """The file's TOML, or this error naming the file and why it cannot be read."""
        try:
            return tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise cls(path, [f"cannot read: {e}"]) from None


class StoreError(Exception):
    """Base class for store errors."""


class ReleaseValidationError(StoreError):
    """The cubes or metadata of a release are inconsistent; nothing was written."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"release not written, {len(problems)} problem(s):\n{lines}")


class ReleaseWriteError(StoreError):
    """Writing a release failed and was rolled back; the previous release is unchanged."""


class UnknownReleaseError(StoreError, LookupError):
    """No release with that id."""


class UnknownMeasureError(StoreError, LookupError):
    """The release has no measure with that name."""


class ReleaseDataRemovedError(StoreError, LookupError):
    """The release's cubes were removed under the retention schedule."""
