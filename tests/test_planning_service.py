"""The planning documents through the release service and the portal's pages: the
comparisons and Supporting Families claims pages draw what the service built from protected
tables, the API needs a session, and the return the service gives is the one `portal
sf-return` writes."""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path

import httpx
import polars as pl
import pytest
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from anonymise.pseudonymise import MasterKey
from pipelines.comparators import load_files
from pipelines.run import run_pipeline
from pipelines.store import Store
from portal.cli import app as cli
from portal.web import data, downloads, planning
from synthetic.comparators import shipped_file
from synthetic.generator import generate_county
from tests.service_fixtures import SERVICE_TOKEN, LiveService, cheap_hasher, service_config

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
SDC = "5d" * 32
AS_AT = date(2026, 11, 21)
ENV = ("PORTAL_DEMO", "PORTAL_STORE_URL", "PORTAL_WORK_DIR", "PORTAL_CONFIG",
       "PORTAL_ACCOUNTS_FILE", "PORTAL_SDC_SECRET", "PORTAL_SDC_SECRET_FILE",
       "PORTAL_SERVICE_URL", "PORTAL_SERVICE_TOKEN", "PORTAL_SERVICE_TOKEN_FILE")  # fmt: skip


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> dict:
    d = tmp_path_factory.mktemp("planning_service")
    generate_county(3000, 31, d / "raw")
    url = f"sqlite:///{d / 'store.sqlite'}"
    store = Store(url)
    run_pipeline(
        d / "raw", d / "work", MasterKey(b"s" * 32, "environment"), as_at=AS_AT, store=store,
        sdc_secret=bytes.fromhex(SDC), accept_unmatched_objections="all",
    )  # fmt: skip
    load_files(store, [shipped_file()], actor="test")
    info = store.latest_release()
    store.dispose()
    assert info is not None
    return {"url": url, "work": d / "work", "release_id": info.release_id}


@pytest.fixture(scope="module")
def service(published):
    cheap_hasher()
    config = service_config(published["url"], demo=True, work_dir=published["work"])
    with LiveService(config, sdc_secret=bytes.fromhex(SDC)) as live:
        yield live


@pytest.fixture
def portal_env(published, service, monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PORTAL_DEMO", "1")
    monkeypatch.setenv("PORTAL_SERVICE_URL", service.url)
    monkeypatch.setenv("PORTAL_SERVICE_TOKEN", SERVICE_TOKEN)
    data.forget_auth_config()
    return published


def _token(service, role: str) -> str:
    r = httpx.post(
        f"{service.url}/v1/sessions/demo", json={"role": role},
        headers={"X-Service-Token": SERVICE_TOKEN},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def _get(service, path: str, token: str | None, **params) -> httpx.Response:
    # A session the portal opened is honoured only with the portal's credential beside it.
    headers = {"Authorization": f"Bearer {token}", "X-Service-Token": SERVICE_TOKEN}
    return httpx.get(f"{service.url}{path}", params=params, headers=headers, timeout=120)


# --- the API --------------------------------------------------------------------------------

ROUTES = (
    "/v1/comparators",
    "/v1/comparisons",
    "/v1/supporting-families/claims",
    "/v1/supporting-families/return?quarter=2025/26%20Q2",
)


@pytest.mark.parametrize("path", ROUTES)
def test_the_planning_routes_need_a_session(service, path: str) -> None:
    r = httpx.get(f"{service.url}{path}")
    assert r.status_code == 401 and r.json()["detail"]["error"] == "signed_out"


def test_comparisons_and_claims_documents(service, published) -> None:
    token = _token(service, "planner")
    r = _get(service, "/v1/comparisons", token)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["release_id"] == published["release_id"]
    assert doc["datasets"][0]["dataset"] == "fictional_children_in_need_comparators"
    assert any(c["latest"] and c["latest"]["band"] for c in doc["compared"])
    claims = _get(service, "/v1/supporting-families/claims", token).json()
    assert claims["current_year"]["target"] == 20  # 2026/27 in the demo settings
    # Each user's first request for a document is audited once, with the release.
    deadline = time.monotonic() + 5
    while True:
        store = Store(published["url"])
        log = store.read_audit(action="document_query")
        store.dispose()
        if log.height >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    docs = [
        json.loads(d)["document"] if isinstance(d, str) else d["document"] for d in log["detail"]
    ]
    assert sorted(docs) == ["comparisons", "sf_claims"]


def test_the_services_return_is_the_one_the_cli_writes(service, published) -> None:
    token = _token(service, "leadership")
    r = _get(service, "/v1/supporting-families/return", token, quarter="2025/26 Q2", format="csv")
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"].endswith('sf-return-2025-26-Q2.csv"')
    res = CliRunner().invoke(
        cli, ["sf-return", "--quarter", "2025/26 Q2", "--store", published["url"]],
        env={"PORTAL_SDC_SECRET": SDC},
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert r.text == res.output
    bad = _get(service, "/v1/supporting-families/return", token, quarter="2031/32 Q1")
    assert bad.status_code == 422 and "had not ended" in bad.text


def test_the_pages_download_is_the_return(service, published) -> None:
    token = _token(service, "leadership")
    doc = _get(service, "/v1/supporting-families/return", token, quarter="2025/26 Q3").json()
    csv_text = _get(
        service, "/v1/supporting-families/return", token, quarter="2025/26 Q3", format="csv"
    ).text
    got = pl.read_csv(downloads.csv_bytes(planning.return_frame(doc)), infer_schema=False)
    expected = pl.read_csv(csv_text.encode(), infer_schema=False)
    assert got.equals(expected)


# --- the pages ------------------------------------------------------------------------------


def _sign_in(role: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception, at.exception
    at.button(key=f"demo_{role}").click().run()
    assert not at.exception, at.exception
    return at


def _frame(at: AppTest, column: str):
    """The table on the page with this column (AppTest finds dataframes by position)."""
    found = [d.value for d in at.dataframe if column in d.value.columns]
    assert len(found) == 1, [list(d.value.columns) for d in at.dataframe]
    return found[0]


def _no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_comparisons_page(portal_env) -> None:
    at = _sign_in("planner")
    at.switch_page("pages/views/comparisons.py").run()
    _no_errors(at)
    assert at.title[0].value == "Comparisons"
    # The fictional file's footnotes are shown: nothing pretends to be national data.
    assert any("FICTIONAL DATA FOR THE DEMO" in w.value for w in at.warning)
    summary = _frame(at, "Quartile band")
    assert "Quartile band" in summary.columns and "Wealdmoor" in summary.columns
    assert len(summary) == 9
    charts = [json.loads(c.proto.json) for c in at.get("bidi_component")]
    assert len(charts) == 1
    spec = json.loads(charts[0]["figure"])
    assert [t["name"] for t in spec["data"]] == [
        "Wealdmoor", "Region", "Statistical neighbours (mean)", "England"
    ]  # fmt: skip
    assert "Line chart of" in charts[0]["alt"]
    at.selectbox(key="cmp_measure").select("assessments_within_45_days").run()
    _no_errors(at)
    assert "45 working days" in at.header[-1].value or any(
        "45 working days" in h.value for h in at.header
    )
    none = _frame(at, "Why it is not compared")
    assert "Why it is not compared" in none.columns and len(none) > 10


def test_sf_claims_page(portal_env) -> None:
    at = _sign_in("leadership")
    at.switch_page("pages/views/sf_claims.py").run()
    _no_errors(at)
    assert at.title[0].value == "Supporting Families claims"
    labels = [m.label for m in at.metric]
    assert labels[1] == "Target for 2026/27" and at.metric[1].value == "20"
    years = _frame(at, "Progress against target (%)")
    assert {"Successful family outcomes", "Target", "Progress against target (%)"} <= set(
        years.columns
    )
    at.segmented_control(key="sf_by").set_value("quarters").run()
    _no_errors(at)
    quarters = _frame(at, "Quarter")
    assert "Target" not in quarters.columns
    assert quarters["Quarter"].str.match(r"^\d{4}/\d{2} Q[1-4]( \((to date|partial: .+)\))?$").all()
    rules = _frame(at, "Claim rule")
    assert len(rules) == 6 and rules.iloc[-1]["Claim rule"].startswith("Every rule")
    ret = _frame(at, "description")
    assert ret.iloc[0]["description"] == "Local authority"
    assert "C4" in set(ret["line"]) and len(at.get("download_button")) >= 4


def test_a_researcher_cannot_open_either_page(portal_env) -> None:
    at = _sign_in("researcher")
    for path in ("pages/views/comparisons.py", "pages/views/sf_claims.py"):
        with pytest.raises(ValueError):
            at.switch_page(path)
