"""Portal render times at county scale (Streamlit AppTest), through the release service.

Targets: first render of any page <= 1.5 s and a filter change <= 300 ms, both at the
95th percentile, against a 300,000-person release. Build one first (2-3 minutes):

    portal synth --people 300000 --seed 11 --out data/bench300k/raw
    PORTAL_PSEUDONYM_KEY=<64 hex> PORTAL_SDC_SECRET=<64 hex> \\
        portal run --raw data/bench300k/raw --work data/bench300k/work \\
        --store sqlite:///$PWD/data/bench300k/portal.sqlite --as-at 2026-11-21

then

    PORTAL_SDC_SECRET=<the same hex> python benchmarks/bench_portal.py \\
        --store sqlite:///$PWD/data/bench300k/portal.sqlite --work data/bench300k/work

The release service runs in this process (uvicorn on a thread, a real socket) so that its
caches can be cleared between cold renders; the pages reach it over HTTP exactly as in
production. Both share one interpreter here, so these times are if anything pessimistic.

What is timed (each an AppTest run: the whole script, every protected-table query through
the API, the figures and the element tree; the browser's drawing is not included):
- process cold: the very first page in a fresh process (imports, every cube read from the
  store by the service);
- first render, cold caches: each page opened after clearing Streamlit's data cache and
  the release layer's cube cache (what the first visitor after a restart waits for);
- first render, warm: each page opened in a new session once others have used it;
- filter change: one widget changed to a value not asked for before (new protected
  tables, not cache hits), across the service demand, children in need, programme
  outcomes and table builder pages.

`--browser` also times the same release as a user sees it: `portal up --demo` (the two
processes, as `make run`) and headless Chromium (/usr/bin/chromium, Playwright), from the
click on a sidebar link or a control until the script run has finished and every chart is
drawn with the figures the page last sent (`_READY`).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
APP = str(ROOT / "app.py")


def _pct(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _row(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"| {name} | {len(ms)} | {_pct(ms, 50):,.0f} | {_pct(ms, 95):,.0f} | {max(ms):,.0f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", required=True, help="store URL of the release to time")
    parser.add_argument("--work", default=None, help="the pipeline work folder (admin page)")
    parser.add_argument("--repeat", type=int, default=5, help="cold first renders per page")
    parser.add_argument("--browser", action="store_true", help="also time in headless Chromium")
    parser.add_argument(
        "--browser-only", action="store_true", help="only the headless Chromium timings"
    )
    parser.add_argument(
        "--compare",
        type=Path,
        action="append",
        default=[],
        help="another checkout (say, main's code exported to a folder) timed in the browser "
        "in the same run, round by round",
    )
    parser.add_argument(
        "--compare-store",
        default=None,
        help="a copy of the store for the --compare checkouts (each service writes its "
        "audit log to its store; default: the same store)",
    )
    parser.add_argument(
        "--changes-only",
        action="store_true",
        help="in the browser, time only the filter changes (no page opens): quicker rounds "
        "when comparing checkouts",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="in the browser, also make the same filter changes on the floor page "
        "(benchmarks/floor_page.py: the same controls and charts, nothing else), round by round",
    )
    args = parser.parse_args()
    if not os.environ.get("PORTAL_SDC_SECRET") and not os.environ.get("PORTAL_SDC_SECRET_FILE"):
        sys.exit("set PORTAL_SDC_SECRET (or PORTAL_SDC_SECRET_FILE) to the release's secret")
    # The browser rounds, alone (--browser-only) or after the AppTest timings (--browser).
    in_browser = functools.partial(
        browser_timings,
        args.store,
        args.work,
        args.repeat,
        args.compare,
        args.compare_store,
        changes_only=args.changes_only,
        floor=args.floor,
    )
    if args.browser_only:
        in_browser()
        return
    os.environ.setdefault("STREAMLIT_LOGGER_LEVEL", "error")
    for name in ("PORTAL_CONFIG", "PORTAL_ACCOUNTS_FILE", "PORTAL_STORE_URL", "PORTAL_WORK_DIR"):
        os.environ.pop(name, None)

    import socket
    import threading

    import httpx
    import uvicorn
    from streamlit.testing.v1 import AppTest

    for name in list(logging.root.manager.loggerDict):
        if name.startswith("streamlit"):
            logging.getLogger(name).setLevel(logging.ERROR)

    from anonymise import cellkey, release
    from pipelines.store import Store
    from portal.service.app import create_app
    from portal.service.config import parse_config
    from portal.web import access, auth
    from portal.web import data as web_data

    latest = Store(args.store, upgrade=True).latest_release()
    if latest is None:
        sys.exit(f"no release in {args.store}")
    print(
        f"release {latest.release_id} (data as at {latest.data_as_at}), "
        f"{sum(latest.row_counts.values()):,} cube cells in {len(latest.row_counts)} measures"
    )
    token = "bench-service-credential-" + "b" * 24
    config = parse_config(
        {}, env={}, demo=True, store_url=args.store, work_dir=Path(args.work) if args.work else None
    )
    service_app = create_app(config, sdc_secret=cellkey.load_sdc_secret(), service_token=token)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(service_app, host="127.0.0.1", port=port, log_level="warning",
                       access_log=False)
    )  # fmt: skip
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    os.environ.update(PORTAL_DEMO="1", PORTAL_SERVICE_URL=url, PORTAL_SERVICE_TOKEN=token)
    tokens = {
        role: httpx.post(
            f"{url}/v1/sessions/demo", json={"role": role}, headers={"X-Service-Token": token}
        ).json()["token"]
        for role in ("admin", "researcher", "leadership")
    }

    def session(role: str) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=120)
        at.session_state[auth.SESSION_TOKEN] = tokens[role]
        return at

    def check(at: AppTest, what: str) -> None:
        if at.exception:
            raise SystemExit(f"{what}: {at.exception[0].value}")
        errors = [e.value for e in at.error]
        if errors:
            raise SystemExit(f"{what}: {errors}")

    def timed(fn: Callable[[], AppTest], what: str) -> float:
        t = time.perf_counter()
        at = fn()
        elapsed = time.perf_counter() - t
        check(at, what)
        return elapsed

    def clear() -> None:
        web_data.clear_caches()
        release.clear_cache()
        service_app.state.service.rendered.clear()

    role_for = {
        p.key: ("researcher" if p.key == "research_extracts" else "admin") for p in access.PAGES
    }

    # --- process cold ----------------------------------------------------------------
    at = session("admin")
    process_cold = timed(at.run, "home (process cold)")

    # --- first renders -----------------------------------------------------------------
    cold: dict[str, list[float]] = {p.key: [] for p in access.PAGES}
    warm: dict[str, list[float]] = {p.key: [] for p in access.PAGES}
    for _ in range(args.repeat):
        for spec in access.PAGES:
            at = session(role_for[spec.key])
            if spec.key == "home":
                clear()
                cold[spec.key].append(timed(at.run, spec.key))
                warm[spec.key].append(timed(session(role_for[spec.key]).run, spec.key))
                continue
            at.run()  # the session opens on home; then the page is opened
            clear()
            cold[spec.key].append(timed(lambda a=at, s=spec: a.switch_page(s.path).run(), spec.key))
            at2 = session(role_for[spec.key])
            at2.run()
            warm[spec.key].append(
                timed(lambda a=at2, s=spec: a.switch_page(s.path).run(), spec.key)
            )

    # --- filter changes ------------------------------------------------------------------
    changes: dict[str, list[float]] = {}

    def change(page: str, at: AppTest, action: Callable[[AppTest], AppTest]) -> None:
        changes.setdefault(page, []).append(timed(lambda: action(at).run(), page))

    at = session("admin")
    at.run()
    at.switch_page("pages/views/service_demand.py").run()
    for measure in ("contacts", "eh_referrals", "eh_closures", "eh_step_up"):
        change("service_demand", at, lambda a, m=measure: a.selectbox(key="sd_measure").select(m))
        # "" is the control's "No breakdown" choice (portal.web.ui.ALL).
        for split in ("locality", "age_band", "referral_source", "closure_reason", ""):
            box = at.selectbox(key=f"sd_split_{measure}")
            if split in box.options or split == "":
                change(
                    "service_demand",
                    at,
                    lambda a, m=measure, s=split: a.selectbox(key=f"sd_split_{m}").select(s),
                )
        loc = at.selectbox(key=f"sd_locality_{measure}")
        for value in loc.options[1:4]:
            change(
                "service_demand",
                at,
                lambda a, m=measure, v=value: a.selectbox(key=f"sd_locality_{m}").set_value(v),
            )
        for period in ("month", "financial_year", "quarter"):
            change(
                "service_demand", at, lambda a, p=period: a.get("segmented_control")[0].set_value(p)
            )

    at = session("admin")
    at.run()
    at.switch_page("pages/views/children_in_need.py").run()
    for measure in (
        "cin_rereferrals_12m",
        "assessments_within_45_days",
        "cp_plans_at_31_march",
        "s47_enquiries",
    ):
        change(
            "children_in_need", at, lambda a, m=measure: a.selectbox(key="cin_measure").select(m)
        )
        for split in ("age_band", "ethnicity", "sex", "locality", ""):
            change(
                "children_in_need",
                at,
                lambda a, m=measure, s=split: a.selectbox(key=f"cin_split_{m}").select(s),
            )

    at = session("leadership")
    at.run()
    at.switch_page("pages/views/programme_outcomes.py").run()
    change("programme_outcomes", at, lambda a: a.toggle(key="po_by_locality").set_value(True))
    change(
        "programme_outcomes",
        at,
        lambda a: a.get("segmented_control")[0].set_value("financial_year"),
    )
    for year in at.selectbox(key="po_year").options[1:4]:
        change("programme_outcomes", at, lambda a, y=year: a.selectbox(key="po_year").select(y))
    for loc in at.selectbox(key="po_locality").options[1:4]:
        change(
            "programme_outcomes", at, lambda a, v=loc: a.selectbox(key="po_locality").set_value(v)
        )

    at = session("researcher")
    at.run()
    at.switch_page("pages/views/table_builder.py").run()
    for measure, by in (
        ("contacts", ["locality", "age_band"]),
        ("contacts", ["ward", "month"]),
        ("cin_referrals", ["ward", "quarter", "cin_category"]),
        ("eh_referrals", ["ethnicity", "financial_year"]),
        ("sf_significant_sustained_progress", ["ward", "quarter"]),
        ("cp_plans_at_31_march", ["locality", "age_band", "financial_year"]),
    ):
        change("table_builder", at, lambda a, m=measure: a.selectbox(key="tb_measure").select(m))
        change(
            "table_builder",
            at,
            lambda a, m=measure, b=by: a.multiselect(key=f"tb_by_{m}").set_value(b),
        )
        change("table_builder", at, lambda a: a.checkbox(key="tb_margins").check())
        change("table_builder", at, lambda a: a.checkbox(key="tb_margins").uncheck())

    # --- report ----------------------------------------------------------------------------
    print(f"\nprocess cold (first page, fresh process): {process_cold * 1000:,.0f} ms\n")
    print("| first render, cold caches | n | p50 ms | p95 ms | max ms |")
    print("|---|---|---|---|---|")
    for key, values in cold.items():
        print(_row(key, values))
    print(_row("**all pages**", [v for vs in cold.values() for v in vs]))
    print("\n| first render, warm (new session) | n | p50 ms | p95 ms | max ms |")
    print("|---|---|---|---|---|")
    for key, values in warm.items():
        print(_row(key, values))
    print(_row("**all pages**", [v for vs in warm.values() for v in vs]))
    print("\n| filter change (new query) | n | p50 ms | p95 ms | max ms |")
    print("|---|---|---|---|---|")
    for key, values in changes.items():
        print(_row(key, values))
    print(_row("**all changes**", [v for vs in changes.values() for v in vs]))
    all_cold = [v for vs in cold.values() for v in vs]
    all_changes = [v for vs in changes.values() for v in vs]
    ok = _pct(all_cold, 95) <= 1.5 and _pct(all_changes, 95) <= 0.3
    print(
        f"\ntargets (p95): first render <= 1500 ms: {_pct(all_cold, 95) * 1000:,.0f} ms; "
        f"filter change <= 300 ms: {_pct(all_changes, 95) * 1000:,.0f} ms -> "
        f"{'met' if ok else 'NOT met'}"
    )
    server.should_exit = True
    if args.browser:
        in_browser()


# --- in a real browser ---------------------------------------------------------------------

# Every change to the page stamps window.__last: a page is "ready" once the script run
# has finished, every chart is drawn (below) and nothing has changed for 400 ms; its time is
# the last change minus the click. The click is the `click` event the page received (its
# timeStamp, on the same clock as performance.now()): that is when a user's choice is made
# and their wait begins. Playwright's own work before it (finding the element, checking it
# is visible and still, moving the mouse, pressing the button) is not part of what a user
# waits for; it is reported on a separate row, as the time from the harness's call. (The
# run-state attribute alone can miss a fast run.)
_WATCH = """() => {
  window.__last = performance.now();
  new MutationObserver(() => { window.__last = performance.now(); })
    .observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
  window.addEventListener('click', e => { if (e.isTrusted) window.__click = e.timeStamp; }, true);
}"""
# Settled: the script run is over, every chart on the page is drawn, and nothing on the
# page has changed for 400 ms; the time reported is that of the last change. A portal
# chart (portal/web/plot.py) counts as drawn only once plotly.js has drawn the spec the
# page last sent it (plot.js marks it "drawn" then) with its traces in the SVG; a chart
# still loading has no drawn box and holds the page unsettled. `st.plotly_chart` charts
# (an older checkout under --compare) count once their traces are in the SVG. Every chart
# is checked, not only the first.
_READY = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  const charts = [...document.querySelectorAll(
    '[data-testid="stPlotlyChart"], [data-testid="stBidiComponentRegular"]')];
  return app.getAttribute('data-test-script-state') === 'notRunning'
    && charts.every(c => c.matches('[data-testid="stPlotlyChart"]')
      ? !!c.querySelector('.main-svg g.trace')
      : !!c.querySelector('[data-testid="portalChart"][data-state="drawn"] .main-svg g.trace'))
    && performance.now() - window.__last > 400;
}"""


def _print_rounds(values: Sequence[float], repeat: int) -> None:
    """Each round's changes, in order: round 1 finds the web process's caches cold (every
    table asked of the service for the first time), later rounds find them warm."""
    per_round = len(values) // max(repeat, 1)
    for r in range(repeat):
        got = values[r * per_round : (r + 1) * per_round]
        print(f"round {r + 1}: " + ", ".join(f"{v * 1000:,.0f}" for v in got) + " ms")


def _open_select(page, label: str, nth: int):  # type: ignore[no-untyped-def]
    """Open the select box labelled `label` (not timed) and return its `nth` option."""
    page.get_by_role("combobox", name=label, exact=True).first.click()
    options = page.get_by_role("option")
    options.first.wait_for(timeout=10_000)
    return options.nth(nth)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(port: int) -> str:
    """The address of the Streamlit server on `port`, once it answers its health check (up
    to two minutes)."""
    import urllib.request

    base = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=1) as r:
                if r.read() == b"ok":
                    break
        except OSError:
            time.sleep(0.5)
    return base


def _start_portal(code: Path, store: str, work: str | None) -> tuple[Any, str]:
    """`portal up --demo` from the checkout `code` (its own portal.cli, found first on the
    path as the module's folder), on free ports; returns the process and its address."""
    import subprocess

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_SERVICE")}
    env.pop("PORTAL_DEMO", None)
    env.pop("PYTHONPATH", None)
    command = [sys.executable, "-m", "portal.cli", "up", "--demo", "--store", store,
               "--port", str(port), "--service-port", str(port + 1)]  # fmt: skip
    if work:
        command += ["--work", work]
    server = subprocess.Popen(
        command, cwd=code, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return server, _healthy(port)


# The moment the script run ends (the run-state attribute turns to notRunning), stamped in
# the page: a change's script time as the browser sees it (round trip and script run,
# without the drawing after it).
_WATCH_RUN = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  new MutationObserver(() => {
    if (app.getAttribute('data-test-script-state') === 'notRunning') {
      window.__ran = performance.now();
    }
  }).observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""


# The floor page's filter changes: the portal's, in the same order: the period (a radio, by
# its name), then the measure and the breakdowns (a select box label and an option).
_FLOOR_CHANGES = (
    ("Month", None, 0),
    ("Financial year", None, 0),
    ("Quarter", None, 0),
    ("the measure", "What to show", 1),
    ("the breakdown", "Break down by", 1),
    ("the breakdown", "Break down by", 2),
    ("the breakdown", "Break down by", 0),
    ("the measure", "What to show", 2),
    ("the breakdown", "Break down by", 1),
    ("the measure", "What to show", 0),
)


def _floor_tables(store: str) -> Path:
    """The floor page's protected tables, through the release library from the release
    being timed, written to a temporary folder as parquet."""
    import tempfile

    from anonymise.policy import default_policy
    from anonymise.release import tabulate
    from benchmarks import floor_page
    from pipelines.store import Store

    folder = Path(tempfile.mkdtemp(prefix="bench-floor-"))
    source = Store(store)
    policy = default_policy()
    release = source.latest_release()
    meta = source.read_meta(release.release_id)
    for measure in (m for m in floor_page.MEASURES if m in meta):
        allowed = meta[measure].breakdowns
        splits = [s for s in floor_page.SPLITS if s in allowed]
        for grain in (g for g in floor_page.PERIODS if g in allowed):
            for dims in [(grain,), *((grain, s) for s in splits)]:
                table = tabulate(source, measure, by=dims, policy=policy)
                table.data.write_parquet(folder / floor_page.table_name(measure, dims))
        years = tabulate(source, measure, by=("financial_year",), policy=policy)
        partial = set(years.partial_periods.get("financial_year", ()))
        complete = [y for y in years.data["financial_year"].to_list() if y not in partial]
        for dim in ("locality", *splits):
            table = tabulate(
                source, measure, by=(dim,), where={"financial_year": complete[-1]}, policy=policy
            )
            table.data.write_parquet(folder / floor_page.table_name(measure, (dim,)))
    return folder


def _start_floor(folder: Path) -> tuple[Any, str]:
    """The floor page's web process (benchmarks/floor_web.py) on a free port."""
    import subprocess

    port = _free_port()
    from benchmarks import floor_page

    env = {**os.environ, floor_page.FOLDER_VARIABLE: str(folder), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "streamlit", "run", str(ROOT / "benchmarks" / "floor_web.py"),
               "--server.port", str(port), "--server.headless", "true",
               "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]  # fmt: skip
    server = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return server, _healthy(port)


def browser_timings(
    store: str,
    work: str | None,
    repeat: int,
    compare: Sequence[Path] = (),
    compare_store: str | None = None,
    *,
    changes_only: bool = False,
    floor: bool = False,
) -> None:
    """Page opens and filter changes in headless Chromium. With `compare`, the same rounds
    run against each of those checkouts too, interleaved round by round (one browser, one
    load), so the figures are comparable on a shared machine. With `floor`, each round also
    makes the same filter changes on the floor page (benchmarks/floor_page.py: the same
    controls and charts, nothing else)."""
    from playwright.sync_api import sync_playwright

    from portal.web import access

    codes = [ROOT, *compare]
    label = {c: ("this checkout" if c == ROOT else str(c)) for c in codes}
    first: dict[Path, dict[str, list[float]]] = {c: {} for c in codes}
    changes: dict[Path, list[float]] = {c: [] for c in codes}
    scripts: dict[Path, list[float]] = {c: [] for c in codes}
    harness: dict[Path, list[float]] = {c: [] for c in codes}
    # the same changes by what was changed (the period, the measure, the breakdown)
    kinds: dict[Path, dict[str, list[float]]] = {c: {} for c in codes}
    loads: list[float] = []
    floor_changes: list[float] = []
    floor_kinds: dict[str, list[float]] = {}
    servers = {
        c: _start_portal(c, store if c == ROOT else compare_store or store, work) for c in codes
    }
    floor_dir = _floor_tables(store) if floor else None
    floor_server = _start_floor(floor_dir) if floor_dir else None
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--headless", "--no-sandbox", "--disable-gpu",
                      "--disable-background-networking", "--disable-component-update",
                      "--no-first-run", "--disable-sync"],
            )  # fmt: skip

            def act(page, action: Callable[[], None], code: Path | None = None) -> float:
                """Seconds, measured in the page, from the click until the last change to
                the page once the run has finished and every chart is drawn. For a filter
                change (`code` given) the time from just before Playwright's call is kept
                too."""
                page.evaluate(
                    "window.__t0 = performance.now(); window.__ran = null; window.__click = null"
                )
                action()
                page.wait_for_timeout(50)
                page.wait_for_function(_READY, timeout=60_000, polling=50)
                t0, click, ran, last = page.evaluate(
                    "[window.__t0, window.__click, window.__ran, window.__last]"
                )
                if click is None:
                    raise SystemExit("the page received no click: the change was not made")
                if code is not None:
                    if ran is not None:
                        scripts[code].append((ran - click) / 1000)
                    harness[code].append((last - t0) / 1000)
                return float(last - click) / 1000

            for _ in range(repeat):
                for code in codes:
                    loads.append(os.getloadavg()[0])
                    base = servers[code][1]
                    page = browser.new_page(viewport={"width": 1400, "height": 1400})
                    page.goto(base)
                    page.get_by_role("button", name="Sign in as demo administrator").click()
                    # Signing in reloads the page (the session cookie is set on the way), so
                    # the watcher goes in once the signed-in home page is there; sign-in is
                    # not timed.
                    page.wait_for_selector(
                        '[data-testid="stSidebar"] >> text=Signed in as', timeout=60_000
                    )
                    page.evaluate(_WATCH)
                    page.evaluate(_WATCH_RUN)
                    page.evaluate("window.__t0 = performance.now()")
                    page.wait_for_function(_READY, timeout=60_000, polling=50)
                    # home is open after signing in: visit it last, from another page
                    pages = [p for p in access.PAGES if p.key not in ("home", "research_extracts")]
                    for spec in [] if changes_only else [*pages, access.PAGE_BY_KEY["home"]]:
                        link = page.locator(
                            '[data-testid="stSidebarNav"] a', has_text=spec.title
                        ).first
                        first[code].setdefault(spec.key, []).append(act(page, link.click))
                    act(
                        page,
                        page.locator(
                            '[data-testid="stSidebarNav"] a', has_text="Service demand"
                        ).first.click,
                    )
                    for name in ("Month", "Financial year", "Quarter"):
                        button = page.get_by_role("radio", name=name, exact=True).first
                        changes[code].append(act(page, button.click, code))
                        kinds[code].setdefault("the period", []).append(changes[code][-1])
                    # Another measure, then each breakdown: new protected tables each time.
                    for box, nth in (("What to show", 1), ("Break down by", 1),
                                     ("Break down by", 2), ("Break down by", 0),
                                     ("What to show", 2), ("Break down by", 1),
                                     ("What to show", 0)):  # fmt: skip
                        option = _open_select(page, box, nth)
                        changes[code].append(act(page, option.click, code))
                        kind = "the measure" if box == "What to show" else "the breakdown"
                        kinds[code].setdefault(kind, []).append(changes[code][-1])
                    page.close()
                if floor_server is not None:
                    page = browser.new_page(viewport={"width": 1400, "height": 1400})
                    page.goto(floor_server[1])
                    page.evaluate(_WATCH)
                    page.evaluate(_WATCH_RUN)
                    page.wait_for_function(_READY, timeout=60_000, polling=50)
                    for name, box, nth in _FLOOR_CHANGES:
                        if box is None:
                            target = page.get_by_role("radio", name=name, exact=True).first
                            floor_changes.append(act(page, target.click))
                            kind = "the period"
                        else:
                            option = _open_select(page, box, nth)
                            floor_changes.append(act(page, option.click))
                            kind = name
                        floor_kinds.setdefault(kind, []).append(floor_changes[-1])
                    page.close()
            browser.close()
    finally:
        for server, _ in [*servers.values(), *([floor_server] if floor_server else [])]:
            server.terminate()
            server.wait(timeout=20)
        if floor_dir is not None:
            # protected tables, but a run leaves nothing of its own behind
            shutil.rmtree(floor_dir, ignore_errors=True)
    print(
        f"\nload average (1 min) at the start of each round: {', '.join(f'{v:.1f}' for v in loads)}"
    )
    for code in codes:
        print(f"\n{label[code]}\n\n| in the browser: page opened | n | p50 ms | p95 ms | max ms |")
        print("|---|---|---|---|---|")
        for key, values in first[code].items():
            print(_row(key, values))
        if first[code]:
            print(_row("**all pages**", [v for vs in first[code].values() for v in vs]))
        print(_row("filter change, from the click until the page settles", changes[code]))
        if scripts[code]:
            print(_row("filter change, from the click until the script run ends", scripts[code]))
        print(
            _row("filter change, from the harness's call (Playwright's checks included)",
                 harness[code])
        )  # fmt: skip
        for kind, values in kinds[code].items():
            print(_row(f"  of which changing {kind}, until the page settles", values))
        _print_rounds(changes[code], repeat)
        p95 = _pct(changes[code], 95)
        print(
            f"\ntarget in the browser (p95): filter change <= 500 ms: {p95 * 1000:,.0f} ms -> "
            f"{'met' if p95 <= 0.5 else 'NOT met'}"
        )
    if floor_changes:
        print(
            "\nthe floor (benchmarks/floor_page.py: the same controls and two charts in a "
            "fragment, nothing else; same rounds)\n\n| in the browser | n | p50 ms | p95 ms | max ms |"
        )
        print("|---|---|---|---|---|")
        print(_row("filter change, from the click until the page settles", floor_changes))
        _print_rounds(floor_changes, repeat)
        for kind, values in floor_kinds.items():
            print(_row(f"  of which changing {kind}, until the page settles", values))
        ours = changes[ROOT]
        print(
            f"\nthis checkout against the floor: p50 {_pct(ours, 50) / _pct(floor_changes, 50):.2f}x,"
            f" p95 {_pct(ours, 95) / _pct(floor_changes, 95):.2f}x"
        )


if __name__ == "__main__":
    main()
