"""Schema migrations: opening a store never runs DDL; `portal db upgrade` (Alembic) brings an
empty store, and a store made before migrations, to exactly the schema the code declares,
on SQLite and PostgreSQL, without losing a row."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from typer.testing import CliRunner

from pipelines import store_schema
from pipelines.store import Store, metadata
from pipelines.store_schema import SchemaError
from portal.cli import app
from registry.errors import StoreError
from registry.measures import MeasureMeta


@pytest.fixture
def no_auto_upgrade(monkeypatch):
    monkeypatch.delenv(store_schema.AUTO_UPGRADE_ENV, raising=False)


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


def _diff(url: str) -> list:
    """What Alembic finds between the database and the code's declared schema."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(ctx, metadata)
    finally:
        engine.dispose()


def test_opening_an_empty_store_runs_no_ddl_and_names_the_command(db_url, no_auto_upgrade):
    with pytest.raises(SchemaError, match=r"has no schema yet: run `portal db upgrade"):
        Store(db_url)
    assert _tables(db_url) == set()


def test_upgrade_from_empty_gives_the_declared_schema(db_url, no_auto_upgrade):
    result = CliRunner().invoke(app, ["db", "upgrade", "--store", db_url])
    assert result.exit_code == 0, result.output
    assert f"from none to {store_schema.head()}" in result.output
    assert _diff(db_url) == []
    store = Store(db_url)  # now it opens, without upgrading
    assert store.schema_change is None and store_schema.current(store.engine) == store_schema.head()
    store.dispose()
    again = CliRunner().invoke(app, ["db", "upgrade", "--store", db_url])
    assert again.exit_code == 0 and "already at schema revision" in again.output


def _baseline() -> sa.MetaData:
    import importlib.util

    path = store_schema.MIGRATIONS / "versions" / "0001_baseline.py"
    spec = importlib.util.spec_from_file_location("baseline_0001", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._md


def _legacy_store(url: str) -> None:
    """A store as `Store()` made it before migrations: today's tables minus the columns and
    tables added later, no version table, and a release in it."""
    engine = sa.create_engine(url)
    md = sa.MetaData()
    later = {"releases": {"kind", "key_epoch", "revised_through", "revision_note",
                          "cubes_removed_at", "reference_release", "materiality"},
             "measure_meta": {"complete_after_days"}}  # fmt: skip
    skip_tables = {"evaluation_shares", "subject_requests", "objection_acknowledgements"}
    for table in _baseline().sorted_tables:  # the schema frozen in revision 0001
        if table.name in skip_tables:
            continue
        t = table.to_metadata(md)
        for name in later.get(table.name, set()):
            t._columns.remove(t.c[name])
            for con in [c for c in t.constraints if isinstance(c, sa.CheckConstraint)]:
                if name in str(con.sqltext):
                    t.constraints.discard(con)
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            md.tables["releases"].insert().values(
                release_id="R-OLD", created_at=datetime(2025, 1, 1, tzinfo=UTC),
                data_as_at=date(2024, 12, 31), policy_id="council-sdc@1", status="published",
                run_metadata={}, row_counts={"m": 1},
            )
        )  # fmt: skip
    engine.dispose()


def test_a_store_made_before_migrations_is_refused_then_adopted(db_url, no_auto_upgrade):
    _legacy_store(db_url)
    with pytest.raises(SchemaError, match="made before migrations"):
        Store(db_url)
    store = Store(db_url, upgrade=True)
    assert store.schema_change == (None, store_schema.head())
    diff = _diff(db_url)
    assert diff == [], "\n".join(map(str, diff))
    old = store.list_releases()
    assert [(r.release_id, r.kind, r.key_epoch) for r in old] == [("R-OLD", "routine", 0)]
    # The adopted store works as a new one: a release can be written on top.
    meta = MeasureMeta("m", "M", "a measure", "children", ("ward",))
    cube = pl.DataFrame({"ward": ["A"], "n": [12], "ckey": [5]})
    rid = store.write_release({"m": cube}, [meta], policy_id="council-sdc@2",
                              data_as_at=date(2026, 3, 31))  # fmt: skip
    assert store.latest_release().release_id == rid
    store.dispose()


def test_upgrade_from_the_previous_revision_keeps_every_row(db_url, no_auto_upgrade):
    """A store at the revision before the newest, with a release in it, upgrades to the
    declared schema and keeps the release."""
    engine = sa.create_engine(db_url)
    store_schema.upgrade(engine, "head-1")
    previous = store_schema.current(engine)
    assert previous is not None and previous != store_schema.head()
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO releases (release_id, created_at, data_as_at, policy_id, status, "
                "run_metadata, row_counts, kind, key_epoch, materiality) VALUES ('R-PREV', "
                ":at, :d, 'council-sdc@2', 'published', '{}', '{}', 'routine', 0, 0)"
            ),
            {"at": datetime(2026, 1, 1, tzinfo=UTC), "d": date(2025, 12, 31)},
        )
    engine.dispose()
    result = CliRunner().invoke(app, ["db", "upgrade", "--store", db_url])
    assert result.exit_code == 0, result.output
    assert f"from {previous} to {store_schema.head()}" in result.output
    assert _diff(db_url) == []
    store = Store(db_url)
    assert [r.release_id for r in store.list_releases()] == ["R-PREV"]
    store.dispose()


def test_an_older_revision_is_refused(db_url, no_auto_upgrade):
    Store(db_url, upgrade=True).dispose()
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0000'"))
    engine.dispose()
    with pytest.raises(SchemaError, match=f"revision 0000; this code needs {store_schema.head()}"):
        Store(db_url)


def test_the_engine_pings_before_use(db_url):
    store = Store(db_url)
    assert store.engine.pool._pre_ping is True
    store.dispose()


def test_the_head_read_from_the_files_is_alembics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Opening a store reads the head from the migration files' text (no Alembic import);
    it must be Alembic's answer, and a fork in the history must not pass silently."""
    from alembic.script import ScriptDirectory

    assert store_schema.head() == ScriptDirectory.from_config(store_schema._config()).get_current_head()
    versions = tmp_path / "versions"
    versions.mkdir()
    for name, rev, down in (("a", "0001", "None"), ("b", "0002", '"0001"'), ("c", "0003", '"0001"')):
        (versions / f"{name}.py").write_text(f'revision = "{rev}"\ndown_revision = {down}\n')
    monkeypatch.setattr(store_schema, "MIGRATIONS", tmp_path)
    store_schema.head.cache_clear()
    try:
        with pytest.raises(StoreError, match="2 heads"):
            store_schema.head()
    finally:
        store_schema.head.cache_clear()
