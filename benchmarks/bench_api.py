"""Protected-table queries through the release service's API, beside the same queries run in
process by `anonymise.release.tabulate`, in the same run, against a county-sized release.

Target: the API's p95 within 2x of the in-process figure. Build a 300,000-person release
first (see benchmarks/bench_portal.py), then

    PORTAL_SDC_SECRET=<the release's hex> python benchmarks/bench_api.py \\
        --store sqlite:///$PWD/data/bench300k/portal.sqlite

What is timed, for the same list of queries (every measure: no breakdown, each of its first
four breakdowns, and pairs of them):
- in process, cold: the first query of each measure after the cube cache is cleared (the
  cube is read from the store); warm: every query again, cubes cached (`--repeat` rounds);
- through the API (`portal serve` in its own process, a real socket, a signed-in session,
  the service credential, JSON): cold, the first query of each measure in a fresh service
  process; warm, new query: every query once more after its cube is loaded, none asked
  before (the service tabulates and renders it); warm, repeated: the same queries again
  (rendered documents are kept: a release never changes).
Each API time is the whole HTTP round trip, JSON decoded by the client.
"""

from __future__ import annotations

import argparse
import itertools
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.service_process import wait_until_up  # noqa: E402 - after the path


def _pct(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _row(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"| {name} | {len(ms)} | {_pct(ms, 50):,.1f} | {_pct(ms, 95):,.1f} | {max(ms):,.1f} |"


def _queries(meta: dict[str, Any]) -> list[tuple[str, tuple[str, ...]]]:
    out: list[tuple[str, tuple[str, ...]]] = []
    for name in sorted(meta):
        dims = tuple(meta[name].breakdowns[:4])
        out.append((name, ()))
        out.extend((name, (d,)) for d in dims)
        out.extend((name, pair) for pair in itertools.combinations(dims[:3], 2))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", required=True, help="store URL of the release to time")
    parser.add_argument("--repeat", type=int, default=3, help="warm rounds in process")
    args = parser.parse_args()
    if not os.environ.get("PORTAL_SDC_SECRET") and not os.environ.get("PORTAL_SDC_SECRET_FILE"):
        sys.exit("set PORTAL_SDC_SECRET (or PORTAL_SDC_SECRET_FILE) to the release's secret")

    import httpx

    from anonymise import cellkey, release
    from anonymise.policy import default_policy
    from pipelines.store import Store

    store = Store(args.store, upgrade=True)
    latest = store.latest_release()
    if latest is None:
        sys.exit(f"no release in {args.store}")
    meta = store.read_meta(latest.release_id)
    queries = _queries(meta)
    print(
        f"release {latest.release_id} (data as at {latest.data_as_at}): "
        f"{sum(latest.row_counts.values()):,} cube cells in {len(meta)} measures; "
        f"{len(queries)} queries"
    )
    policy = default_policy()
    ptable = cellkey.ptable_for(policy.max_noise, policy.variance, cellkey.load_sdc_secret())

    def tab(measure: str, by: tuple[str, ...]) -> float:
        t = time.perf_counter()
        release.tabulate(store, measure, by=by, policy=policy, ptable=ptable)
        return time.perf_counter() - t

    # --- in process ------------------------------------------------------------------
    release.clear_cache()
    local_cold = [tab(m, ()) for m in sorted(meta)]
    local_warm = [tab(m, by) for _ in range(args.repeat) for m, by in queries]

    # --- through the API -------------------------------------------------------------
    token = secrets.token_urlsafe(32)
    port = 8600 + secrets.randbelow(300)
    env = {**os.environ, "PORTAL_SERVICE_TOKEN": token, "PORTAL_DEMO": "1"}
    for name in ("PORTAL_CONFIG", "PORTAL_ACCOUNTS_FILE"):
        env.pop(name, None)
    service = subprocess.Popen(
        [sys.executable, "-m", "portal.cli", "serve", "--demo", "--store", args.store,
         "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, service)
        client = httpx.Client(base_url=base, timeout=60, trust_env=False)
        client.headers["X-Service-Token"] = token
        r = client.post("/v1/sessions/demo", json={"role": "admin"})
        r.raise_for_status()
        client.headers["Authorization"] = f"Bearer {r.json()['token']}"

        server: dict[str, list[float]] = {"auth": [], "table": []}

        def api(measure: str, by: tuple[str, ...]) -> float:
            params = {"by": ",".join(by)} if by else {}
            t = time.perf_counter()
            response = client.get(f"/v1/tables/{measure}", params=params)
            response.raise_for_status()
            response.json()
            elapsed = time.perf_counter() - t
            for part in response.headers.get("Server-Timing", "").split(","):
                name, _, dur = part.strip().partition(";dur=")
                if name in server:
                    server[name].append(float(dur) / 1000)
            return elapsed

        health = []
        for _ in range(50):
            t = time.perf_counter()
            client.get("/v1/health").raise_for_status()
            health.append(time.perf_counter() - t)
        api_cold = [api(m, ()) for m in sorted(meta)]
        fresh = [(m, by) for m, by in queries if by]  # the no-breakdown ones were the cold ones
        for part in server.values():
            part.clear()
        api_new = [api(m, by) for m, by in fresh]
        server_new = {k: list(v) for k, v in server.items()}
        api_repeat = [api(m, by) for _ in range(args.repeat) for m, by in queries]
    finally:
        service.terminate()
        service.wait(timeout=15)
        store.dispose()

    print("\n| | n | p50 ms | p95 ms | max ms |")
    print("|---|---|---|---|---|")
    print(_row("in process, cold (first query of a measure)", local_cold))
    print(_row("in process, warm", local_warm))
    print(_row("API, cold (first query of a measure, fresh service)", api_cold))
    print(_row("API, warm, new query", api_new))
    print(_row("API, warm, repeated query", api_repeat))
    print(_row("API, /v1/health round trip", health))
    print(_row("  of a new query, in the service: caller checks", server_new["auth"]))
    print(_row("  of a new query, in the service: table (tabulate + render)", server_new["table"]))
    cold_ratio = max(api_cold) / max(local_cold)
    warm_ratio = _pct(api_new, 95) / _pct(local_warm, 95)
    print(
        f"\nratios: cold max API/in process {cold_ratio:.2f}; warm p95 (new query) "
        f"API/in process {warm_ratio:.2f}; target: warm p95 within 2x -> "
        f"{'met' if warm_ratio <= 2 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
