"""On the real PostgreSQL server: after `portal db grant`, the portal's web role cannot read
`cube_cells` (or anything else), the release service's role cannot run DDL or change a
release, and the service still does its whole job on its own role (tables, sign-in, audit).
Needs PORTAL_TEST_PG_URL and a role with CREATEROLE (.ci/run grants it)."""

from __future__ import annotations

import secrets
import uuid
from datetime import date

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from pipelines.store import Store
from pipelines.store_roles import RoleError, grant_roles
from portal.cli import app as cli
from portal.service import accounts
from portal.service.app import create_app
from tests.conftest import PG_URL
from tests.service_fixtures import (
    SERVICE_TOKEN,
    accounts_file,
    cheap_hasher,
    service_config,
    small_release,
)

pytestmark = pytest.mark.postgres

if not PG_URL:
    pytest.skip(
        "PostgreSQL role tests skipped: PORTAL_TEST_PG_URL is not set", allow_module_level=True
    )


def _url_as(url: str, user: str, password: str) -> str:
    return (
        sa.make_url(url).set(username=user, password=password).render_as_string(hide_password=False)
    )


@pytest.fixture
def roles(db_url):
    """A fresh schema with a release, and two new login roles: the service's and the web's."""
    if not db_url.startswith("postgresql"):
        pytest.skip("roles exist on PostgreSQL only")
    small_release(db_url, data_as_at=date(2025, 3, 31))
    owner = sa.create_engine(db_url)
    suffix = uuid.uuid4().hex[:8]
    names = {"service": f"svc_{suffix}", "web": f"web_{suffix}"}
    passwords = {k: secrets.token_hex(16) for k in names}
    with owner.begin() as conn:
        for key, name in names.items():
            conn.execute(sa.text(f"CREATE ROLE {name} LOGIN PASSWORD '{passwords[key]}'"))
        schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
    urls = {k: _url_as(db_url, names[k], passwords[k]) for k in names}
    yield {"owner": db_url, "names": names, "urls": urls, "schema": schema}
    with owner.begin() as conn:
        for name in names.values():
            conn.execute(sa.text(f'REVOKE ALL ON ALL TABLES IN SCHEMA "{schema}" FROM {name}'))
            conn.execute(sa.text(f'REVOKE ALL ON ALL SEQUENCES IN SCHEMA "{schema}" FROM {name}'))
            conn.execute(sa.text(f'REVOKE ALL ON SCHEMA "{schema}" FROM {name}'))
            conn.execute(sa.text(f"DROP ROLE {name}"))
    owner.dispose()


def _denied(url: str, sql: str) -> bool:
    """True when PostgreSQL refuses `sql` for lack of privilege (SQLSTATE 42501: "permission
    denied" or "must be owner")."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(sql))
    except sa.exc.ProgrammingError as exc:
        return getattr(exc.orig, "sqlstate", None) == "42501"
    finally:
        engine.dispose()
    return False


def test_portal_db_grant_separates_the_three_roles(roles, tmp_path):
    res = CliRunner().invoke(
        cli,
        ["db", "grant", "--store", roles["owner"], "--service-role", roles["names"]["service"],
         "--web-role", roles["names"]["web"]],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    web, svc = roles["urls"]["web"], roles["urls"]["service"]
    # The portal's web role reads nothing: not the cubes, not the releases, not the audit
    # (schema-qualified, so the answer is "permission denied", not "no such table").
    schema = roles["schema"]
    for table in ("cube_cells", "cube_blobs", "releases", "audit", "auth_sessions"):
        assert _denied(web, f'SELECT count(*) FROM "{schema}".{table}'), table
    # The service reads what it serves ...
    engine = sa.create_engine(svc)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM cube_cells")).scalar() > 0
    engine.dispose()
    # ... but runs no DDL and changes no release.
    assert _denied(svc, "CREATE TABLE sneaky (x int)")
    assert _denied(svc, "ALTER TABLE cube_cells ADD COLUMN sneaky text")
    assert _denied(svc, "DROP TABLE cube_cells")
    assert _denied(svc, "UPDATE cube_cells SET n = n + 1")
    assert _denied(svc, "DELETE FROM releases")
    assert _denied(svc, "UPDATE releases SET status = 'withdrawn'")
    assert _denied(svc, "DELETE FROM audit")
    assert _denied(svc, "UPDATE audit SET actor = 'someone else'")


def test_the_service_works_on_its_own_role(roles, tmp_path):
    grant_roles(Store(roles["owner"]), service_role=roles["names"]["service"])
    cheap_hasher()
    path = accounts_file(
        tmp_path / "accounts.toml", {"ada": (accounts.hash_password("x" * 16), ["admin"])}
    )
    svc_url = roles["urls"]["service"]
    config = service_config(svc_url, env={"PORTAL_ACCOUNTS_FILE": str(path)})
    store = Store(svc_url)  # opening the store as the service must not need DDL
    app = create_app(config, sdc_secret=b"k" * 32, service_token=SERVICE_TOKEN, store=store)
    with TestClient(app) as client:
        headers = {"X-Service-Token": SERVICE_TOKEN}
        for _ in range(2):  # a failure (lockout state) and an upgrade-free success
            client.post("/v1/sessions/local", json={"username": "ada", "password": "wrong"},
                        headers=headers)  # fmt: skip
        r = client.post("/v1/sessions/local", json={"username": "ada", "password": "x" * 16},
                        headers=headers)  # fmt: skip
        assert r.status_code == 200, r.text
        headers["Authorization"] = f"Bearer {r.json()['token']}"
        assert client.get("/v1/tables/children?by=ward", headers=headers).status_code == 200
        assert client.get("/v1/admin/audit", headers=headers).status_code == 200
        assert client.delete("/v1/session", headers=headers).status_code == 204
    actions = Store(roles["owner"]).read_audit()["action"].to_list()
    assert {"sign_in", "sign_in_failed", "table_query", "sign_out"} <= set(actions)
    store.dispose()


def test_grant_refuses_sqlite_and_unknown_roles(roles, tmp_path):
    with pytest.raises(RoleError, match="PostgreSQL"):
        grant_roles(Store(f"sqlite:///{tmp_path}/s.sqlite"), service_role="x")
    with pytest.raises(RoleError, match="does not exist"):
        grant_roles(Store(roles["owner"]), service_role="no_such_role_" + uuid.uuid4().hex[:6])
