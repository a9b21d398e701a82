"""What the privacy core needs from the store, as protocols: the release layer and the
extract door are handed a store; they never import one.

`pipelines.store.Store` satisfies these (SQLAlchemy over SQLite or PostgreSQL), and a
test may hand in anything else that does. Keeping the store out of the privacy core keeps
the layers one-way: the pipeline and the release service import the privacy core and
open the store; the privacy core imports only the shared registry (`registry`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import polars as pl

from registry.measures import MeasureMeta, ReleaseInfo

if TYPE_CHECKING:
    from anonymise.ledger import NewLedgerEntry, ReleaseHistory
    from anonymise.projects import Project


class AuditLog(Protocol):
    def audit(
        self,
        actor: str,
        action: str,
        detail: Mapping[str, Any] | None = None,
        *,
        release_id: str | None = None,
    ) -> None: ...


@runtime_checkable
class ReleaseStore(AuditLog, Protocol):
    """The published releases: their records, measure metadata, cubes and change sets."""

    cache_key: str  # identifies the database for in-memory caches (no password)

    def latest_release(self) -> ReleaseInfo | None: ...
    def get_release(self, release_id: str) -> ReleaseInfo: ...
    def read_measure_meta(self, release_id: str, measure: str) -> MeasureMeta: ...
    def read_cube(self, release_id: str, measure: str) -> pl.DataFrame: ...
    def read_change_set(self, release_id: str, measure: str) -> pl.DataFrame | None: ...


class ProjectLedger(Protocol):
    """The register of approved projects and what each already holds."""

    def get(self, project_id: str) -> Project | None: ...
    def all(self) -> list[Project]: ...
    def history(self, project_id: str) -> ReleaseHistory: ...
    def record_extract(self, entry: NewLedgerEntry, *, audit_detail: dict[str, Any]) -> None: ...


class ExtractStore(AuditLog, Protocol):
    """What the extract door needs: the audit log, the project register, and the paths an
    extract may never be written into."""

    def project_register(self) -> ProjectLedger: ...

    def protected_paths(self) -> tuple[list[Path], list[Path]]:
        """(folders, files) holding the store: its data folder and its own file."""
        ...
