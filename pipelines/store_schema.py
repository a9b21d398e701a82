"""The release store's schema version: migrations with Alembic (`pipelines/migrations`).

Opening a store never runs DDL: `Store` checks that the database is at the code's
revision and, if not, says exactly what to run. `upgrade` applies the migrations: the
store's owner runs it with `portal db upgrade` (`make run` does, before the pipeline), so
the release service's and the portal's database roles never need DDL rights.

Development and the test suite may set PORTAL_STORE_AUTO_UPGRADE=1, so that a new store
is migrated when it is opened (through the same migrations).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from registry.errors import StoreError

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection, Engine

MIGRATIONS = Path(__file__).with_name("migrations")
AUTO_UPGRADE_ENV = "PORTAL_STORE_AUTO_UPGRADE"
VERSION_TABLE = "alembic_version"


class SchemaError(StoreError):
    """The database is not at the revision this code needs."""


def _config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@lru_cache(maxsize=1)
def head() -> str:
    """The newest revision in `pipelines/migrations/versions`: the one no other revision
    names as its `down_revision`.

    Read from the files' text rather than through Alembic: every opening of a store asks
    for it, and importing Alembic and executing every migration module cost each
    `portal table` call more than the table. `tests/test_migrations.py` holds this equal to
    Alembic's own answer."""
    revisions: dict[str, tuple[str, ...]] = {}
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        rev = _REVISION.search(text)
        if rev is None:
            continue
        down = _DOWN_REVISION.search(text)
        revisions[rev.group(1)] = tuple(_QUOTED.findall(down.group(1))) if down else ()
    named_as_down = {d for downs in revisions.values() for d in downs}
    heads = sorted(set(revisions) - named_as_down)
    if len(heads) != 1:
        raise StoreError(f"the migrations have {len(heads)} heads ({heads}); merge them")
    return heads[0]


_REVISION = re.compile(r"^revision\s*(?::[^=]*)?=\s*[\"']([^\"']+)[\"']", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*(?::[^=]*)?=\s*(.+)$", re.MULTILINE)
_QUOTED = re.compile(r"[\"']([^\"']+)[\"']")


def current(engine: Engine) -> str | None:
    """The database's revision (None: no version table, or an empty one)."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(VERSION_TABLE):
            return None
        row = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).first()
    return str(row[0]) if row else None


def upgrade(engine: Engine, target: str = "head") -> tuple[str | None, str | None]:
    """Apply every migration up to `target`; returns (revision before, revision after)."""
    before = current(engine)
    if target == "head" and before == head():
        # Nothing to apply: Alembic (and every migration module) stays unloaded, which is
        # most of a short command's start-up when stores open with auto-upgrade on.
        return before, before
    from alembic import command

    with engine.begin() as conn:
        command.upgrade(_config(conn), target)
    return before, current(engine)


def check(engine: Engine, where: str) -> None:
    """Raise SchemaError unless the database is at the code's revision (no DDL)."""
    rev = current(engine)
    if rev == head():
        return
    if rev is None:
        with engine.connect() as conn:
            tables = sa.inspect(conn).get_table_names()
        state = (
            "was made before migrations (it has tables but no schema version)"
            if tables
            else "has no schema yet"
        )
    else:
        state = f"is at schema revision {rev}; this code needs {head()}"
    raise SchemaError(
        f"the store at {where} {state}: run `portal db upgrade --store URL` as the "
        "store's owner (opening a store never changes its schema)"
    )
