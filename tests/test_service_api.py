"""The release service's API on SQLite and PostgreSQL (`db_url`): deny by default, roles
enforced on the server, table documents identical to `portal table --format json`, releases
identified and pinned, queries audited, admin figures with small counts masked."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from anonymise import cellkey
from anonymise.policy import default_policy
from anonymise.release import tabulate
from pipelines.store import Store
from pipelines.store_auth import auth_sessions
from portal.cli import app as cli
from portal.documents import table_document
from portal.service import accounts, signin
from portal.service.app import create_app
from tests.service_fixtures import (
    SERVICE_TOKEN,
    accounts_file,
    cheap_hasher,
    service_config,
    small_release,
)

SECRET = bytes.fromhex("a7" * 32)
PASSWORD = "a long enough password"
USERS = {
    "pat": ["planner"],
    "rae": ["researcher"],
    "ada": ["admin"],
    "lee": ["leadership"],
}
PORTAL = {"X-Service-Token": SERVICE_TOKEN}


@pytest.fixture
def api(db_url: str, tmp_path: Path):
    """The service over a store with two releases, local accounts for each role."""
    cheap_hasher()
    first = small_release(db_url, data_as_at=date(2025, 3, 31))
    latest = small_release(db_url, data_as_at=date(2025, 6, 30))
    hashed = accounts.hash_password(PASSWORD)
    path = accounts_file(tmp_path / "accounts.toml", {u: (hashed, r) for u, r in USERS.items()})
    work = tmp_path / "work"
    config = service_config(db_url, env={"PORTAL_ACCOUNTS_FILE": str(path)}, work_dir=work)
    store = Store(db_url)
    app = create_app(config, sdc_secret=SECRET, service_token=SERVICE_TOKEN, store=store)
    with TestClient(app) as client:
        yield {
            "client": client,
            "app": app,
            "store": store,
            "url": db_url,
            "first": first,
            "latest": latest,
            "work": work,
        }
    store.dispose()


def _sign_in(client: TestClient, user: str, *, portal: bool = True) -> dict[str, str]:
    r = client.post(
        "/v1/sessions/local",
        json={"username": user, "password": PASSWORD},
        headers=PORTAL if portal else {},
    )
    assert r.status_code == 200, r.text
    auth = {"Authorization": f"Bearer {r.json()['token']}"}
    return {**PORTAL, **auth} if portal else auth


# --- deny by default -----------------------------------------------------------------------


def test_health_needs_nothing_and_tells_nothing(api):
    r = api["client"].get("/v1/health")
    assert r.status_code == 200 and r.json() == {"status": "ok", "api_version": "1"}


def test_every_route_refuses_a_caller_without_credentials(api):
    """Every /v1 route but health (and the sign-in door itself) answers 401 without a
    credential; with a wrong service credential, every route refuses too."""
    client = api["client"]
    checked = []
    for route in api["app"].routes:
        if not isinstance(route, APIRoute) or not route.path.startswith("/v1"):
            continue
        if route.path in ("/v1/health", "/v1/sessions/local"):
            continue
        path = route.path.replace("{measure}", "contacts").replace("{release_id}", "latest")
        for method in route.methods:
            body = {} if method == "POST" else None
            r = client.request(method, path, json=body)
            assert r.status_code == 401, (method, path, r.status_code, r.text)
            r = client.request(method, path, json=body, headers={"X-Service-Token": "nope" * 10})
            assert r.status_code == 401, (method, path, r.status_code)
            assert "nope" not in r.text and SERVICE_TOKEN not in r.text
            checked.append((method, path))
    assert len(checked) >= 18, checked


def test_roles_are_enforced_by_the_service(api):
    client = api["client"]
    planner, researcher = _sign_in(client, "pat"), _sign_in(client, "rae")
    admin, leader = _sign_in(client, "ada"), _sign_in(client, "lee")
    admin_paths = ["/v1/admin/run", "/v1/admin/linkage", "/v1/admin/quarantine",
                   "/v1/admin/releases", "/v1/admin/audit", "/v1/admin/governance"]  # fmt: skip
    for headers in (planner, researcher, leader):
        for path in admin_paths:
            assert client.get(path, headers=headers).status_code == 403, path
    for path in admin_paths:
        assert client.get(path, headers=admin).status_code == 200, path
    for headers in (planner, admin, leader):
        assert client.get("/v1/extracts/catalogue", headers=headers).status_code == 403
        r = client.post("/v1/extracts", json={"project": "p", "purpose": "q", "variables": ["age"]},
                        headers=headers)  # fmt: skip
        assert r.status_code == 403
    assert client.get("/v1/extracts/catalogue", headers=researcher).status_code == 200
    for headers in (planner, researcher, admin, leader):
        assert client.get("/v1/tables/children?by=ward", headers=headers).status_code == 200


def test_an_identity_without_a_role_gets_no_numbers(api):
    client = api["client"]
    state = api["app"].state.service
    token, _ = state.signin._open("nobody@x", "Nobody", frozenset(), "local", "portal")
    headers = {**PORTAL, "Authorization": f"Bearer {token}"}
    assert client.get("/v1/session", headers=headers).status_code == 200
    for path in ("/v1/tables/children", "/v1/measures", "/v1/releases", "/v1/policy"):
        assert client.get(path, headers=headers).status_code == 403, path


def test_a_portal_session_needs_the_service_credential(api):
    """A session the portal opened is useless without the portal's credential (a stolen
    cookie cannot be replayed against the API); an API client's own session works alone."""
    client = api["client"]
    portal = _sign_in(client, "pat")
    bearer_only = {"Authorization": portal["Authorization"]}
    assert client.get("/v1/tables/children", headers=bearer_only).status_code == 401
    assert client.get("/v1/tables/children", headers=portal).status_code == 200
    own = _sign_in(client, "pat", portal=False)
    assert client.get("/v1/tables/children", headers=own).status_code == 200


# --- tables ------------------------------------------------------------------------------------


def test_a_table_is_the_document_portal_table_prints(api, monkeypatch):
    client = api["client"]
    headers = _sign_in(client, "pat")
    r = client.get(
        "/v1/tables/service",
        params=[("by", "ward,sex"), ("where", "age_band:10-15"), ("margins", "true")],
        headers=headers,
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    policy = default_policy()
    store = Store(api["url"])
    expected = tabulate(
        store, "service", by=("ward", "sex"), where={"age_band": "10-15"}, policy=policy,
        margins=True, ptable=cellkey.ptable_for(policy.max_noise, policy.variance, SECRET),
    )  # fmt: skip
    store.dispose()
    assert doc == json.loads(json.dumps(table_document(expected)))
    # and byte for byte what an administrator gets on the server with the same secret
    monkeypatch.setenv("PORTAL_SDC_SECRET", SECRET.hex())
    res = CliRunner().invoke(
        cli,
        ["table", "service", "--by", "ward,sex", "--where", "age_band=10-15", "--margins",
         "--store", api["url"], "--format", "json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == doc
    # what a client needs to cite and reproduce it
    assert doc["release_id"] == api["latest"] and doc["data_as_at"] == "2025-06-30"
    assert doc["policy"] == policy.ref and doc["ptable_id"]
    assert doc["is_rate"] and doc["rate_per"] == 100 and doc["unit"] == "children"
    types = {c["name"]: c["type"] for c in doc["columns"]}
    assert types["count_value"] == "integer" and types["rate_value"] == "number"
    assert r.headers["X-Release-Id"] == api["latest"]
    again = client.get(doc["permalink"], headers=headers).json()
    assert again == doc


def test_csv_and_release_pinning(api):
    client = api["client"]
    headers = _sign_in(client, "lee")
    old = client.get(f"/v1/tables/children?by=ward&release={api['first']}&format=csv",
                     headers=headers)  # fmt: skip
    assert old.status_code == 200
    assert old.headers["content-type"].startswith("text/csv")
    assert old.headers["X-Release-Id"] == api["first"]
    assert old.text.splitlines()[0] == "ward,count"
    assert len(old.text.splitlines()) == 6
    latest = client.get("/v1/tables/children?by=ward", headers=headers).json()
    assert latest["release_id"] == api["latest"]
    info = client.get("/v1/releases/latest", headers=headers).json()
    assert info["release_id"] == api["latest"] and info["previous_release_id"] == api["first"]
    ids = [r["release_id"] for r in client.get("/v1/releases", headers=headers).json()]
    assert ids == [api["latest"], api["first"]]
    measures = client.get("/v1/measures", headers=headers).json()
    assert measures["release_id"] == api["latest"]
    assert {m["measure"] for m in measures["measures"]} == {"children", "service"}


def test_bad_queries_say_what_is_wrong(api):
    client = api["client"]
    headers = _sign_in(client, "pat")
    r = client.get("/v1/tables/children?by=nhs_number,ward&where=sex:F&where=sex:M",
                   headers=headers)  # fmt: skip
    assert r.status_code == 422
    problems = r.json()["detail"]["problems"]
    assert any("nhs_number" in p for p in problems) and any(
        "custom grouping" in p for p in problems
    )
    assert client.get("/v1/tables/children?where=sex", headers=headers).status_code == 422
    r = client.get("/v1/tables/no_such_measure", headers=headers)
    assert r.status_code == 404 and r.json()["detail"]["error"] == "unknown_measure"
    r = client.get("/v1/tables/children?release=no-such-release", headers=headers)
    assert r.status_code == 404 and r.json()["detail"]["error"] == "unknown_release"


def test_table_queries_are_audited_once_per_session(api):
    client = api["client"]
    headers = _sign_in(client, "rae")
    for _ in range(3):
        client.get("/v1/tables/children?by=ward", headers=headers)
    client.get("/v1/tables/children?by=sex", headers=headers)
    api["app"].state.service.audits.flush()  # written by the service's audit thread
    log = api["store"].read_audit(action="table_query").filter(pl.col("actor") == "rae")
    assert log.height == 2
    detail = json.loads(log["detail"][-1])
    assert (
        detail["by"] == ["ward"] and detail["via"] == "portal" and detail["roles"] == "researcher"
    )
    assert log["release_id"][0] == api["latest"]


# --- admin figures -----------------------------------------------------------------------------


def test_admin_figures_mask_small_counts(api):
    work: Path = api["work"]
    (work / "zone_a").mkdir(parents=True)
    pl.DataFrame(
        {"source": ["police", "police", "dwp"], "reason": ["bad_dob", "no_name", "bad_ni"],
         "rows": [3, 12, 0]}
    ).write_csv(work / "zone_a" / "quarantine_report.csv")  # fmt: skip
    (work / "run.json").write_text(
        json.dumps(
            {
                "run_id": "r1",
                "release_id": api["latest"],
                "timings_s": {"ingest": 1.5, "link": 2.0},
                "counts": {"records": 500, "families": 7},
                "ingest": [{"source": "police", "rows_in": 40, "accepted": 25, "quarantined": 15},
                           {"source": "dwp", "rows_in": 9, "accepted": 9, "quarantined": 0}],
                "quarantine": [{"source": "police", "reason": "bad_dob", "rows": 3}],
                "linkage_quality": {"person": {"precision": 0.99, "recall": 0.95, "f1": 0.97,
                                               "split_persons": 0.01, "merged_clusters": 0.02}},
            }
        )
    )  # fmt: skip
    client = api["client"]
    headers = _sign_in(client, "ada")
    rows = client.get("/v1/admin/quarantine", headers=headers).json()
    shown = {(r["source"], r["reason"]): r["rows"] for r in rows}
    assert shown[("police", "bad_dob")] == {"value": None, "shown": "<10"}
    assert shown[("police", "no_name")] == {"value": 12, "shown": "12"}
    assert shown[("dwp", "bad_ni")] == {"value": 0, "shown": "0"}
    run = client.get("/v1/admin/run", headers=headers).json()
    assert run["counts"]["families"]["shown"] == "<10" and run["counts"]["records"]["value"] == 500
    dwp = next(r for r in run["ingest"] if r["source"] == "dwp")
    assert dwp["rows_in"]["shown"] == "<10" and dwp["quarantined"]["shown"] == "0"
    assert "quarantine" not in run, "the raw per-reason counts are not passed through"
    linkage = client.get("/v1/admin/linkage", headers=headers).json()
    assert linkage["levels"]["person"]["f1"] == 0.97


def test_admin_audit_and_releases(api):
    client = api["client"]
    headers = _sign_in(client, "ada")
    releases = client.get("/v1/admin/releases", headers=headers).json()
    assert [r["release_id"] for r in releases] == [api["latest"], api["first"]]
    assert releases[0]["measure_count"] == 2 and releases[0]["cube_cell_count"] > 0
    audit = client.get("/v1/admin/audit?action=sign_in", headers=headers).json()
    assert audit and audit[0]["actor"] == "ada"


# --- sessions ----------------------------------------------------------------------------------


def test_sign_in_failures_are_counted_by_the_address_the_service_can_trust(api):
    """The portal says which browser address a sign-in came from (it holds the service
    credential); an API client cannot choose its address, its connection's is used."""
    client, store = api["client"], api["store"]
    wrong = {"username": "pat", "password": "not the password"}
    r = client.post("/v1/sessions/local", json=wrong | {"client_address": "192.0.2.10"},
                    headers=PORTAL)  # fmt: skip
    assert r.status_code == 401
    r = client.post("/v1/sessions/local", json=wrong | {"client_address": "192.0.2.99"})
    assert r.status_code == 401
    failed = [json.loads(d)["address"] for d in store.read_audit(action="sign_in_failed")["detail"]]
    assert sorted(failed) == ["192.0.2.10", "testclient"]


def test_sessions_are_stored_hashed_and_end_when_idle(api, monkeypatch):
    client = api["client"]
    r = client.post("/v1/sessions/local", json={"username": "pat", "password": PASSWORD},
                    headers=PORTAL)  # fmt: skip
    token = r.json()["token"]
    headers = {**PORTAL, "Authorization": f"Bearer {token}"}
    with api["store"].engine.connect() as conn:
        rows = conn.execute(sa.select(auth_sessions)).mappings().all()
    dumped = json.dumps([{k: str(v) for k, v in row.items()} for row in rows])
    assert token not in dumped
    assert hashlib.sha256(token.encode()).hexdigest() in dumped
    row = next(r for r in rows if r["user_id"] == "pat")
    assert row["method"] == "local" and row["client"] == "portal" and row["revoked_at"] is None
    assert client.get("/v1/session", headers=headers).json()["user_id"] == "pat"
    # 31 minutes later (the default idle timeout is 30): the session has ended.
    later = datetime.now(UTC) + timedelta(minutes=31)
    monkeypatch.setattr(signin, "_now", lambda: later)
    assert client.get("/v1/session", headers=headers).status_code == 401
    assert client.get("/v1/tables/children", headers=headers).status_code == 401


def test_activity_keeps_a_session_alive_and_sign_out_ends_it(api, monkeypatch):
    client = api["client"]
    headers = _sign_in(client, "pat")
    start = datetime.now(UTC)
    for minutes in (20, 40, 60):  # used every 20 minutes: never idle for 30
        monkeypatch.setattr(signin, "_now", lambda m=minutes: start + timedelta(minutes=m))
        assert client.get("/v1/session", headers=headers).status_code == 200, minutes
    assert client.delete("/v1/session", headers=headers).status_code == 204
    assert client.get("/v1/session", headers=headers).status_code == 401
    log = api["store"].read_audit(action="sign_out")
    assert log["actor"].to_list() == ["pat"]


def test_the_api_is_documented(api):
    client = api["client"]
    spec = client.get("/openapi.json").json()
    paths = set(spec["paths"])
    assert {"/v1/tables/{measure}", "/v1/measures", "/v1/releases", "/v1/extracts",
            "/v1/admin/quarantine", "/v1/sessions/local"} <= paths  # fmt: skip
    params = {p["name"] for p in spec["paths"]["/v1/tables/{measure}"]["get"]["parameters"]}
    assert {"by", "where", "margins", "release", "format"} <= params
    page = client.get("/docs")
    assert page.status_code == 200 and "GET /v1/tables/{measure}" in page.text
    # No outside assets: nothing is fetched from a CDN or any other host.
    assert "http://" not in page.text and "https://" not in page.text and "<script" not in page.text


def test_the_fast_json_is_the_same_document(api):
    """The service writes the document's rows with polars; parsed, it is exactly
    `table_document` (what `portal table --format json` prints)."""
    from portal.documents import table_document_json

    policy = default_policy()
    ptable = cellkey.ptable_for(policy.max_noise, policy.variance, SECRET)
    store = Store(api["url"])
    for measure, by, margins in (("children", (), False), ("service", ("ward", "sex"), True),
                                 ("service", ("age_band",), False)):  # fmt: skip
        t = tabulate(store, measure, by=by, policy=policy, margins=margins, ptable=ptable)
        doc = json.loads(table_document_json(t))
        assert doc == json.loads(json.dumps(table_document(t)))
        assert list(doc) == list(table_document(t)), "the same keys in the same order"
    store.dispose()
