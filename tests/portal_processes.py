"""The portal as `make run` starts it, for tests: `portal up --demo` (the command `make run`
runs once `make demo` has published the demo release), i.e. two real processes, the
release service and the Streamlit portal, against a small release built here.

Also the headless-Chromium helpers the browser tests share."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from tests.service_fixtures import free_port

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ROLE_BUTTONS = {
    "planner": "planner",
    "researcher": "researcher",
    "leadership": "leadership",
    "admin": "administrator",
}


@dataclass
class Release:
    store_url: str
    store_file: Path
    work: Path
    release_id: str
    sdc_hex: str
    key_hex: str


def require_browser() -> Any:
    """Playwright's sync API, or skip the calling test module (at import) when Chromium or
    playwright is missing, saying which."""
    import pytest

    if not CHROMIUM.exists():
        pytest.skip(
            "browser test skipped: /usr/bin/chromium is not installed (apt-get install chromium)",
            allow_module_level=True,
        )
    return pytest.importorskip(
        "playwright.sync_api",
        reason="browser test skipped: the playwright package is not installed",
    )


def build_release(d: Path, *, seed: int, people: int = 3000) -> Release:
    """A synthetic county run through the pipeline into a SQLite store (as `make demo`)."""
    from anonymise.pseudonymise import MasterKey
    from pipelines.run import run_pipeline
    from pipelines.store import Store
    from synthetic.generator import generate_county

    sdc_hex, key_hex = f"{seed:02x}" * 32, "6b" * 32
    generate_county(people, seed, d / "raw")
    store_file = d / "store" / "portal.sqlite"
    url = f"sqlite:///{store_file}"
    result = run_pipeline(
        d / "raw", d / "work", MasterKey(bytes.fromhex(key_hex), "environment"),
        as_at=date(2026, 11, 21), store=Store(url), sdc_secret=bytes.fromhex(sdc_hex),
        accept_unmatched_objections="all",
    )  # fmt: skip
    assert result.release_id is not None
    return Release(url, store_file, d / "work", result.release_id, sdc_hex, key_hex)


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - a local test server
            return bool(r.status == 200)
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out.extend(int(x) for x in text)
    return out


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


@dataclass
class Portal:
    """`portal up --demo` running: the launcher, the release service and the portal."""

    release: Release
    log: Path
    audit_log: Path | None = None
    port: int = field(default_factory=free_port)
    service_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Portal:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
        # The secrets reach the launcher (as they reach `make run` from data/demo/), which
        # must pass them to the service and to nothing else.
        env["PORTAL_SDC_SECRET"] = self.release.sdc_hex
        env["PORTAL_PSEUDONYM_KEY"] = self.release.key_hex
        if self.audit_log is not None:
            env["PORTAL_AUDIT_OPENS"] = str(self.audit_log)
        self.out = open(self.log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "portal.cli", "up", "--demo",
             "--store", self.release.store_url, "--work", str(self.release.work),
             "--port", str(self.port), "--service-port", str(self.service_port)],
            cwd=ROOT, env=env, stdout=self.out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while not _ok(f"{self.base}/_stcore/health"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(self.log.read_text())
            time.sleep(0.3)
        return self

    def pids(self) -> dict[str, int]:
        """The launcher's two children, by what they run."""
        assert self.proc is not None
        found = {}
        for pid in _children(self.proc.pid):
            line = cmdline(pid)
            if "portal.web.boot" in line:
                found["web"] = pid
            elif "portal.cli serve" in line:
                found["service"] = pid
        assert set(found) == {"web", "service"}, found
        return found

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        code = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                code = self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                code = self.proc.wait(timeout=10)
        if hasattr(self, "out"):
            self.out.close()
        return code


# --- the browser ----------------------------------------------------------------------------


def idle(page) -> None:  # type: ignore[no-untyped-def]
    """Wait until the script run has finished and the page has settled."""
    sel = '[data-testid="stApp"][data-test-script-state="notRunning"]'
    page.wait_for_selector(sel, timeout=30_000)
    page.wait_for_timeout(300)
    page.wait_for_selector(sel, timeout=30_000)


def sign_in(page, base: str, role: str, *, path: str = "/") -> None:  # type: ignore[no-untyped-def]
    page.goto(base + path)
    page.wait_for_selector("text=Sign in with a demo account", timeout=30_000)
    idle(page)
    page.get_by_role("button", name=f"Sign in as demo {ROLE_BUTTONS[role]}").click()
    page.wait_for_selector('[data-testid="stSidebar"] >> text=Signed in as', timeout=30_000)
    idle(page)


def open_link(page, link: str, title: str) -> None:  # type: ignore[no-untyped-def]
    page.locator('[data-testid="stSidebarNav"] a', has_text=link).first.click()
    page.wait_for_selector(f'h1:has-text("{title}")', timeout=30_000)
    idle(page)


# Every chart on the page (portal/web/plot.py) shows the spec the page last sent: plot.js
# marks its box "drawn" once plotly.js has drawn that spec, and the SVG holds its traces.
# A chart still loading has its Streamlit container but no drawn box yet, so it fails too.
CHARTS_DRAWN = """(atLeast) => {
  const charts = [...document.querySelectorAll('[data-testid="stBidiComponentRegular"]')];
  return charts.length >= atLeast && charts.every(c => !!c.querySelector(
    '[data-testid="portalChart"][data-state="drawn"] .main-svg g.trace'));
}"""


def charts_drawn(page, *, at_least: int = 0, timeout: int = 30_000) -> int:  # type: ignore[no-untyped-def]
    """Wait until the script run has finished and every chart on the page (at least
    `at_least` of them) is drawn with the figures it was last sent; return how many
    charts there are."""
    idle(page)
    page.wait_for_function(CHARTS_DRAWN, arg=at_least, timeout=timeout, polling=100)
    return int(page.locator('[data-testid="portalChart"]').count())
