"""The register of approved research projects and each project's release ledger.

Two tables on the store's schema (imported by pipelines/store/__init__.py so
that `Store()` creates them):

- `projects`: one row per approved project. The id is generated here and never
  changes; the per-project pseudonym key derives from it.
- `extract_ledger`: one row per extract released to a project: its variables,
  the level each was released at, the pseudonym columns, where the file was
  written, its SHA-256, and the released quasi-identifier frame as a Parquet blob
  (project pseudonyms and generalised values: what the researcher holds, never a
  zone B pseudonym or a raw value). New extracts are checked against it.

Every change is audited in the same transaction as the change itself.
"""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import sqlalchemy as sa

from anonymise.ledger import NewLedgerEntry, PriorExtract, ReleaseHistory
from anonymise.projects import (
    Project,
    ProjectError,
    ProjectKind,
    ProjectSpec,
    ProjectStatus,
    checked_spec,
)
from pipelines.store import Store, audit_log, metadata
from pipelines.store.io import _utc
from pipelines.store.schema import _JSON
from registry.measures import _json

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("project_id", sa.String(16), primary_key=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("purpose", sa.Text, nullable=False),
    sa.Column("lawful_basis", sa.Text, nullable=False),
    sa.Column("variables", _JSON, nullable=False),
    sa.Column("researchers", _JSON, nullable=False),
    sa.Column("family_analysis", sa.Boolean, nullable=False),
    # research | evaluation_share (anonymise.projects.ProjectKind)
    sa.Column("kind", sa.String(24), nullable=False, server_default="research"),
    sa.Column("approver", sa.String(128), nullable=False),
    sa.Column("approved_on", sa.Date, nullable=False),
    sa.Column("expires_on", sa.Date, nullable=False),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("closed_on", sa.Date, nullable=True),
    sa.Column("closed_reason", sa.Text, nullable=True),
    sa.CheckConstraint("status IN ('open', 'closed')", name="ck_projects_status"),
)

extract_ledger = sa.Table(
    "extract_ledger",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.String(16), sa.ForeignKey("projects.project_id"), nullable=False),
    sa.Column("extract_no", sa.Integer, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("researcher", sa.String(128), nullable=False),
    sa.Column("variables", _JSON, nullable=False),
    sa.Column("quasi_identifiers", _JSON, nullable=False),
    sa.Column("levels", _JSON, nullable=False),
    sa.Column("level_names", _JSON, nullable=False),
    sa.Column("pseudonym_columns", _JSON, nullable=False),
    sa.Column("file_path", sa.Text, nullable=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("records", sa.Integer, nullable=False),
    sa.Column("qi_frame", sa.LargeBinary, nullable=False),
    sa.Column("expired_at", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("project_id", "extract_no", name="uq_extract_ledger_no"),
)


class UnknownProjectError(LookupError):
    """No project with that id in the register."""


@dataclass(frozen=True)
class LedgerEntry:
    project_id: str
    extract_no: int
    at: datetime
    researcher: str
    variables: tuple[str, ...]
    quasi_identifiers: tuple[str, ...]
    levels: dict[str, int]
    level_names: dict[str, str]
    pseudonym_columns: tuple[str, ...]
    file_path: str | None
    sha256: str
    records: int
    expired_at: datetime | None
    frame: pl.DataFrame

    def prior(self) -> PriorExtract:
        return PriorExtract(
            self.extract_no,
            self.variables,
            self.levels,
            self.level_names,
            self.quasi_identifiers,
            self.frame,
        )


def _new_project_id() -> str:
    return f"prj-{secrets.token_hex(5)}"


def _project(r: Any) -> Project:
    spec = ProjectSpec(
        title=r["title"],
        purpose=r["purpose"],
        lawful_basis=r["lawful_basis"],
        variables=tuple(_json(r["variables"])),
        researchers=tuple(_json(r["researchers"])),
        approver=r["approver"],
        approved_on=r["approved_on"],
        expires_on=r["expires_on"],
        family_analysis=bool(r["family_analysis"]),
        kind=ProjectKind(r["kind"]),
    )
    return Project(
        r["project_id"], spec, ProjectStatus(r["status"]), r["closed_on"], r["closed_reason"]
    )


def _audit_row(actor: str, action: str, detail: dict[str, Any]) -> Any:
    return audit_log.insert().values(
        at=datetime.now(UTC), actor=actor, action=action, detail=detail
    )


class ProjectRegister:
    """Projects and their ledgers in a `Store`'s database."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine

    # -- projects ---------------------------------------------------------------------------

    def add(self, spec: ProjectSpec, *, actor: str) -> Project:
        """Validate (every problem at once), give the project its id, store and audit it."""
        spec = checked_spec(spec)
        project = Project(_new_project_id(), spec)
        with self.engine.begin() as conn:
            conn.execute(
                projects.insert().values(
                    project_id=project.project_id,
                    title=spec.title.strip(),
                    purpose=spec.purpose.strip(),
                    lawful_basis=spec.lawful_basis.strip(),
                    variables=list(spec.variables),
                    researchers=list(spec.researchers),
                    family_analysis=spec.family_analysis,
                    kind=spec.kind.value,
                    approver=spec.approver,
                    approved_on=spec.approved_on,
                    expires_on=spec.expires_on,
                    status=ProjectStatus.OPEN.value,
                    created_at=datetime.now(UTC),
                )
            )
            conn.execute(
                _audit_row(
                    actor,
                    "project_added",
                    {
                        "project_id": project.project_id,
                        "kind": spec.kind.value,
                        "title": spec.title,
                        "variables": list(spec.variables),
                        "researchers": list(spec.researchers),
                        "family_analysis": spec.family_analysis,
                        "approver": spec.approver,
                        "expires_on": spec.expires_on.isoformat(),
                    },
                )
            )
        return project

    def get(self, project_id: str) -> Project | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(projects).where(projects.c.project_id == project_id))
                .mappings()
                .first()
            )
        return _project(row) if row else None

    def require(self, project_id: str) -> Project:
        p = self.get(project_id)
        if p is None:
            raise UnknownProjectError(f"no project {project_id!r} in the register")
        return p

    def all(self) -> list[Project]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(projects).order_by(projects.c.created_at)).mappings()
            return [_project(r) for r in rows]

    def close(self, project_id: str, *, actor: str, reason: str, today: date) -> Project:
        if not reason.strip():
            raise ProjectError(["a reason for closing the project is required"])
        project = self.require(project_id)
        if project.status is ProjectStatus.CLOSED:
            raise ProjectError([f"project {project_id} is already closed"])
        with self.engine.begin() as conn:
            conn.execute(
                projects.update()
                .where(projects.c.project_id == project_id)
                .values(status=ProjectStatus.CLOSED.value, closed_on=today, closed_reason=reason)
            )
            conn.execute(
                _audit_row(actor, "project_closed", {"project_id": project_id, "reason": reason})
            )
        return self.require(project_id)

    # -- the ledger -------------------------------------------------------------------------

    def ledger(self, project_id: str) -> list[LedgerEntry]:
        q = (
            sa.select(extract_ledger)
            .where(extract_ledger.c.project_id == project_id)
            .order_by(extract_ledger.c.extract_no)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        return [_entry(r) for r in rows]

    def history(self, project_id: str) -> ReleaseHistory:
        """This project's earlier extracts, and the variables every other project holds."""
        earlier = tuple(e.prior() for e in self.ledger(project_id))
        q = sa.select(
            extract_ledger.c.project_id, extract_ledger.c.variables, extract_ledger.c.levels
        ).where(extract_ledger.c.project_id != project_id)
        elsewhere: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for pid, variables, levels in conn.execute(q):
                held = elsewhere.setdefault(pid, {})
                lv = _json(levels)
                for v in _json(variables):
                    held.setdefault(v, int(lv.get(v, 0)))
        return ReleaseHistory(earlier, elsewhere)

    def record_extract(self, entry: NewLedgerEntry, *, audit_detail: dict[str, Any]) -> None:
        """The ledger row and the audit entry, in one transaction."""
        blob = io.BytesIO()
        entry.frame.write_parquet(blob, compression="zstd")
        with self.engine.begin() as conn:
            conn.execute(
                extract_ledger.insert().values(
                    project_id=entry.project_id,
                    extract_no=entry.extract_no,
                    at=datetime.now(UTC),
                    researcher=entry.researcher,
                    variables=list(entry.variables),
                    quasi_identifiers=list(entry.quasi_identifiers),
                    levels=entry.levels,
                    level_names=entry.level_names,
                    pseudonym_columns=list(entry.pseudonym_columns),
                    file_path=entry.file_path,
                    sha256=entry.sha256,
                    records=entry.records,
                    qi_frame=blob.getvalue(),
                )
            )
            conn.execute(_audit_row(entry.researcher, "extract", audit_detail))

    def set_file_path(self, project_id: str, extract_no: int, path: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                extract_ledger.update()
                .where(
                    extract_ledger.c.project_id == project_id,
                    extract_ledger.c.extract_no == extract_no,
                )
                .values(file_path=path)
            )

    def expired_extracts(self, today: date) -> list[tuple[Project, LedgerEntry]]:
        """Extracts of projects that are closed or past expiry: their files are due for deletion."""
        out: list[tuple[Project, LedgerEntry]] = []
        for p in self.all():
            if not p.is_live(today):
                out.extend((p, e) for e in self.ledger(p.project_id))
        return out

    def record_expiry(self, today: date, *, actor: str) -> list[tuple[Project, LedgerEntry]]:
        """Mark every expired extract not yet marked, auditing each; return the newly marked."""
        newly = [(p, e) for p, e in self.expired_extracts(today) if e.expired_at is None]
        with self.engine.begin() as conn:
            for p, e in newly:
                conn.execute(
                    extract_ledger.update()
                    .where(
                        extract_ledger.c.project_id == e.project_id,
                        extract_ledger.c.extract_no == e.extract_no,
                    )
                    .values(expired_at=datetime.now(UTC))
                )
                conn.execute(
                    _audit_row(
                        actor,
                        "extract_expired",
                        {
                            "project_id": e.project_id,
                            "extract_no": e.extract_no,
                            "file": e.file_path,
                            "sha256": e.sha256,
                            "why": "project closed"
                            if p.status is ProjectStatus.CLOSED
                            else f"project expired on {p.expires_on.isoformat()}",
                        },
                    )
                )
        return newly


def _entry(r: Any) -> LedgerEntry:
    return LedgerEntry(
        project_id=r["project_id"],
        extract_no=int(r["extract_no"]),
        at=_utc(r["at"]),
        researcher=r["researcher"],
        variables=tuple(_json(r["variables"])),
        quasi_identifiers=tuple(_json(r["quasi_identifiers"])),
        levels={k: int(v) for k, v in _json(r["levels"]).items()},
        level_names=dict(_json(r["level_names"])),
        pseudonym_columns=tuple(_json(r["pseudonym_columns"])),
        file_path=r["file_path"],
        sha256=r["sha256"],
        records=int(r["records"]),
        expired_at=_utc(r["expired_at"]) if r["expired_at"] is not None else None,
        frame=pl.read_parquet(io.BytesIO(r["qi_frame"])),
    )
