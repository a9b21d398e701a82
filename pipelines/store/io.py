"""The store's I/O: `Store` opens a database (SQLite file or PostgreSQL), writes a release
in one transaction and reads releases, cubes, ledgers and the audit log back.

The tables are in `pipelines.store.schema`; measure metadata, the dimension registry and
release validation in the shared `registry` package. See `pipelines.store` for the design.
"""

from __future__ import annotations

import contextlib
import io
import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pipelines.store.schema import (
    audit_log,
    cube_blobs,
    cube_cells,
    measure_meta,
    release_ledgers,
    releases,
)
from registry.errors import (
    ReleaseDataRemovedError,
    ReleaseValidationError,
    ReleaseWriteError,
    UnknownMeasureError,
    UnknownReleaseError,
)
from registry.measures import (
    CHANGE_SET_PREFIX,
    RELEASE_KINDS,
    MeasureMeta,
    ReleaseInfo,
    _json,
    validate_release,
)
from registry.settings import ServiceSettings

if TYPE_CHECKING:
    from pipelines.project_register import ProjectRegister

STORE_URL_ENV = "PORTAL_STORE_URL"
DEFAULT_SQLITE_PATH = Path("data") / "portal.sqlite"


def default_store_url(settings: ServiceSettings | None = None) -> str:
    """$PORTAL_STORE_URL, else a SQLite file under data/."""
    settings = settings or ServiceSettings.load()
    if settings.store_url is not None:
        return settings.store_url.get_secret_value()
    return f"sqlite:///{DEFAULT_SQLITE_PATH.resolve()}"


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _new_release_id(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


# --- the store --------------------------------------------------------------------------


class Store:
    """The release store. Its schema is migrated by `pipelines.store_schema` (Alembic)."""

    def __init__(
        self, url: str | None = None, *, echo: bool = False, upgrade: bool = False
    ) -> None:
        """Open the store. It must be at the code's schema revision (else SchemaError says
        what to run); `upgrade=True` (or PORTAL_STORE_AUTO_UPGRADE=1, for development and
        tests) applies the migrations first. Plain opening never runs DDL."""
        self.url = url or default_store_url()
        sa_url = sa.make_url(self.url)
        if sa_url.get_backend_name() == "sqlite" and sa_url.database not in (None, "", ":memory:"):
            Path(sa_url.database).parent.mkdir(parents=True, exist_ok=True)
        # pre_ping: the release service holds its pool for days; a connection the database
        # closed meanwhile is replaced instead of failing a reader's query.
        self.engine: Engine = sa.create_engine(sa_url, echo=echo, pool_pre_ping=True)
        self.dialect = self.engine.dialect.name
        # Identifies the database for in-memory caches, without the password.
        self.cache_key = sa_url.render_as_string(hide_password=True)
        if self.dialect == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        from pipelines import store_schema

        # (revision before, revision after) when this open applied migrations.
        self.schema_change: tuple[str | None, str | None] | None = None
        if upgrade or ServiceSettings.load().store_auto_upgrade:
            self.schema_change = store_schema.upgrade(self.engine)
        else:
            store_schema.check(self.engine, self.cache_key)

    def __repr__(self) -> str:
        return f"Store({self.cache_key!r})"

    def dispose(self) -> None:
        self.engine.dispose()

    # -- writing -----------------------------------------------------------------------

    def write_release(
        self,
        cubes: Mapping[str, pl.DataFrame | pl.LazyFrame],
        meta: Mapping[str, MeasureMeta] | Iterable[MeasureMeta],
        *,
        policy_id: str,
        data_as_at: date,
        run_metadata: Mapping[str, Any] | None = None,
        actor: str = "pipeline",
        kind: str = "routine",
        key_epoch: int = 0,
        revised_through: date | None = None,
        revision_note: str | None = None,
        ledgers: Mapping[str, pl.DataFrame] | None = None,
        reference_release: str | None = None,
        materiality: int = 0,
    ) -> str:
        """Write a new release in ONE transaction and return its id.

        Validates first (all problems reported together). If anything fails while
        writing, the transaction rolls back, the failure is audited, and the previous
        release stays the latest. `ledgers` (per measure: `unit_hash` and the dimensions
        each unit was published with) are written in the same transaction."""
        metas = dict(meta) if isinstance(meta, Mapping) else {m.name: m for m in meta}
        frames = {
            name: c.collect() if isinstance(c, pl.LazyFrame) else c for name, c in cubes.items()
        }
        problems = validate_release(frames, metas)
        if kind not in RELEASE_KINDS:
            problems.append(f"kind must be one of {RELEASE_KINDS}, got {kind!r}")
        if key_epoch < 0:
            problems.append("key_epoch must be 0 or more")
        if kind == "revision" and revised_through is None:
            problems.append("a revision release must say through which date it revised history")
        if materiality < 0:
            problems.append("materiality must be 0 or more")
        if materiality and reference_release is None:
            problems.append("a materiality threshold needs a reference release")
        for name, ledger in sorted((ledgers or {}).items()):
            key = "subject_hash" if name.startswith(CHANGE_SET_PREFIX) else "unit_hash"
            if key not in ledger.columns:
                problems.append(f"ledger {name!r} has no {key} column")
            if name in metas:
                extra = [
                    c for c in ledger.columns if c not in (*metas[name].breakdowns, "unit_hash")
                ]
                if extra:
                    problems.append(f"ledger {name!r}: column(s) {extra} are not breakdowns")
        try:
            json.dumps(dict(run_metadata or {}))
        except (TypeError, ValueError) as exc:
            problems.append(f"run_metadata must be JSON-serialisable: {exc}")
        if problems:
            raise ReleaseValidationError(problems)
        now = datetime.now(UTC)
        release_id = _new_release_id(now)
        row_counts = {name: frames[name].height for name in sorted(frames)}
        run_meta = dict(run_metadata or {})
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    releases.insert().values(
                        release_id=release_id,
                        created_at=now,
                        data_as_at=data_as_at,
                        policy_id=policy_id,
                        status="published",
                        run_metadata=run_meta,
                        row_counts=row_counts,
                        kind=kind,
                        key_epoch=key_epoch,
                        revised_through=revised_through,
                        revision_note=revision_note,
                        reference_release=reference_release,
                        materiality=materiality,
                    )
                )
                for name in sorted(frames):
                    conn.execute(
                        measure_meta.insert().values(release_id=release_id, **metas[name].to_row())
                    )
                    self._insert_cube(conn, release_id, name, frames[name], metas[name].breakdowns)
                for name, ledger in sorted((ledgers or {}).items()):
                    blob = io.BytesIO()
                    ledger.write_parquet(blob, compression="zstd", statistics=False)
                    conn.execute(
                        release_ledgers.insert().values(
                            release_id=release_id, measure=name, parquet=blob.getvalue()
                        )
                    )
                conn.execute(
                    audit_log.insert().values(
                        at=datetime.now(UTC),
                        actor=actor,
                        action="release_written",
                        release_id=release_id,
                        detail={
                            "policy_id": policy_id,
                            "data_as_at": data_as_at.isoformat(),
                            "row_counts": row_counts,
                            "kind": kind,
                            "key_epoch": key_epoch,
                            "revised_through": revised_through.isoformat()
                            if revised_through
                            else None,
                            "reference_release": reference_release,
                            "materiality": materiality,
                        },
                    )
                )
        except Exception as exc:
            detail = {"error": f"{type(exc).__name__}: {str(exc)[:500]}", "row_counts": row_counts}
            # The original failure is what matters if even the audit cannot be written.
            with contextlib.suppress(Exception):
                self.audit(actor, "release_failed", detail)
            raise ReleaseWriteError(
                f"release {release_id} was not written (rolled back; the previous release "
                f"is unchanged): {type(exc).__name__}: {exc}"
            ) from exc
        return release_id

    def _insert_cube(
        self,
        conn: Connection,
        release_id: str,
        measure: str,
        cube: pl.DataFrame,
        dims: Sequence[str],
    ) -> None:
        if cube.height == 0:
            return
        blob = io.BytesIO()
        cube.select(*dims, pl.col("n").cast(pl.Int64), pl.col("ckey").cast(pl.Int64)).write_parquet(
            blob, compression="zstd", statistics=False
        )
        conn.execute(
            cube_blobs.insert().values(
                release_id=release_id, measure=measure, parquet=blob.getvalue()
            )
        )
        cols = ["release_id", "measure", *dims, "n", "ckey"]
        frame = cube.select(
            pl.lit(release_id).alias("release_id"),
            pl.lit(measure).alias("measure"),
            *dims,
            pl.col("n").cast(pl.Int64),
            pl.col("ckey").cast(pl.Int64),
        )
        prep = conn.dialect.identifier_preparer
        col_sql = ", ".join(prep.quote(c) for c in cols)
        if self.dialect == "postgresql" and conn.dialect.driver == "psycopg":
            buf = io.BytesIO()
            frame.write_csv(buf, include_header=False)
            raw: Any = conn.connection.driver_connection
            sql = f"COPY cube_cells ({col_sql}) FROM STDIN (FORMAT csv)"
            with raw.cursor() as cur, cur.copy(sql) as copy:
                copy.write(buf.getvalue())
        elif self.dialect == "sqlite":
            marks = ", ".join("?" for _ in cols)
            conn.exec_driver_sql(
                f"INSERT INTO cube_cells ({col_sql}) VALUES ({marks})",
                frame.rows(),
            )
        else:
            conn.execute(cube_cells.insert(), frame.to_dicts())

    def withdraw_release(self, release_id: str, *, actor: str, reason: str) -> None:
        """Mark a release withdrawn (it stays stored for the audit trail)."""
        with self.engine.begin() as conn:
            done = conn.execute(
                releases.update()
                .where(releases.c.release_id == release_id)
                .values(status="withdrawn")
            )
            if done.rowcount == 0:
                raise UnknownReleaseError(release_id)
            conn.execute(
                audit_log.insert().values(
                    at=datetime.now(UTC),
                    actor=actor,
                    action="release_withdrawn",
                    release_id=release_id,
                    detail={"reason": reason},
                )
            )

    # -- reading ------------------------------------------------------------------------

    def _release_rows(self, *where: Any, limit: int | None = None) -> list[ReleaseInfo]:
        q = sa.select(releases).where(*where).order_by(releases.c.seq.desc()).limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        return [
            ReleaseInfo(
                release_id=r["release_id"],
                created_at=_utc(r["created_at"]),
                data_as_at=r["data_as_at"],
                policy_id=r["policy_id"],
                status=r["status"],
                run_metadata=_json(r["run_metadata"]),
                row_counts=_json(r["row_counts"]),
                kind=r["kind"],
                key_epoch=r["key_epoch"],
                revised_through=r["revised_through"],
                revision_note=r["revision_note"],
                cubes_removed_at=_utc(r["cubes_removed_at"]) if r["cubes_removed_at"] else None,
                reference_release=r["reference_release"],
                materiality=r["materiality"],
            )
            for r in rows
        ]

    def latest_release(self) -> ReleaseInfo | None:
        """The newest published release, or None before the first one."""
        rows = self._release_rows(releases.c.status == "published", limit=1)
        return rows[0] if rows else None

    def list_releases(self) -> list[ReleaseInfo]:
        """Every release, newest first (withdrawn ones included, with their status)."""
        return self._release_rows()

    def get_release(self, release_id: str) -> ReleaseInfo:
        rows = self._release_rows(releases.c.release_id == release_id)
        if not rows:
            raise UnknownReleaseError(f"no release {release_id!r}")
        return rows[0]

    def read_meta(self, release_id: str) -> dict[str, MeasureMeta]:
        """Metadata of every measure in a release."""
        q = sa.select(measure_meta).where(measure_meta.c.release_id == release_id)
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        if not rows:
            self.get_release(release_id)  # raises if the release does not exist
        return {r["measure"]: MeasureMeta.from_row(dict(r)) for r in rows}

    def read_measure_meta(self, release_id: str, measure: str) -> MeasureMeta:
        meta = self.read_meta(release_id)
        if measure not in meta:
            raise UnknownMeasureError(
                f"release {release_id} has no measure {measure!r}; it has {sorted(meta)}"
            )
        return meta[measure]

    def read_cube(self, release_id: str, measure: str) -> pl.DataFrame:
        """The cube of one measure: its breakdown columns, `n` and `ckey` (TRUE counts:
        only `anonymise.release` may call this)."""
        dims = list(self.read_measure_meta(release_id, measure).breakdowns)
        schema: dict[str, pl.DataType] = {d: pl.String() for d in dims}
        schema |= {"n": pl.Int64(), "ckey": pl.Int64()}
        cols = [*dims, "n", "ckey"]
        prep = self.engine.dialect.identifier_preparer
        select = (
            f"SELECT {', '.join(prep.quote(c) for c in cols)} FROM cube_cells "
            "WHERE release_id = {p} AND measure = {p}"
        )
        params = (release_id, measure)
        with self.engine.connect() as conn:
            blob = conn.execute(
                sa.select(cube_blobs.c.parquet).where(
                    cube_blobs.c.release_id == release_id, cube_blobs.c.measure == measure
                )
            ).scalar_one_or_none()
            if blob is not None:
                return pl.read_parquet(io.BytesIO(blob)).select(
                    pl.col(c).cast(t) for c, t in schema.items()
                )
            removed = conn.execute(
                sa.select(releases.c.cubes_removed_at).where(releases.c.release_id == release_id)
            ).scalar_one_or_none()
            if removed is not None:
                raise ReleaseDataRemovedError(
                    f"the tables of release {release_id} are no longer kept: its cubes were "
                    f"removed under the retention schedule on {_utc(removed):%Y-%m-%d}"
                )
            raw: Any = conn.connection.driver_connection
            if self.dialect == "postgresql" and conn.dialect.driver == "psycopg":
                buf = io.BytesIO()
                sql = f"COPY ({select.format(p='%s')}) TO STDOUT (FORMAT csv)"
                with raw.cursor() as cur, cur.copy(sql, params) as copy:
                    for chunk in copy:
                        buf.write(chunk)
                if buf.tell() == 0:
                    return pl.DataFrame(schema=schema)
                buf.seek(0)
                return pl.read_csv(buf, has_header=False, new_columns=cols, schema=schema)
            if self.dialect == "sqlite":
                # The raw cursor, read column-wise: about twice as fast as Row objects.
                rows = raw.execute(select.format(p="?"), params).fetchall()
            else:
                q = sa.select(*(cube_cells.c[c] for c in cols)).where(
                    cube_cells.c.release_id == release_id, cube_cells.c.measure == measure
                )
                rows = [tuple(r) for r in conn.execute(q)]
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in cols]
        return pl.DataFrame(
            {
                c: pl.Series(c, values, dtype=schema[c])
                for c, values in zip(cols, columns, strict=True)
            }
        )

    # -- ledgers ------------------------------------------------------------------------

    def read_ledger(self, release_id: str, measure: str) -> pl.DataFrame | None:
        """The units a release published for a measure (None: it kept no ledger for it).
        Record-level: only the pipeline's publish step reads it."""
        with self.engine.connect() as conn:
            blob = conn.execute(
                sa.select(release_ledgers.c.parquet).where(
                    release_ledgers.c.release_id == release_id,
                    release_ledgers.c.measure == measure,
                )
            ).scalar_one_or_none()
        return None if blob is None else pl.read_parquet(io.BytesIO(blob))

    def read_change_set(self, release_id: str, measure: str) -> pl.DataFrame | None:
        """Who changed where since the release's reference (keyed subject hashes and cells):
        what the release layer counts people in for materiality."""
        return self.read_ledger(release_id, CHANGE_SET_PREFIX + measure)

    def ledger_measures(self, release_id: str) -> list[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(release_ledgers.c.measure).where(
                    release_ledgers.c.release_id == release_id
                )
            ).all()
        return sorted(r[0] for r in rows)

    # -- retention ------------------------------------------------------------------------

    def remove_release_data(self, release_id: str) -> dict[str, int]:
        """Delete a release's true-count cubes and ledgers (its row, metadata and audit
        trail stay); returns how many rows of each were deleted. One transaction."""
        with self.engine.begin() as conn:
            counts = {
                "cube_cells": conn.execute(
                    cube_cells.delete().where(cube_cells.c.release_id == release_id)
                ).rowcount,
                "cube_blobs": conn.execute(
                    cube_blobs.delete().where(cube_blobs.c.release_id == release_id)
                ).rowcount,
                "ledgers": conn.execute(
                    release_ledgers.delete().where(release_ledgers.c.release_id == release_id)
                ).rowcount,
            }
            done = conn.execute(
                releases.update()
                .where(releases.c.release_id == release_id)
                .values(cubes_removed_at=datetime.now(UTC))
            )
            if done.rowcount == 0:
                raise UnknownReleaseError(release_id)
        return counts

    def count_audit_before(self, cutoff: datetime) -> int:
        q = sa.select(sa.func.count()).select_from(audit_log).where(audit_log.c.at < cutoff)
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar_one())

    def delete_audit_before(self, cutoff: datetime) -> int:
        """Delete audit entries older than `cutoff`; returns how many."""
        with self.engine.begin() as conn:
            return int(conn.execute(audit_log.delete().where(audit_log.c.at < cutoff)).rowcount)

    # -- audit ------------------------------------------------------------------------

    def project_register(self) -> ProjectRegister:
        """The register of approved projects and their release ledgers, on this store."""
        from pipelines.project_register import ProjectRegister

        return ProjectRegister(self)

    def protected_paths(self) -> tuple[list[Path], list[Path]]:
        """(folders, files) an extract may never be written into: the data folder and,
        for a SQLite store, the store's own file."""
        files: list[Path] = []
        url = self.engine.url
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            files.append(Path(url.database))
        return [DEFAULT_SQLITE_PATH.parent], files

    def audit(
        self,
        actor: str,
        action: str,
        detail: Mapping[str, Any] | None = None,
        *,
        release_id: str | None = None,
    ) -> None:
        """Append one audit entry (its own transaction)."""
        with self.engine.begin() as conn:
            conn.execute(
                audit_log.insert().values(
                    at=datetime.now(UTC),
                    actor=actor,
                    action=action,
                    release_id=release_id,
                    detail=dict(detail or {}),
                )
            )

    def read_audit(
        self,
        *,
        action: str | None = None,
        release_id: str | None = None,
        limit: int | None = None,
    ) -> pl.DataFrame:
        """Audit entries, newest first; `detail` is a JSON string."""
        q = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if action is not None:
            q = q.where(audit_log.c.action == action)
        if release_id is not None:
            q = q.where(audit_log.c.release_id == release_id)
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        return pl.DataFrame(
            {
                "id": [r["id"] for r in rows],
                "at": [_utc(r["at"]) for r in rows],
                "actor": [r["actor"] for r in rows],
                "action": [r["action"] for r in rows],
                "release_id": [r["release_id"] for r in rows],
                "detail": [json.dumps(_json(r["detail"]), sort_keys=True) for r in rows],
            },
            schema={
                "id": pl.Int64,
                "at": pl.Datetime("us", "UTC"),
                "actor": pl.String,
                "action": pl.String,
                "release_id": pl.String,
                "detail": pl.String,
            },
        )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL: readers keep seeing the previous release while a new one is being written.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()
