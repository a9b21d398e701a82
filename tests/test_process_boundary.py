"""The architecture test: the portal started as `make run` starts it (`portal up --demo`, two
processes), every page visited by every role in headless Chromium, and then proof from the
operating system that the web process has no key or secret and never opened the store or the
work folders:

- /proc/<pid>/environ: nothing but the allow-list (PATH, HOME, LANG, LC_*, TERM, the service
  URL and credential, PORTAL_DEMO, and this test's audit-log hook), and none of the secret
  values, the store path or the work path anywhere in it;
- /proc/<pid>/fd and /proc/<pid>/maps: no open file or mapping under the store's folder or
  the work folder ("not open now");
- an audit hook installed when the web process started (portal.web.boot, switched on by
  PORTAL_AUDIT_OPENS) logged every file it opened, every folder it listed, every SQLite
  connection, every polars file read and every import of a data-layer module, for its whole
  life ("never opened").

The release service, by contrast, does hold them (the same checks on it find them), so the
test would notice if it were looking at the wrong process. Finally Ctrl-C (SIGINT) to the
launcher stops both processes.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from portal.web.access import PAGES
from tests.portal_processes import (
    BROWSER_ARGS,
    CHROMIUM,
    ROLE_BUTTONS,
    Portal,
    build_release,
    idle,
    sign_in,
)

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("process_boundary")]

if not CHROMIUM.exists():
    pytest.skip(
        "process boundary test skipped: /usr/bin/chromium is not installed", allow_module_level=True
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

ALLOWED_ENV = {"PATH", "HOME", "LANG", "TERM", "PORTAL_SERVICE_URL", "PORTAL_SERVICE_TOKEN",
               "PORTAL_DEMO", "PORTAL_AUDIT_OPENS"}  # fmt: skip


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    d = tmp_path_factory.mktemp("boundary")
    release = build_release(d, seed=57)
    portal = Portal(release, log=d / "portal-up.log", audit_log=d / "web-opens.log").start()
    try:
        yield portal
    finally:
        portal.stop()


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = [item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item]
    return {k.decode(): v.decode(errors="replace") for k, v in pairs}


def _open_paths(pid: int) -> list[str]:
    paths = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            paths.append(os.readlink(fd))
        except OSError:
            continue
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    paths.extend(line.split(None, 5)[5] for line in maps if len(line.split(None, 5)) == 6)
    return paths


def _visit_every_page_as_every_role(base: str) -> dict[str, int]:
    seen = {"pages": 0, "refused": 0}
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        for role in ROLE_BUTTONS:
            ctx = browser.new_context(viewport={"width": 1400, "height": 2000})
            page = ctx.new_page()
            sign_in(page, base, role)
            for spec in PAGES:
                page.goto(f"{base}/{'' if spec.key == 'home' else spec.key}")  # home is "/"
                if role in spec.roles:
                    title = "research and statistics portal" if spec.key == "home" else spec.title
                    page.wait_for_selector(f'h1:has-text("{title}")', timeout=30_000)
                    idle(page)
                    main = page.locator('[data-testid="stMain"]').inner_text()
                    assert "Release " in main, (role, spec.key)
                    assert page.locator('[data-testid="stException"]').count() == 0
                    seen["pages"] += 1
                else:
                    page.wait_for_selector("text=You do not have access to this page",
                                           timeout=30_000)  # fmt: skip
                    idle(page)
                    seen["refused"] += 1
            ctx.close()
        browser.close()
    return seen


def test_the_web_process_holds_no_secret_and_never_opens_the_store_or_work(running):
    release = running.release
    seen = _visit_every_page_as_every_role(running.base)
    expected = sum(len(p.roles) for p in PAGES)
    assert seen == {"pages": expected, "refused": 4 * len(PAGES) - expected}
    pids = running.pids()
    web, service = pids["web"], pids["service"]

    # 1. The environment: an allow-list, and none of the secrets or paths anywhere in it.
    env = _environ(web)
    extra = {k for k in env if k not in ALLOWED_ENV and not k.startswith("LC_")}
    assert not extra, f"the web process has {sorted(extra)} in its environment"
    raw_env = Path(f"/proc/{web}/environ").read_bytes().decode(errors="replace")
    store_dir, work_dir = str(release.store_file.parent), str(release.work)
    for secret in (release.sdc_hex, release.key_hex, store_dir, work_dir):
        assert secret not in raw_env
    assert env["PORTAL_DEMO"] == "1" and env["PORTAL_SERVICE_URL"].startswith("http://127.0.0.1")
    # (the service does hold them: the check above is looking at the right kind of thing)
    service_env = Path(f"/proc/{service}/environ").read_bytes().decode(errors="replace")
    assert release.sdc_hex in service_env and release.key_hex in service_env
    assert env["PORTAL_SERVICE_TOKEN"] in service_env

    # 2. Nothing under the store's folder or the work folder is open or mapped now.
    now_open = _open_paths(web)
    assert now_open, "could not read the web process's open files"
    bad = [p for p in now_open if p.startswith((store_dir, work_dir))]
    assert not bad, f"the web process has open: {bad}"
    assert any(p.startswith(store_dir) for p in _open_paths(service)), "the service has the store"

    # 3. Never: the audit hook's log of every open, listing, SQLite connection and import.
    log = running.audit_log.read_text().splitlines()
    opened = [line.split("\t", 1) for line in log if "\t" in line]
    assert any(path.endswith("pages/views/home.py") for _, path in opened), "the hook works"
    print(f"\nweb process: {len(opened)} file events logged, none under the store or work")
    touched = [(event, path) for event, path in opened if store_dir in path or work_dir in path]
    assert not touched, f"the web process opened: {touched[:10]}"
    assert not [path for event, path in opened if event == "sqlite3.connect"]
    imports = sorted({path for event, path in opened if event == "import"})
    assert not imports, f"the web process imported {imports}"


def test_ctrl_c_stops_both_processes(running):
    pids = running.pids()
    code = running.stop(signal.SIGINT)
    assert code == 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids.values()):
        time.sleep(0.2)
    alive = [name for name, p in pids.items() if Path(f"/proc/{p}").exists()]
    # a zombie (exited, not yet reaped by its parent) is not running
    alive = [n for n in alive if "State:\tZ" not in Path(f"/proc/{pids[n]}/status").read_text()]
    assert not alive, f"still running after Ctrl-C: {alive}"
