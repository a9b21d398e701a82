"""End to end in a real browser: `streamlit run app.py` on a free port against a small
release this test builds, driven by headless Chromium (Playwright).

Signs in with the demo accounts, opens every page, checks there is no exception and
the charts render, downloads a CSV, runs axe-core on every page (no serious or critical
violations), and saves screenshots and the axe report under test-output/browser/.

Needs /usr/bin/chromium (Debian's; `playwright install` cannot download a browser
here) and, for the accessibility check, axe-core from npm (.ci/run installs it into
.ci/axe/, or set PORTAL_AXE_JS to an axe.min.js).
"""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path

import pytest

from pipelines.periods import FORMATS

FINANCIAL_QUARTER = FORMATS["quarter"]

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
AXE_JS = Path(os.environ.get("PORTAL_AXE_JS") or ROOT / ".ci/axe/node_modules/axe-core/axe.min.js")
OUT = ROOT / "test-output" / "browser"
SDC = "3c" * 32
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]

pytestmark = pytest.mark.browser

if not CHROMIUM.exists():
    pytest.skip(
        "browser test skipped: /usr/bin/chromium is not installed (apt-get install chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="browser test skipped: the playwright package is not installed"
)

# Every page, the role that opens it here, and how many charts it draws at most.
VISITS = [
    ("admin", "Home", "Children's services research and statistics portal"),
    ("admin", "Service demand", "Service demand"),
    ("admin", "Children in need", "Children in need"),
    ("admin", "Programme outcomes", "Programme outcomes"),
    ("admin", "Table builder", "Table builder"),
    ("admin", "Data quality and privacy", "Data quality and privacy"),
    ("admin", "Methodology", "Methodology"),
    ("researcher", "Research extracts", "Research extracts"),
]
MUST_DRAW = {"Service demand", "Children in need", "Data quality and privacy"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    """A release of a ~3,000-person county and the portal serving it."""
    from anonymise.pseudonymise import MasterKey
    from pipelines.run import run_pipeline
    from pipelines.store import Store
    from synthetic.generator import generate_county

    d = tmp_path_factory.mktemp("browser")
    generate_county(3000, 41, d / "raw")
    url = f"sqlite:///{d / 'store.sqlite'}"
    result = run_pipeline(
        d / "raw", d / "work", MasterKey(b"b" * 32, "environment"), as_at=date(2026, 11, 21),
        store=Store(url), sdc_secret=bytes.fromhex(SDC), accept_unmatched_objections="all",
    )  # fmt: skip
    port = _free_port()
    env = {
        **os.environ,
        "PORTAL_DEMO": "1",
        "PORTAL_STORE_URL": url,
        "PORTAL_WORK_DIR": str(d / "work"),
        "PORTAL_SDC_SECRET": SDC,
    }
    for name in ("PORTAL_CONFIG", "PORTAL_ACCOUNTS_FILE", "PORTAL_SDC_SECRET_FILE"):
        env.pop(name, None)
    log = open(d / "streamlit.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true",
         "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                    if r.read().decode().strip() == "ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((d / "streamlit.log").read_text())
            time.sleep(0.3)
        yield {"base": base, "release_id": result.release_id}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def _idle(page) -> None:
    """Wait until the script run has finished and the page has settled."""
    page.wait_for_selector(
        '[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=30_000
    )
    page.wait_for_timeout(300)
    page.wait_for_selector(
        '[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=30_000
    )


def _sign_in(page, base: str, role: str) -> None:
    page.goto(base)
    page.get_by_role("button", name=f"Sign in as demo {role}").click()
    page.wait_for_selector("h1:has-text('research and statistics portal')", timeout=30_000)
    page.wait_for_selector("text=Headline figures", timeout=30_000)
    _idle(page)


def _open(page, link: str, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"] a', has_text=link).first.click()
    page.wait_for_selector(f'h1:has-text("{title}")', timeout=30_000)
    _idle(page)


def _axe(page) -> list[dict]:
    page.add_script_tag(path=str(AXE_JS))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return result["violations"]


@pytest.fixture(scope="module")
def walk(portal, browser):
    """Sign in, open every page, check it, screenshot it and run axe on it (once)."""
    OUT.mkdir(parents=True, exist_ok=True)
    axe_report: dict[str, list[dict]] = {}
    errors: list[str] = []
    ctx = browser.new_context(viewport={"width": 1400, "height": 2000}, accept_downloads=True)
    page = ctx.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    current = None
    started = time.monotonic()
    for role, link, title in VISITS:
        if role != current:
            if current is not None:
                page.get_by_role("button", name="Sign out").click()
                page.wait_for_selector("text=Sign in with a demo account", timeout=30_000)
            else:
                page.goto(portal["base"])
                page.wait_for_selector("text=Sign in with a demo account", timeout=30_000)
                _idle(page)
                page.screenshot(path=str(OUT / "sign-in.png"))
                if AXE_JS.exists():
                    axe_report["Sign in"] = _axe(page)
            _sign_in(page, portal["base"], role)
            current = role
            nav = " ".join(page.locator('[data-testid="stSidebarNav"] a').all_inner_texts())
            if role == "admin":
                assert "Research extracts" not in nav
            if role == "researcher":
                assert "Data quality and privacy" not in nav
        if link != "Home":
            _open(page, link, title)
        assert page.locator('[data-testid="stException"]').count() == 0, f"exception on {link}"
        body = page.locator('[data-testid="stMain"]').inner_text()
        assert f"Release {portal['release_id']}" in body, f"release id on {link}"
        assert "Data as at" in body
        charts = page.locator('[data-testid="stPlotlyChart"]')
        for i in range(charts.count()):
            charts.nth(i).scroll_into_view_if_needed()
            # plotly has drawn the chart when its traces are in the SVG
            traces = charts.nth(i).locator(".main-svg g.trace")
            traces.first.wait_for(state="attached", timeout=15_000)
            assert traces.count() >= 1, f"chart {i} on {link}"
        if link in MUST_DRAW:
            assert charts.count() >= 1, f"no chart rendered on {link}"
        page.screenshot(path=str(OUT / f"{role}-{link.lower().replace(' ', '-')}.png"))
        if AXE_JS.exists():
            axe_report[link] = _axe(page)
        if link == "Service demand":
            # the table view behind a chart, open
            page.get_by_text("Show the table and a description of the chart").first.click()
            page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=15_000)
            page.screenshot(path=str(OUT / f"{role}-service-demand-table-open.png"))
            if AXE_JS.exists():
                axe_report["Service demand, table open"] = _axe(page)
    ctx.close()
    if AXE_JS.exists():
        (OUT / "axe-violations.json").write_text(json.dumps(axe_report, indent=2))
    return {
        "errors": errors,
        "axe": axe_report,
        "seconds": time.monotonic() - started,
    }


def test_every_page_renders_in_a_real_browser(walk):
    assert not walk["errors"], f"JavaScript errors: {walk['errors']}"
    print(f"\nbrowser walk: {len(VISITS)} pages in {walk['seconds']:.1f} s")


def test_no_serious_or_critical_accessibility_violations(walk):
    if not AXE_JS.exists():
        pytest.skip(
            f"accessibility not checked: axe-core not found at {AXE_JS} (.ci/run installs it)"
        )
    assert len(walk["axe"]) == len(VISITS) + 2, "axe ran on every page"
    serious = [
        f"{link}: {v['id']} ({v['impact']}): {v['help']} [{len(v['nodes'])} nodes]"
        for link, violations in walk["axe"].items()
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]
    assert not serious, "axe serious/critical violations:\n" + "\n".join(serious)


def test_csv_download_is_the_table_shown(portal, browser):
    OUT.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(viewport={"width": 1400, "height": 2000}, accept_downloads=True)
    page = ctx.new_page()
    _sign_in(page, portal["base"], "planner")
    _open(page, "Service demand", "Service demand")
    with page.expect_download(timeout=30_000) as info:
        page.get_by_role("button", name="Download this table (CSV)").first.click()
    download = info.value
    target = OUT / download.suggested_filename
    download.save_as(target)
    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert rows[0] == ["Quarter", "Number of contacts"]
    assert len(rows) > 8
    for quarter, count in rows[1:]:
        assert FINANCIAL_QUARTER.match(quarter), quarter  # "2025/26 Q1": April to June
        assert count == "c" or count == "0" or int(count) >= 10
    assert not any(cell[:1] in "=+-@" for row in rows for cell in row)
    # the planner cannot see the administrators' page, not even in the navigation
    nav = " ".join(page.locator('[data-testid="stSidebarNav"] a').all_inner_texts())
    assert "Data quality" not in nav and "Research extracts" not in nav
    ctx.close()
