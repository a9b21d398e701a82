"""The Comparisons and Supporting Families claims pages in a real browser: `portal up --demo`
serving a small release with the demo's fictional comparator file loaded, driven by headless
Chromium. Opens both views, checks they render (no exception, the charts drawn, the
fictional labelling shown), downloads the quarterly return, and saves screenshots under
test-output/browser-planning/."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from tests.portal_processes import (
    BROWSER_ARGS,
    CHROMIUM,
    Portal,
    build_release,
    charts_drawn,
    idle,
    open_link,
    require_browser,
)
from tests.portal_processes import sign_in as demo_sign_in

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "test-output" / "browser-planning"

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

sync_api = require_browser()


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    from pipelines.comparators import load_files
    from pipelines.store import Store
    from synthetic.comparators import shipped_file

    d = tmp_path_factory.mktemp("browser_planning")
    release = build_release(d, seed=43)
    store = Store(release.store_url)
    load_files(store, [shipped_file()], actor="test")
    store.dispose()
    running = Portal(release, log=d / "portal-up.log").start()
    try:
        yield {"base": running.base, "release_id": release.release_id}
    finally:
        running.stop()


@pytest.fixture(scope="module")
def page(portal):
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        ctx = browser.new_context(viewport={"width": 1400, "height": 2200}, accept_downloads=True)
        pg = ctx.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        demo_sign_in(pg, portal["base"], "leadership")
        pg.errors = errors  # type: ignore[attr-defined]
        yield pg
        ctx.close()
        browser.close()


def _rendered(page) -> str:  # type: ignore[no-untyped-def]
    assert page.locator('[data-testid="stException"]').count() == 0
    charts_drawn(page)
    return str(page.locator('[data-testid="stMain"]').inner_text())


def test_comparisons_view(page, portal) -> None:
    open_link(page, "Comparisons", "Comparisons")
    page.screenshot(path=str(OUT / "comparisons.png"), full_page=True)
    page.locator('[data-testid="portalChart"]').first.wait_for(timeout=30_000)
    body = _rendered(page)
    assert f"Release {portal['release_id']}" in body
    assert "FICTIONAL DATA FOR THE DEMO" in body
    assert "Wealdmoor beside its comparators" in body
    assert page.locator('[data-testid="portalChart"]').count() == 1
    page.screenshot(path=str(OUT / "comparisons.png"), full_page=True)
    page.get_by_text("Measures without a national equivalent").click()
    page.wait_for_timeout(500)
    page.screenshot(path=str(OUT / "comparisons-not-compared.png"), full_page=True)
    assert not page.errors


def test_claims_view_and_the_return_download(page, portal) -> None:
    open_link(page, "Supporting Families claims", "Supporting Families claims")
    body = _rendered(page)
    assert "Successful family outcomes" in body and "Quarterly progress return" in body
    page.screenshot(path=str(OUT / "sf-claims.png"), full_page=True)
    with page.expect_download(timeout=30_000) as info:
        page.get_by_role("button", name="Download the return (CSV)").click()
    target = OUT / info.value.suggested_filename
    info.value.save_as(target)
    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert rows[0] == ["line", "section", "description", "value"]
    assert rows[1] == ["H1", "Return details", "Local authority", "Wealdmoor"]
    idle(page)
    assert not page.errors
