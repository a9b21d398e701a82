"""Every page under every role (AppTest), against two real releases built from a small
synthetic county and served by the real release service (uvicorn on a free port in this
process; the pages reach it over HTTP, as in production): what each role can reach, what it
cannot, and that every page shows protected numbers with their release id, charts with
tables and downloads.

Also: local accounts and lockout through the service, OpenID Connect claims -> roles (the
service's role map), demo accounts only in demo mode, cached data partitioned by role,
downloads that cannot carry formulas.
"""

from __future__ import annotations

import inspect
import io
import json
import re
import zipfile
from datetime import date, timedelta
from pathlib import Path
from xml.etree import ElementTree

import httpx
import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from anonymise.policy import default_policy
from anonymise.pseudonymise import MasterKey
from anonymise.safe_output import safe_frame
from pipelines.run import run_pipeline
from pipelines.store import Store
from portal.service import accounts
from portal.web import access, auth, data, downloads, headlines
from portal.web.config import ROLES
from synthetic.generator import generate_county
from tests.service_fixtures import (
    SERVICE_TOKEN,
    LiveService,
    accounts_file,
    cheap_hasher,
    service_config,
)

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
SDC = "5d" * 32
POLICY = default_policy()
SYMBOLS = {POLICY.symbols.confidential, POLICY.symbols.not_applicable, POLICY.symbols.unavailable}
CHARTS = {
    "home": 0,
    "service_demand": 2,
    "children_in_need": 2,
    "looked_after": 2,
    "programme_outcomes": 4,
    "table_builder": 0,
    "research_extracts": 0,
    "data_quality": 2,
    "governance": 0,
    "methodology": 0,
    "comparisons": 0,  # no comparator statistics loaded in this store
    "sf_claims": 1,
}
ENV = ("PORTAL_DEMO", "PORTAL_STORE_URL", "PORTAL_WORK_DIR", "PORTAL_CONFIG",
       "PORTAL_ACCOUNTS_FILE", "PORTAL_SDC_SECRET", "PORTAL_SDC_SECRET_FILE",
       "PORTAL_SERVICE_URL", "PORTAL_SERVICE_TOKEN", "PORTAL_SERVICE_TOKEN_FILE")  # fmt: skip


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """Two releases of a ~3,000-person county (so 'what changed' has something to say)."""
    d = tmp_path_factory.mktemp("portal")
    generate_county(3000, 23, d / "raw")
    url = f"sqlite:///{d / 'store.sqlite'}"
    key = MasterKey(b"k" * 32, "environment")
    for as_at in (date(2026, 6, 30), date(2026, 11, 21)):
        run_pipeline(
            d / "raw", d / "work", key, as_at=as_at, store=Store(url),
            sdc_secret=bytes.fromhex(SDC), accept_unmatched_objections="all",
        )  # fmt: skip
    latest = Store(url).latest_release()
    assert latest is not None
    return {"url": url, "work": d / "work", "release_id": latest.release_id}


@pytest.fixture(scope="module")
def service(published):
    """The release service over the published store, in demo mode unless a test says else."""
    cheap_hasher()
    config = service_config(published["url"], demo=True, work_dir=published["work"])
    with LiveService(config, sdc_secret=bytes.fromhex(SDC)) as live:
        yield live


def _use(service, published, **kwargs) -> None:
    service.use(service_config(published["url"], work_dir=published["work"], **kwargs))
    data.forget_auth_config()  # the portal asks again at once (it keeps an answer 2 s)


@pytest.fixture
def demo_env(published, service, monkeypatch):
    """The portal's environment as `portal up --demo` gives it: the service URL and
    credential, and PORTAL_DEMO. No store, no work folder, no secret."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    _use(service, published, demo=True)
    monkeypatch.setenv("PORTAL_DEMO", "1")
    monkeypatch.setenv("PORTAL_SERVICE_URL", service.url)
    monkeypatch.setenv("PORTAL_SERVICE_TOKEN", SERVICE_TOKEN)
    return published


def _api_token(service, role: str) -> str:
    """A demo session opened at the service directly, as the portal opens one."""
    r = httpx.post(
        f"{service.url}/v1/sessions/demo",
        json={"role": role},
        headers={"X-Service-Token": SERVICE_TOKEN},
    )
    assert r.status_code == 200, r.text
    return r.json()["token"]


def _audit(url: str, action: str, actor: str | None = None, wait: float = 3.0) -> pl.DataFrame:
    """Audit entries (the service writes table queries just after answering: poll)."""
    import time

    deadline = time.monotonic() + wait
    while True:
        store = Store(url)
        log = store.read_audit(action=action)
        store.dispose()
        if actor is not None:
            log = log.filter(pl.col("actor") == actor)
        if log.height or time.monotonic() > deadline:
            return log
        time.sleep(0.1)


@pytest.fixture(autouse=True)
def _only_the_release_layer_reads_cubes(monkeypatch):
    """While pages run, any read of a cube not made by anonymise/release.py fails."""
    real = Store.read_cube

    def guarded(self, *args, **kwargs):
        caller = inspect.stack()[1].frame.f_globals.get("__name__")
        assert caller == "anonymise.release", f"{caller} read a cube directly"
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Store, "read_cube", guarded)


def _app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=60)


def _sign_in(role: str) -> AppTest:
    at = _app().run()
    assert not at.exception, at.exception
    at.button(key=f"demo_{role}").click().run()
    assert not at.exception, at.exception
    return at


def _open_tables(at: AppTest) -> AppTest:
    """Open every chart's table view (drawn only once opened on pages with filters), as a
    reader clicking "Show the table" would."""
    closed = [e.key for e in at.expander if e.key and e.key.endswith("_more")]
    for key in closed:
        at.session_state[key] = True
    return at.run() if closed else at


def test_a_closed_table_view_is_not_drawn_and_opens_on_request(demo_env):
    at = _sign_in("planner")
    at.switch_page("pages/views/service_demand.py").run()
    _no_errors(at)
    assert len(at.expander) >= 2 and not at.dataframe, "closed table views draw nothing"
    _open_tables(at)
    _no_errors(at)
    assert len(at.dataframe) >= 2, "each open table view shows its table"


def _drawn(at: AppTest) -> list[dict]:
    """What each chart on the page was handed (portal/web/plot.py): spec, config, alt."""
    return [
        json.loads(c.proto.json)
        for c in at.get("bidi_component")
        if c.proto.component_name == "portal.chart"
    ]


def _charts(at: AppTest) -> list[dict]:
    return [json.loads(c["figure"]) for c in _drawn(at)]


def _values(fig: dict) -> list:
    """The plotted values of a plotly figure spec (plain lists or typed arrays)."""
    import base64

    import numpy as np

    out: list = []
    for trace in fig["data"]:
        vals = trace.get("x") if trace.get("orientation") == "h" else trace.get("y")
        if isinstance(vals, dict) and "bdata" in vals:
            arr = np.frombuffer(base64.b64decode(vals["bdata"]), dtype=np.dtype(vals["dtype"]))
            out.extend(None if np.isnan(v) else float(v) for v in arr)
        else:
            out.extend(vals or [])
    return out


def _no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


# --- reachability: every role x every page ------------------------------------------------

CASES = [(role, spec) for role in ROLES for spec in access.PAGES]


@pytest.mark.parametrize(("role", "spec"), CASES, ids=[f"{r}-{s.key}" for r, s in CASES])
def test_every_page_under_every_role(demo_env, role, spec):
    at = _sign_in(role)
    user = _demo_user(role)
    if not access.can_view(user, spec.key):
        # Not registered with st.navigation for this role: it cannot be reached at all.
        with pytest.raises(ValueError, match="not a registered page|not registered|page"):
            at.switch_page(spec.path)
        return
    at.switch_page(spec.path).run()
    _no_errors(at)
    titles = [t.value for t in at.title]
    assert titles and (spec.key == "home" or titles[0] == spec.title)
    captions = " ".join(c.value for c in at.caption)
    assert f"Release **{demo_env['release_id']}**" in captions, "data date and release id shown"
    assert "Data as at" in captions
    assert any("Demo mode" in w.value for w in at.warning), "demo mode says so"
    charts = _charts(at)
    suppressed = [i for i in at.info if "Every figure in this chart is suppressed" in i.value]
    assert len(charts) + len(suppressed) == CHARTS[spec.key]
    for fig in charts:
        assert fig["data"], "every chart has at least one trace"
    for fig in charts:
        assert any(v is not None for v in _values(fig)), "a chart is drawn only with numbers"
    downloads_ = at.get("download_button")
    assert len(downloads_) >= CHARTS[spec.key], "every chart has a CSV download"
    if charts:
        assert len(at.expander) >= CHARTS[spec.key], "every chart has a table view"
        assert all(c["alt"] for c in _drawn(at)), "every chart has alt text"


def test_navigation_lists_only_the_roles_pages(demo_env):
    for role in ROLES:
        at = _sign_in(role)
        user = _demo_user(role)
        visible = {p.path for p in access.visible_pages(user)}
        for spec in access.PAGES:
            if spec.path in visible:
                at.switch_page(spec.path)  # registered: no error
            else:
                with pytest.raises(ValueError):
                    at.switch_page(spec.path)


def test_signed_out_sees_only_the_sign_in_page(demo_env):
    at = _app().run()
    _no_errors(at)
    assert "research and statistics portal" in at.title[0].value
    assert {b.key for b in at.button} >= {f"demo_{r}" for r in ROLES}
    for spec in access.PAGES:
        with pytest.raises(ValueError):
            at.switch_page(spec.path)


def _demo_user(role: str) -> access.User:
    return access.User(f"demo-{role}", role, frozenset({role}), "demo")


@pytest.mark.parametrize("spec", access.PAGES, ids=lambda s: s.key)
def test_the_checkpoint_refuses_a_page_opened_directly(demo_env, service, spec):
    """Run a page script on its own: without a user, or with a role that may not see it,
    it stops at ui.page() before any number is drawn."""
    at = AppTest.from_file(str(ROOT / spec.path), default_timeout=60).run()
    assert [e.value for e in at.error] == ["You do not have access to this page."]
    assert not _drawn(at) and not at.dataframe and not at.metric
    for role in ROLES:
        if access.can_view(_demo_user(role), spec.key):
            continue
        at = AppTest.from_file(str(ROOT / spec.path), default_timeout=60)
        at.session_state[auth.SESSION_TOKEN] = _api_token(service, role)
        at.run()
        assert [e.value for e in at.error] == ["You do not have access to this page."]
        assert not _drawn(at) and not at.dataframe and not at.metric


def test_a_user_without_a_role_sees_nothing():
    nobody = access.User("x", "X", frozenset(), "local")
    assert access.visible_pages(nobody) == []
    assert not access.can_view(nobody, "home")
    assert not access.can_view(None, "home")
    assert not access.can_view(_demo_user("admin"), "no_such_page")


def test_sign_out(demo_env, service):
    at = _sign_in("planner")
    token = at.session_state[auth.SESSION_TOKEN]
    at.button(key="sign_out").click().run()
    _no_errors(at)
    assert auth.SESSION_TOKEN not in at.session_state
    with pytest.raises(ValueError):
        at.switch_page("pages/views/service_demand.py")
    # The service revoked the session: the token is worth nothing now.
    r = httpx.get(
        f"{service.url}/v1/session",
        headers={"X-Service-Token": SERVICE_TOKEN, "Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 401
    assert _audit(demo_env["url"], "sign_out", "demo-planner").height >= 1


# --- what the pages show ---------------------------------------------------------------------


def _protected(values: list[str]) -> None:
    for v in values:
        if v in SYMBOLS:
            continue
        n = int(v)
        assert n == 0 or n >= POLICY.threshold, f"unprotected count {n}"


def test_home_headlines_and_what_changed(demo_env):
    at = _sign_in("leadership")
    _no_errors(at)
    assert len(at.metric) == 6
    changes = at.dataframe[0].value
    assert "Measure" in changes.columns and len(changes) == 6
    assert not any("first published release" in i.value for i in at.info)


def test_service_demand_filters(demo_env):
    at = _sign_in("planner")
    at.switch_page("pages/views/service_demand.py").run()
    at.selectbox(key="sd_measure").select("eh_closures").run()
    at.selectbox(key="sd_split_eh_closures").select("closure_reason").run()
    at.get("segmented_control")[0].set_value("month").run() if at.get("segmented_control") else None
    _no_errors(at)
    trend = _charts(at)[0]
    assert len(trend["data"]) >= 3, "one line per closure reason"
    table = _open_tables(at).dataframe[0].value
    assert "Closure reason" in table.columns
    _protected([str(v) for v in table["Number of children"]])
    at.selectbox(key="sd_split_eh_closures").select("age_band").run()
    at.selectbox(key="sd_locality_eh_closures").set_value(
        at.selectbox(key="sd_locality_eh_closures").options[1]
    ).run()
    _no_errors(at)


def test_children_in_need_rates(demo_env):
    at = _sign_in("planner")
    at.switch_page("pages/views/children_in_need.py").run()
    at.selectbox(key="cin_measure").select("cp_plans_at_31_march").run()
    _no_errors(at)
    table = _open_tables(at).dataframe[0].value
    assert "Rate per 10,000" in table.columns
    assert "Financial year" in table.columns


def test_looked_after_children_rates(demo_env):
    at = _sign_in("planner")
    at.switch_page("pages/views/looked_after.py").run()
    _no_errors(at)
    at.selectbox(key="lac_measure").select("lac_at_31_march").run()
    _no_errors(at)
    table = _open_tables(at).dataframe[0].value
    assert "Rate per 10,000" in table.columns
    at.selectbox(key="lac_measure").select("care_leavers_eet").run()
    _no_errors(at)
    assert "Percentage" in _open_tables(at).dataframe[0].value.columns


def test_programme_outcomes_scorecard(demo_env):
    at = _sign_in("leadership")
    at.switch_page("pages/views/programme_outcomes.py").run()
    _no_errors(at)
    at.toggle(key="po_by_locality").set_value(True).run()
    _no_errors(at)
    headings = [s.value for s in at.header]
    assert any("significant and sustained progress" in h.lower() for h in headings)
    progress = [d.value for d in _open_tables(at).dataframe if "Percentage" in d.value.columns]
    assert progress, "the progress rate is shown as a percentage"


def test_table_builder_builds_protected_tables_and_audits(demo_env):
    at = _sign_in("researcher")
    at.switch_page("pages/views/table_builder.py").run()
    _no_errors(at)
    at.selectbox(key="tb_measure").select("cin_referrals").run()
    at.multiselect(key="tb_by_cin_referrals").set_value(["locality", "age_band"]).run()
    at.multiselect(key="tb_filters_cin_referrals").set_value(["financial_year"]).run()
    at.selectbox(key="tb_value_cin_referrals_financial_year").select("2024/25").run()
    at.checkbox(key="tb_margins").check().run()
    _no_errors(at)
    shown = at.dataframe[0].value
    assert list(shown.columns) == ["Locality", "Age band", "Number of referrals"]
    assert "Total" in set(shown["Locality"])
    _protected([str(v) for v in shown["Number of referrals"]])
    assert {b.label for b in at.get("download_button")} >= {
        "CSV",
        "Spreadsheet (XLSX, with title and notes)",
        "JSON",
    }
    # the policy's limit: three dimensions, so the filter list is now closed
    assert at.multiselect(key="tb_filters_cin_referrals").proto.max_selections <= 1
    # The service audits every distinct query of a session, the builder's included.
    mine = _audit(demo_env["url"], "table_query", "demo-researcher")
    assert mine.height >= 1
    assert any('"financial_year"' in d and '"by": ["locality", "age_band"]' in d
               for d in mine["detail"])  # fmt: skip


def test_table_builder_refuses_a_custom_grouping(demo_env):
    at = _sign_in("planner")
    at.switch_page("pages/views/table_builder.py").run()
    at.multiselect(key="tb_by_contacts").set_value(["locality"]).run()
    at.multiselect(key="tb_rows_contacts_locality").set_value(
        at.multiselect(key="tb_rows_contacts_locality").options[:2]
    ).run()
    _no_errors(at)
    assert len(at.dataframe[0].value) == 2, "row selection on a breakdown only picks rows"


def test_data_quality_page(demo_env):
    at = _sign_in("admin")
    at.switch_page("pages/views/data_quality.py").run()
    _no_errors(at)
    frames = {tuple(d.value.columns): d.value for d in at.dataframe}
    assert any("Rows quarantined" in cols for cols in frames), "quarantine counts"
    assert any("Precision" in cols for cols in frames), "linkage quality"
    releases = next(v for c, v in frames.items() if "Release" in c and "Status" in c)
    assert len(releases) == 2
    assert any("Who" in cols for cols in frames), "audit log"
    at.selectbox(key="dq_action").select("release_written").run()
    _no_errors(at)


def _extract_form(at: AppTest, *, project: str, variables: list[str], k: int) -> AppTest:
    at.selectbox(key="rx_project").select(project).run()
    at.multiselect(key="rx_variables").set_value(variables)
    at.number_input[0].set_value(k)
    at.button(key="FormSubmitter:extract_request-Build extract").click()
    return at.run()


def _register(url: str, title: str, researchers=("demo-researcher",), **kw) -> str:
    from anonymise.projects import ProjectSpec
    from pipelines.project_register import ProjectRegister

    store = Store(url)
    try:
        spec = ProjectSpec(
            title=title,
            purpose="Outcomes of Early Help for families in the county",
            lawful_basis="UK GDPR 6(1)(e)",
            variables=kw.pop("variables", ("age", "sex", "lsoa", "eh_episodes")),
            researchers=tuple(researchers),
            approver="caldicott",
            approved_on=date.today(),
            expires_on=date.today() + timedelta(days=30),
            **kw,
        )
        return ProjectRegister(store).add(spec, actor="admin").project_id
    finally:
        store.dispose()


def test_researcher_builds_an_extract_with_a_certificate(demo_env, monkeypatch, published):
    monkeypatch.setenv("PORTAL_PSEUDONYM_KEY", (b"k" * 32).hex())
    # Extracts are built only for an approved project naming the researcher (issue 10).
    mine = _register(published["url"], "Portal study")
    other = _register(published["url"], "Someone else's study", researchers=("another",))
    at = _sign_in("researcher")
    at.switch_page("pages/views/research_extracts.py").run()
    _no_errors(at)
    # Only this researcher's projects, and only each project's approved variables.
    offered = at.selectbox(key="rx_project").options
    assert any(mine in o for o in offered) and not any(other in o for o in offered)
    shown = at.multiselect(key="rx_variables").options
    assert sorted(o.rsplit("(", 1)[1].rstrip(")") for o in shown) == sorted(
        ["age", "sex", "lsoa", "eh_episodes"]
    ), shown
    # An empty form is a message on the page, not an audited refusal.
    at = _extract_form(at, project=mine, variables=[], k=10)
    _no_errors(at)
    assert any("at least one variable" in w.value for w in at.warning)
    assert _audit(published["url"], "extract_refused", "demo-researcher", wait=0.5).height == 0
    at = _extract_form(at, project=mine, variables=["age", "sex", "lsoa", "eh_episodes"], k=10)
    _no_errors(at)
    assert any("Extract built" in s.value and "k = " in s.value for s in at.success), [
        e.value for e in at.error
    ]
    # Readable figures: a whole k, not 11.0000.
    assert any(re.search(r"k = \d+[;,]", s.value) for s in at.success)
    assert any("SHA-256" in c.value for c in at.caption)
    audit = _audit(published["url"], "extract", "demo-researcher")
    assert audit.filter(pl.col("detail").cast(pl.Utf8).str.contains(mine)).height == 1
    # Every file comes from that one build: another run of the page (what a download
    # does) shows the same result and builds nothing new.
    at.run()
    _no_errors(at)
    assert any("Extract built" in s.value for s in at.success)
    assert len(at.get("download_button")) == 4
    assert _audit(published["url"], "extract", "demo-researcher").height == 1


def test_governance_page_lists_projects_requests_and_retention_without_identifiers(
    demo_env, published
):
    from anonymise.pseudonymise import MasterKey as Key
    from pipelines.requests import add_request, normalise_identifiers

    project = _register(published["url"], "Governance page study")
    store = Store(published["url"])
    try:
        nhs = "9434765919"
        ids = normalise_identifiers(nhs_number=nhs)
        request_id = add_request(store, Key(b"k" * 32, "environment"), "restriction", ids,
                                 received_on=date.today(), actor="dpo")  # fmt: skip
    finally:
        store.dispose()
    data.governance.clear()
    at = _sign_in("admin")
    at.switch_page("pages/views/governance.py").run()
    _no_errors(at)
    frames = {tuple(d.value.columns): d.value for d in at.dataframe}
    projects = next(v for c, v in frames.items() if "Lawful basis" in c)
    row = projects.set_index("Project").loc[project]
    assert row["State"] == "Open" and row["Named people"] == "demo-researcher"
    requests = next(v for c, v in frames.items() if "Identifiers given" in c)
    assert request_id in set(requests["Request"])
    # The request is shown by its kinds of identifier, never the identifier or its token.
    shown = " ".join(str(v) for f in frames.values() for v in f.to_numpy().ravel())
    shown += " ".join(m.value for m in at.markdown) + " ".join(str(m.value) for m in at.metric)
    assert nhs not in shown and "nhs_number" in shown


def test_impossible_extract_is_refused_on_the_page(demo_env, monkeypatch, published):
    monkeypatch.setenv("PORTAL_PSEUDONYM_KEY", (b"k" * 32).hex())
    project = _register(published["url"], "Too strict study")
    at = _sign_in("researcher")
    at.switch_page("pages/views/research_extracts.py").run()
    at = _extract_form(at, project=project, variables=["age", "sex", "lsoa"], k=1_000_000)
    assert not at.exception
    assert any("refused" in e.value for e in at.error)
    audit = _audit(published["url"], "extract_refused", "demo-researcher")
    assert audit.height >= 1


def test_methodology_has_every_section(demo_env):
    at = _sign_in("planner")
    at.switch_page("pages/views/methodology.py").run()
    _no_errors(at)
    labels = [t.label for t in at.tabs]
    assert labels == [
        "Measures",
        "Disclosure control",
        "Glossary",
        "Data guidance",
        "Accessibility",
    ]
    definitions = at.dataframe[0].value
    assert len(definitions) == len(Store(demo_env["url"]).read_meta(demo_env["release_id"]))
    text = " ".join(m.value for m in at.markdown)
    assert "(WCAG) 2.2" in text and "cell key" in text.lower()


def test_no_release_yet(demo_env, tmp_path, monkeypatch):
    empty = service_config(f"sqlite:///{tmp_path / 'empty.sqlite'}", demo=True)
    with LiveService(empty, sdc_secret=bytes.fromhex(SDC)) as other:
        monkeypatch.setenv("PORTAL_SERVICE_URL", other.url)
        data.latest_release.clear()
        at = _sign_in("planner")
        _no_errors(at)
        assert any("No release has been published yet" in i.value for i in at.info)
    data.latest_release.clear()


def test_an_unreachable_service_is_a_clear_message(demo_env, monkeypatch):
    from tests.service_fixtures import free_port

    monkeypatch.setenv("PORTAL_SERVICE_URL", f"http://127.0.0.1:{free_port()}")
    at = _app().run()
    assert not at.exception
    assert any("cannot reach its release service" in e.value for e in at.error)
    assert not at.button


def test_a_wrong_service_credential_is_refused(demo_env, monkeypatch):
    monkeypatch.setenv("PORTAL_SERVICE_TOKEN", "not-the-credential-" + "y" * 20)
    at = _app().run()
    assert not at.exception
    assert any("refused the portal's credential" in e.value for e in at.error)


# --- sign-in modes ---------------------------------------------------------------------------

PASSWORD = "correct horse battery"


def _local(service, published, tmp_path: Path, monkeypatch) -> Path:
    """The service in local-accounts mode (one leadership account); the portal not in demo."""
    path = accounts_file(
        tmp_path / "accounts.toml", {"jsmith": (accounts.hash_password(PASSWORD), ["leadership"])}
    )
    _use(service, published, env={"PORTAL_ACCOUNTS_FILE": str(path)})
    monkeypatch.delenv("PORTAL_DEMO")
    return path


def _try(at: AppTest, username: str, password: str) -> AppTest:
    at.text_input[0].input(username)
    at.text_input[1].input(password)
    at.button[0].click()
    return at.run()


def test_local_accounts_sign_in(demo_env, service, tmp_path, monkeypatch):
    _local(service, demo_env, tmp_path, monkeypatch)
    at = _app().run()
    _no_errors(at)
    assert not [b for b in at.button if (b.key or "").startswith("demo_")], "no demo accounts"
    _try(at, "jsmith", "wrong password")
    assert any("not right" in e.value for e in at.error)
    _try(at, "jsmith", PASSWORD)
    _no_errors(at)
    assert not any("Demo mode" in w.value for w in at.warning)
    at.switch_page("pages/views/programme_outcomes.py").run()
    _no_errors(at)
    with pytest.raises(ValueError):
        at.switch_page("pages/views/data_quality.py")
    outcomes = {
        a: _audit(demo_env["url"], a, "jsmith").height for a in ("sign_in", "sign_in_failed")
    }
    assert outcomes["sign_in"] >= 1 and outcomes["sign_in_failed"] >= 1


def test_lockout_holds_across_browser_sessions(demo_env, service, tmp_path, monkeypatch):
    """Five wrong passwords spread over five browser sessions lock the account: a sixth
    session with the right password is refused (the count lives in the service's store)."""
    _local(service, demo_env, tmp_path, monkeypatch)
    for _ in range(5):
        _try(_app().run(), "jsmith", "guess")
    at = _try(_app().run(), "jsmith", PASSWORD)
    assert any("Too many failed attempts" in e.value for e in at.error)
    with pytest.raises(ValueError):
        at.switch_page("pages/views/programme_outcomes.py")
    assert _audit(demo_env["url"], "account_locked", "jsmith").height >= 1
    assert _audit(demo_env["url"], "sign_in_refused", "jsmith").height >= 1


def test_demo_accounts_exist_only_in_demo_mode(demo_env, service, monkeypatch):
    token = _api_token(service, "admin")
    _use(service, demo_env)  # the service leaves demo mode (no sign-in configured)
    monkeypatch.delenv("PORTAL_DEMO")
    r = httpx.post(
        f"{service.url}/v1/sessions/demo", json={"role": "admin"},
        headers={"X-Service-Token": SERVICE_TOKEN},
    )  # fmt: skip
    assert r.status_code == 400
    # A demo session left in a browser is not a user once demo mode is off.
    at = _app()
    at.session_state[auth.SESSION_TOKEN] = token
    at.run()
    assert not at.exception
    assert any("Sign-in is not configured" in e.value for e in at.error)
    with pytest.raises(ValueError):
        at.switch_page("pages/views/data_quality.py")


def test_portal_and_service_must_agree_on_demo_mode(demo_env, service, monkeypatch):
    _use(service, demo_env)  # the service is not in demo mode, the portal says it is
    at = _app().run()
    assert any("DEMO MODE REFUSED" in e.value for e in at.error)
    assert not at.button


def test_portal_refuses_demo_under_a_production_sign_in(demo_env, tmp_path, monkeypatch):
    secrets = tmp_path / ".streamlit" / "secrets.toml"
    secrets.parent.mkdir()
    secrets.write_text('[auth]\nredirect_uri = "https://portal.example/oauth2callback"\n')
    monkeypatch.chdir(tmp_path)
    at = _app().run()
    shown = " ".join(c.value for c in at.code)
    assert "DEMO MODE REFUSED" in shown and "secrets.toml" in shown
    assert any("not configured correctly" in e.value for e in at.error)
    assert not at.button


def test_no_sign_in_configured_means_nobody_gets_in(demo_env, service, monkeypatch):
    _use(service, demo_env)
    monkeypatch.delenv("PORTAL_DEMO")
    at = _app().run()
    assert not at.exception
    assert any("Sign-in is not configured" in e.value for e in at.error)
    assert not at.button


def test_oidc_roles_come_from_the_services_role_map(demo_env, service, monkeypatch):
    _use(
        service,
        demo_env,
        raw={
            "portal": {"contact": "stats@council.example"},
            "auth": {
                "mode": "oidc",
                "roles_claim": "groups",
                "role_map": {"sg-planners": "planner", "sg-admins": ["admin"]},
            },
        },
    )
    monkeypatch.delenv("PORTAL_DEMO")
    at = _app()
    at.user = {"is_logged_in": False}
    at.run()
    assert not at.exception
    assert at.button(key="oidc_sign_in")
    if not auth.oidc_available():
        assert any("Authlib" in e.value for e in at.error)
        assert at.button(key="oidc_sign_in").disabled
    at = _app()
    at.user = {"is_logged_in": True, "email": "p@council.example", "groups": ["sg-planners"]}
    at.run()
    _no_errors(at)
    at.switch_page("pages/views/service_demand.py").run()
    _no_errors(at)
    with pytest.raises(ValueError):
        at.switch_page("pages/views/data_quality.py")
    assert _audit(demo_env["url"], "sign_in", "p@council.example").height >= 1
    at = _app()
    at.user = {"is_logged_in": True, "email": "x@council.example", "groups": ["all-staff"]}
    at.run()
    assert [t.value for t in at.title] == ["No access"]
    assert "stats@council.example" in at.error[0].value
    with pytest.raises(ValueError):
        at.switch_page("pages/views/home.py")


# --- data access ----------------------------------------------------------------------------


def test_cached_tables_never_cross_roles(demo_env, service, monkeypatch):
    calls = []
    real = data._call

    def counting(method, path, **kwargs):
        if path.startswith("/v1/tables/"):
            calls.append(path)
        return real(method, path, **kwargs)

    monkeypatch.setattr(data, "_call", counting)
    data.protected_table.clear()
    rid = demo_env["release_id"]
    planner, admin = _api_token(service, "planner"), _api_token(service, "admin")
    for role, token in (("planner", planner), ("planner", planner), ("admin", admin),
                        ("leadership+planner", planner)):  # fmt: skip
        data.protected_table(role, token, rid, "contacts", ("locality",))
    assert len(calls) == 3, "same role: cached; another role: its own entry"
    data.protected_table.clear()


def test_admin_records_need_the_admin_role(demo_env, service):
    planner = _api_token(service, "planner")
    for fn in (data.run_summary, data.quarantine_counts, data.release_list, data.audit_entries,
               data.linkage_figures, data.governance):  # fmt: skip
        with pytest.raises(PermissionError):
            fn("planner-only-" + fn.__name__, planner)
    summary = data.run_summary("admin", _api_token(service, "admin"))
    assert summary is not None and "counts" in summary


def test_web_formula_guard_matches_the_release_layer():
    """downloads.safe_frame is a copy (the web process may not import anonymise): the two must
    give the same answer on every kind of cell."""
    cells = ["=1+1", "+44", "-3", "@SUM(A1)", "\tx", "\rx", "plain", "", None, "a=b", "'=x"]
    frame = pl.DataFrame({"a": cells, "n": list(range(len(cells)))})
    assert downloads.safe_frame(frame).equals(safe_frame(frame))


# --- downloads and headline helpers ------------------------------------------------------------


def test_downloads_cannot_carry_formulas():
    shown = pl.DataFrame(
        {"Locality": ['=HYPERLINK("x")', "+1", "Castlemere"], "Count": ["12", "c", "30"]}
    )
    csv = downloads.csv_bytes(shown).decode()
    assert "'=HYPERLINK" in csv and "'+1" in csv and "\n=" not in csv
    doc = json.loads(
        downloads.json_bytes(
            shown,
            title="T",
            measure="m",
            release_id="r",
            data_as_at=date(2026, 1, 1),
            policy_id="p@1",
            footnotes=["n"],
        )  # fmt: skip
    )
    assert doc["rows"][0]["Locality"].startswith("'=")
    xlsx = downloads.xlsx_bytes(shown, title="T", subtitle="S", source="R", footnotes=["a", "b"],
                                numeric_columns=["Count"])  # fmt: skip
    with zipfile.ZipFile(io.BytesIO(xlsx)) as z:
        assert z.testzip() is None
        sheet = ElementTree.fromstring(z.read("xl/worksheets/sheet1.xml"))
        notes = ElementTree.fromstring(z.read("xl/worksheets/sheet2.xml"))
        shared = ElementTree.fromstring(z.read("xl/sharedStrings.xml"))
        book = ElementTree.fromstring(z.read("xl/workbook.xml"))
    ns = {"x": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    strings = [si.findtext("x:t", namespaces=ns) for si in shared.findall("x:si", ns)]
    assert [s.get("name") for s in book.findall(".//x:sheet", ns)] == ["Table", "Notes"]
    assert not sheet.findall(".//x:f", ns), "no formulas in the workbook"

    def cells(root):
        out = []
        for c in root.findall(".//x:c", ns):
            v = c.findtext("x:v", namespaces=ns)
            out.append((c.get("t"), strings[int(v)] if c.get("t") == "s" else v))
        return out

    table = cells(sheet)
    numbers = [v for t, v in table if t is None]
    assert numbers == ["12", "30"], "published numbers are numbers; symbols stay text"
    texts = [v for t, v in table if t == "s"]
    assert texts[:3] == ["T", "S", "R"] and "c" in texts and '\'=HYPERLINK("x")' in texts
    assert [v for t, v in cells(notes) if t == "s"][-2:] == ["a", "b"]


def test_headline_helpers():
    assert headlines.period_end("financial_year", "2025/26") == date(2026, 3, 31)
    assert headlines.period_end("quarter", "2025/26 Q4") == date(2026, 3, 31)
    assert headlines.period_end("quarter", "2025/26 Q1") == date(2025, 6, 30)
    assert headlines.period_label("quarter", "2025/26 Q3") == "Oct to Dec 2025"
    assert headlines.period_end("quarter", "2026-Q1") is None  # calendar labels are not ours
    assert headlines.period_end("month", "2024-02") == date(2024, 2, 29)
    assert headlines.complete_periods(
        "quarter", ["2025/26 Q4", "2026/27 Q1"], date(2026, 5, 1)
    ) == ["2025/26 Q4"]
    assert headlines.span("quarter", ["2021/22 Q1", "2025/26 Q4"]) == "Apr 2021 to Mar 2026"
    pts = [("2024/25", 100.0), ("2025/26", 110.0)]
    assert headlines.trend_headline("Contacts", pts, dim="financial_year", is_rate=False) == (
        "Contacts rose by 10% to 110 in 2025/26 compared with 2024/25"
    )
    rates = [("2024/25", 41.9), ("2025/26", 38.2)]
    assert "fell from 41.9% to 38.2%" in headlines.trend_headline(
        "Progress", rates, dim="financial_year", is_rate=True, unit="%"
    )
    suppressed = [("2024/25", 12.0), ("2025/26", None)]
    assert (
        headlines.trend_headline("X", suppressed, dim="financial_year", is_rate=False)
        == "X: the figure for 2025/26 is suppressed (too few to publish)"
    )


# --- views in the address, permalinks, the report (issue 14), charts that survive (issue 13) ---


def _releases(url: str) -> list[str]:
    store = Store(url)
    try:
        return [r.release_id for r in store.list_releases() if r.status == "published"]
    finally:
        store.dispose()


def _open_at(role: str, path: str, **query: str | list[str]) -> AppTest:
    """Sign in, then open `path` at an address with this query (a bookmark or a link)."""
    at = _sign_in(role)
    for name, value in query.items():
        at.query_params[name] = value
    at.switch_page(path).run()
    _no_errors(at)
    return at


def test_a_bookmarked_view_reopens_the_same_view(demo_env):
    at = _open_at(
        "planner",
        "pages/views/service_demand.py",
        measure="eh_referrals",
        period="financial_year",
        by="locality",
    )
    assert at.selectbox(key="sd_measure").value == "eh_referrals"
    assert at.selectbox(key="sd_split_eh_referrals").value == "locality"
    assert at.segmented_control(key="sd_period_eh_referrals").value == "financial_year"
    trend = _charts(at)[0]
    names = {t.get("name") for t in trend["data"]}
    assert names & set(at.selectbox(key="sd_locality_eh_referrals").options), "by locality"
    # The address keeps the view; the link offered pins the release (a permalink).
    assert at.query_params["measure"] in ("eh_referrals", ["eh_referrals"])
    links = [c.value for c in at.code if "release=" in c.value]
    assert links and all(f"release={demo_env['release_id']}" in x for x in links)
    assert all("measure=eh_referrals" in x and "by=locality" in x for x in links)


def test_an_address_cannot_put_a_control_into_a_state_it_does_not_offer(demo_env):
    at = _open_at("planner", "pages/views/service_demand.py", measure="no_such", by="nhs_number")
    assert at.selectbox(key="sd_measure").index == 0, "an unknown measure: the first offered"
    assert at.selectbox(key="sd_split_contacts").value == "", "not a breakdown it offers: none"


def test_a_permalink_to_an_older_release_shows_it_labelled_superseded(demo_env):
    older, newer = _releases(demo_env["url"])[-1], demo_env["release_id"]
    assert older != newer
    at = _open_at(
        "planner", "pages/views/children_in_need.py", release=older, measure="cin_referrals"
    )
    captions = " ".join(c.value for c in at.caption)
    assert f"Release **{older}**" in captions and newer not in captions
    assert any("Superseded release" in w.value and newer in w.value for w in at.warning)
    old_table = _open_tables(at).dataframe[0].value
    # The same view on the latest release (the button drops the pinned release).
    latest = _open_at("planner", "pages/views/children_in_need.py", measure="cin_referrals")
    assert not any("Superseded" in w.value for w in latest.warning)
    assert len(_open_tables(latest).dataframe[0].value) >= len(old_table), (
        "newer data reach further"
    )
    # A release that does not exist: the latest, with a notice.
    gone = _open_at("planner", "pages/views/children_in_need.py", release="20200101T000000Z-000000")
    assert any("is not available" in w.value for w in gone.warning)


def test_table_builder_cross_tabulates_and_states_its_period(demo_env):
    at = _open_at(
        "researcher",
        "pages/views/table_builder.py",
        measure="contacts",
        by="locality",
        cols="financial_year",
    )
    shown = at.dataframe[0].value
    assert shown.columns[0] == "Locality"
    years = [c for c in shown.columns[1:]]
    assert years and all(re.fullmatch(r"\d{4}/\d{2}", y) for y in years), years
    for col in years:
        _protected([str(v) for v in shown[col]])
    text = " ".join(m.value for m in at.markdown)
    assert "Periods covered:" in text and "by financial year" in text
    # No time breakdown: the table says it adds every period together.
    at.selectbox(key="tb_cols_contacts").set_value("").run()
    text = " ".join(m.value for m in at.markdown)
    assert "added together (no time breakdown)" in text


def test_report_button_on_home_and_programme(demo_env):
    home = _sign_in("leadership")
    assert any(b.key == "report_home" for b in home.get("download_button"))
    po = _open_at("leadership", "pages/views/programme_outcomes.py")
    assert any(b.key == "report_programme" for b in po.get("download_button"))


def test_tiles_never_show_a_bare_c_and_percentages_stay_in_range(demo_env):
    for role, path in (
        ("leadership", "app.py"),
        ("planner", "pages/views/children_in_need.py"),
        ("leadership", "pages/views/programme_outcomes.py"),
    ):
        at = _sign_in(role) if path == "app.py" else _open_at(role, path)
        for metric in at.metric:
            if metric.value == "c":
                assert "suppressed" in metric.proto.delta, f"bare c on {path}"
            for pct in re.findall(r"(\d+(?:\.\d+)?)%", metric.value):
                assert float(pct) <= 100, f"{metric.value} on {path}"
        for fig in _charts(at):
            axis = fig["layout"].get("yaxis", {})
            if axis.get("ticksuffix") == "%":
                assert all(v is None or v <= 100 for v in _values(fig))
