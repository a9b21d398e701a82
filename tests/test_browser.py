"""End to end in a real browser: the portal as `make run` starts it (`portal up --demo`: the
release service and the Streamlit portal, two processes) against a small release this test
builds, driven by headless Chromium (Playwright).

Signs in with the demo accounts, opens every page, checks there is no exception and the
charts render, downloads a CSV, runs axe-core on every page (no serious or critical
violations), and saves screenshots and the axe report under test-output/browser/. Then the
session: a reload and a bookmarked page keep the user signed in and on that page; a page
opened while signed out shows sign-in and then that page; a page the user may not see says
"no access" and an unknown one "not found", neither signing anyone out; the cookie is
HttpOnly and SameSite=Strict; signing out revokes the session at the service.

Needs /usr/bin/chromium (Debian's; `playwright install` cannot download a browser here) and,
for the accessibility check, axe-core from npm (.ci/run installs it into .ci/axe/, or set
PORTAL_AXE_JS to an axe.min.js).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from registry.codes import ETHNICITY
from registry.periods import FORMATS
from tests.portal_processes import (
    BROWSER_ARGS,
    CHROMIUM,
    Portal,
    build_release,
    charts_drawn,
    idle,
    open_link,
    require_browser,
    sign_in,
)

FINANCIAL_QUARTER = FORMATS["quarter"]

ROOT = Path(__file__).resolve().parents[1]
AXE_JS = Path(os.environ.get("PORTAL_AXE_JS") or ROOT / ".ci/axe/node_modules/axe-core/axe.min.js")
OUT = ROOT / "test-output" / "browser"

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

sync_api = require_browser()

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


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    """A release of a ~3,000-person county and `portal up --demo` serving it."""
    d = tmp_path_factory.mktemp("browser")
    release = build_release(d, seed=41)
    running = Portal(release, log=d / "portal-up.log").start()
    try:
        yield {"base": running.base, "release_id": release.release_id, "portal": running}
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        yield b
        b.close()


def _context(browser):
    return browser.new_context(viewport={"width": 1400, "height": 2000}, accept_downloads=True)


def _sign_in(page, base: str, role: str) -> None:
    sign_in(page, base, role)
    page.wait_for_selector("text=Headline figures", timeout=30_000)
    idle(page)


def _open(page, link: str, title: str) -> None:
    open_link(page, link, title)


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
    ctx = _context(browser)
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
                idle(page)
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
        drawn = charts_drawn(page, at_least=1 if link in MUST_DRAW else 0)
        charts = page.locator('[data-testid="portalChart"]')
        for i in range(drawn):
            assert charts.nth(i).locator(".main-svg g.trace").count() >= 1, f"chart {i} on {link}"
        if link in MUST_DRAW:
            assert drawn >= 1, f"no chart rendered on {link}"
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
    ctx = _context(browser)
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


def test_a_filter_change_updates_the_charts_in_place(portal, browser):
    """A filter change redraws the chart already on the page with the new figures
    (Plotly.react on the same element), instead of replacing it and drawing from scratch;
    plotly.js comes from this server."""
    from portal.web import plot

    ctx = _context(browser)
    page = ctx.new_page()
    scripts: list[str] = []
    page.on("request", lambda r: scripts.append(r.url) if "plotly" in r.url else None)
    _sign_in(page, portal["base"], "planner")
    _open(page, "Service demand", "Service demand")
    assert charts_drawn(page, at_least=2) == 2
    trend = page.locator('[data-testid="portalChart"]').first
    line = "c => c.querySelector('.main-svg g.trace path.js-line').getAttribute('d')"
    before = trend.evaluate(line)
    # a mark on the drawn chart element survives only if that element is kept
    trend.evaluate("c => { c.__kept = true; }")
    # (by year: a small county's months may fall back to quarters, the same chart)
    page.get_by_role("radio", name="Financial year", exact=True).first.click()
    page.wait_for_function(
        "before => document.querySelector("
        "'[data-testid=\"portalChart\"] .main-svg g.trace path.js-line')"
        "?.getAttribute('d') !== before",
        arg=before,
        timeout=30_000,
    )
    charts_drawn(page, at_least=2)
    trend = page.locator('[data-testid="portalChart"]').first
    assert trend.evaluate("c => c.__kept === true"), "the chart was replaced, not updated"
    assert trend.evaluate(line) != before, "the chart still shows the quarters"
    assert trend.get_attribute("role") == "figure"
    assert "chart" in (trend.get_attribute("aria-label") or "").lower()
    assert scripts and all(u.startswith(portal["base"] + plot.PLOTLY_URL) for u in scripts)
    ctx.close()


def test_a_filter_change_reruns_the_page_body_and_still_checks_the_session(portal, browser):
    """A control on a page with filters reruns only the page's body (a fragment: the
    navigation, header and tiles are not sent again), and that rerun still asks the
    service whether the session is open: a session ended in another tab shows sign-in,
    even for a view whose tables this process has cached."""
    ctx = _context(browser)
    page = ctx.new_page()
    frames: list[int] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(len(f))))
    _sign_in(page, portal["base"], "planner")
    _open(page, "Children in need", "Children in need")
    charts_drawn(page, at_least=1)
    tiles = page.locator('[data-testid="stMetric"]').count()
    assert tiles >= 4
    # mark the tiles' DOM: a full run would send them again and redraw them
    page.evaluate(
        "() => document.querySelectorAll('[data-testid=\"stMetric\"]')"
        ".forEach(t => { t.__kept = true; })"
    )
    frames.clear()
    box = page.get_by_role("combobox", name="Break down by", exact=True).first
    box.click()
    page.get_by_role("option", name="Sex", exact=True).first.click()
    page.wait_for_function("() => location.search.includes('by=sex')", timeout=30_000)
    idle(page)
    charts_drawn(page, at_least=1)
    kept = page.evaluate(
        "() => [...document.querySelectorAll('[data-testid=\"stMetric\"]')]"
        ".filter(t => t.__kept === true).length"
    )
    assert kept == tiles, "the headline tiles were drawn again"
    assert frames and len(frames) < 40, len(frames)
    # Sign out in another tab; the first tab's next change must not show the figures.
    other = ctx.new_page()
    other.goto(portal["base"] + "/children_in_need")
    other.wait_for_selector('h1:has-text("Children in need")', timeout=30_000)
    idle(other)
    other.get_by_role("button", name="Sign out").click()
    other.wait_for_selector("text=Sign in with a demo account", timeout=30_000)
    box = page.get_by_role("combobox", name="Break down by", exact=True).first
    box.click()
    # the view first shown (cached in the web process)
    page.get_by_role("option", name="No breakdown", exact=True).first.click()
    page.wait_for_selector("text=Sign in with a demo account", timeout=30_000)
    idle(page)
    assert not _signed_in(page)
    assert page.locator('[data-testid="portalChart"]').count() == 0
    ctx.close()


# --- sessions -----------------------------------------------------------------------------------


def _main(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def _signed_in(page) -> bool:
    return "Signed in as" in page.locator('[data-testid="stSidebar"]').inner_text()


def test_a_reload_keeps_the_session_and_the_page(portal, browser):
    ctx = _context(browser)
    page = ctx.new_page()
    _sign_in(page, portal["base"], "planner")
    _open(page, "Children in need", "Children in need")
    assert urlsplit(page.url).path == "/children_in_need"
    page.reload()
    page.wait_for_selector('h1:has-text("Children in need")', timeout=30_000)
    idle(page)
    assert _signed_in(page) and urlsplit(page.url).path == "/children_in_need"
    # A bookmarked page, opened in a new tab of the same browser: straight in.
    tab = ctx.new_page()
    tab.goto(portal["base"] + "/table_builder")
    tab.wait_for_selector('h1:has-text("Table builder")', timeout=30_000)
    idle(tab)
    assert _signed_in(tab)
    ctx.close()


def test_a_page_opened_signed_out_shows_sign_in_then_that_page(portal, browser):
    ctx = _context(browser)
    page = ctx.new_page()
    sign_in(page, portal["base"], "leadership", path="/programme_outcomes")
    page.wait_for_selector('h1:has-text("Programme outcomes")', timeout=30_000)
    idle(page)
    assert urlsplit(page.url).path == "/programme_outcomes" and _signed_in(page)
    ctx.close()


def test_no_access_and_not_found_do_not_sign_anyone_out(portal, browser):
    ctx = _context(browser)
    page = ctx.new_page()
    _sign_in(page, portal["base"], "planner")
    page.goto(portal["base"] + "/data_quality")
    page.wait_for_selector("text=You do not have access to this page", timeout=30_000)
    idle(page)
    assert _signed_in(page)
    assert "Rows quarantined" not in _main(page) and "Audit log" not in _main(page)
    page.goto(portal["base"] + "/no_such_page")
    page.wait_for_selector("text=Page not found", timeout=30_000)
    idle(page)
    assert _signed_in(page)
    ctx.close()


def test_the_cookie_is_httponly_strict_and_signing_out_revokes_it(portal, browser):
    ctx = _context(browser)
    page = ctx.new_page()
    _sign_in(page, portal["base"], "researcher")
    cookie = next(c for c in ctx.cookies() if c["name"] == "portal_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert "portal_session" not in page.evaluate("document.cookie"), "scripts cannot read it"
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_selector("text=Sign in with a demo account", timeout=30_000)
    idle(page)
    assert not [c for c in ctx.cookies() if c["name"] == "portal_session"]
    # The old token, put back in the browser, is worth nothing: the service revoked it.
    ctx.add_cookies([cookie])
    page.goto(portal["base"] + "/research_extracts")
    page.wait_for_selector("text=Sign in with a demo account", timeout=30_000)
    idle(page)
    assert not _signed_in(page)
    ctx.close()


# --- every page x role at the demo's default size (issue 13), permalinks cold (issue 14) -----


def _demo_people() -> int:
    """The demo's default size, as the Makefile sets it for `make run`."""
    text = (ROOT / "Makefile").read_text()
    return int(re.search(r"^DEMO_PEOPLE \?= (\d+)$", text, re.M)[1])  # type: ignore[index]


# Raw DfE ethnicity codes, as the bug showed them ("WBRI") and title-cased ("Wbri"); English
# words among them (Both, Moth) only in capitals.
RAW_CODES = re.compile(
    r"\b(?:"
    + "|".join(sorted({*ETHNICITY, *(c.title() for c in ETHNICITY if c not in ("BOTH", "MOTH"))}))
    + r")\b"
)
PERCENT = re.compile(r"(\d+(?:[.,]\d+)?)\s?%")
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@pytest.fixture(scope="module")
def demo_portal(tmp_path_factory):
    """`portal up --demo` over a release of a county at the demo's default size."""
    d = tmp_path_factory.mktemp("browser-demo")
    release = build_release(d, seed=7, people=_demo_people())
    running = Portal(release, log=d / "portal-up.log").start()
    try:
        yield {"base": running.base, "release_id": release.release_id, "log": d / "portal-up.log"}
    finally:
        running.stop()


def _outside(requests: list[str]) -> list[str]:
    return [
        u for u in requests if urlsplit(u).scheme in ("http", "https", "ws", "wss")
        and urlsplit(u).hostname not in LOCAL_HOSTS
    ]  # fmt: skip


def _page_text(page) -> str:
    """What the reader sees in the main area, chart labels (SVG text) included."""
    main = page.locator('[data-testid="stMain"]')
    svg = " ".join(main.locator("svg text").all_text_contents())
    return main.inner_text() + "\n" + svg


def test_every_page_and_role_at_the_demo_size(demo_portal, browser):
    """No % above 100, no raw ethnicity code, no headline tile showing c (at this size
    none may be suppressed; any c would have to explain itself), no request to anywhere
    but this server, no JavaScript error, no deprecation warning in the log."""
    from portal.web import access
    from portal.web.config import ROLES

    OUT.mkdir(parents=True, exist_ok=True)
    requests: list[str] = []
    errors: list[str] = []
    problems: list[str] = []
    visited = tiles_seen = 0
    for role in ROLES:
        ctx = _context(browser)
        ctx.on("request", lambda r: requests.append(r.url))
        page = ctx.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        _sign_in(page, demo_portal["base"], role)
        user = access.User(f"demo-{role}", role, frozenset({role}), "demo")
        for spec in access.visible_pages(user):
            page.goto(demo_portal["base"] + ("/" if spec.key == "home" else f"/{spec.key}"))
            page.wait_for_selector("h1", timeout=30_000)
            idle(page)
            # every chart drawn with this page's figures before the page is read or pictured
            charts_drawn(page, at_least=1 if spec.title in MUST_DRAW else 0)
            where = f"{role} on {spec.key}"
            visited += 1
            if page.locator('[data-testid="stException"]').count():
                problems.append(f"{where}: exception")
            text = _page_text(page)
            for value in PERCENT.findall(text):
                if float(value.replace(",", "")) > 100:
                    problems.append(f"{where}: {value}% shown")
            for code in set(RAW_CODES.findall(text)):
                problems.append(f"{where}: raw ethnicity code {code}")
            tiles = page.locator('[class*="st-key-tile_"]')
            tiles_seen += tiles.count()
            for i in range(tiles.count()):
                tile = tiles.nth(i)
                value = tile.locator('[data-testid="stMetricValue"]').inner_text().strip()
                if value == "c":
                    label = tile.inner_text().splitlines()[0]
                    problems.append(f"{where}: tile '{label}' shows c")
            page.screenshot(path=str(OUT / f"demo-{role}-{spec.key}.png"))
        ctx.close()
    assert visited >= 12, visited
    assert tiles_seen >= 12, "the headline tiles were found and checked"
    assert not problems, "\n".join(problems)
    assert not errors, errors
    assert requests, "requests were recorded"
    assert not _outside(requests), f"requests leaving this server: {_outside(requests)}"
    log = demo_portal["log"].read_text()
    assert not re.search(r"deprecat", log, re.I), "deprecation warnings in the log"
    assert "Inotify" not in log and "fileWatcher" not in log


def test_a_permalink_opened_cold_signs_in_and_lands_on_the_same_view(demo_portal, browser):
    ctx = _context(browser)
    page = ctx.new_page()
    query = (
        f"release={demo_portal['release_id']}&measure=eh_referrals&period=financial_year"
        "&by=locality&year=2024%2F25"
    )
    sign_in(page, demo_portal["base"], "planner", path=f"/service_demand?{query}")
    page.wait_for_selector('h1:has-text("Service demand")', timeout=30_000)
    idle(page)
    got = parse_qs(urlsplit(page.url).query)
    assert urlsplit(page.url).path == "/service_demand"
    assert got["measure"] == ["eh_referrals"] and got["by"] == ["locality"], page.url
    assert got["period"] == ["financial_year"] and got["release"] == [demo_portal["release_id"]]
    main = _main(page)
    assert "Children referred to Early Help" in main or "Early Help referrals" in main, main[:500]
    assert "by locality" in main and "2024/25" in main
    # The link offered for the chart is the same view with this release pinned.
    page.get_by_role("button", name="Link to this chart").first.click()
    link = page.locator('[data-testid="stPopoverBody"] code').first.inner_text()
    assert parse_qs(urlsplit(link).query)["by"] == ["locality"]
    page.screenshot(path=str(OUT / "permalink-after-sign-in.png"))
    ctx.close()


@pytest.mark.parametrize(("path", "kind"), [("/", "home"), ("/programme_outcomes", "programme")])
def test_the_printable_report_is_one_click_and_self_contained(demo_portal, browser, path, kind):
    ctx = _context(browser)
    page = ctx.new_page()
    _sign_in(page, demo_portal["base"], "leadership")
    if path != "/":
        page.goto(demo_portal["base"] + path)
        page.wait_for_selector('h1:has-text("Programme outcomes")', timeout=30_000)
        idle(page)
    with page.expect_download(timeout=60_000) as info:
        page.get_by_role("button", name="Printable report").first.click()
    target = OUT / f"report-{kind}.html"
    info.value.save_as(target)
    html = target.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") >= 3
    assert f"Release {demo_portal['release_id']}" in html and "Disclosure control" in html
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert set(re.findall(r"https?://[^\s\"'<>)]+", html)) <= {"http://www.w3.org/2000/svg"}
    assert not [v for v in PERCENT.findall(html) if float(v.replace(",", "")) > 100]
    assert not RAW_CODES.findall(html)
    # Printed, it is the same document: open it and save the print layout as a PDF.
    view = ctx.new_page()
    view.goto(target.as_uri())
    view.pdf(path=str(OUT / f"report-{kind}.pdf"))
    assert (OUT / f"report-{kind}.pdf").stat().st_size > 10_000
    ctx.close()
