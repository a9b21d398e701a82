"""Shared fixtures. Store tests take `db_url`, which runs them on SQLite and,
when CI (or you) export PORTAL_TEST_PG_URL, on PostgreSQL as well."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_URL = os.environ.get("PORTAL_TEST_PG_URL")
# Every store a test opens is migrated through the real migrations (pipelines/migrations)
# when it is opened; services and CLIs the tests start inherit it. Production never sets
# it: there `portal db upgrade` migrates and opening a store never runs DDL
# (tests/test_migrations.py proves both).
os.environ["PORTAL_STORE_AUTO_UPGRADE"] = "1"

_BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(params=_BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database per test: a SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.sqlite'}"
        return
    import sqlalchemy as sa

    assert PG_URL is not None
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    # search_path makes every unqualified table land in the test's own schema.
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(scope="session")
def county_20k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20,000-person synthetic county (CSV), shared by every test in the session."""
    from synthetic.generator import generate_county

    out = tmp_path_factory.mktemp("county20k")
    generate_county(20000, 7, out)
    return out
