"""The command line as whole processes: `portal --help` and `portal table` on a published
county, each beside a bare `python -c pass` (the floor no command can beat) and, for help,
beside loading every command module (what `portal --help` did before it loaded lazily).
The cases are interleaved in one run so that the machine's noise falls on all alike, and
the load average is printed with the figures (the machine may be shared).

    .venv/bin/python benchmarks/bench_cli.py [--repeats 15]
        [--store sqlite:////path/portal.sqlite --secret-file /path/sdc.key]
        [--people 50000]

Without --store, a county of --people people (default 50,000, the demo's size) is generated
and published into a temporary folder first (a few minutes; not timed). Prints the median
and 90th percentile wall time of each case. Targets: `portal --help` <= 0.3 s,
`portal table` <= 0.6 s.

`portal table` is timed both ways it runs: on the server (the store and the secret in this
process, so polars, numpy and SQLAlchemy are imported) and through the release service
(`--service URL`: a thin HTTP client; the service is started once, signed in once, and
warmed with the same query, so what is timed is the client's whole process). Beside them,
`import polars, numpy, sqlalchemy` alone: the floor of the server-side command.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.service_process import wait_until_up  # noqa: E402 - after the path

MEASURE, BY = "eh_referrals", "locality,year"


def publish_county(folder: Path, people: int) -> tuple[str, Path]:
    """Generate and publish a county; returns (store URL, its disclosure-control secret)."""
    url = f"sqlite:///{folder / 'portal.sqlite'}"
    portal = [sys.executable, "-m", "portal.cli"]
    steps = [
        [*portal, "synth", "--people", str(people), "--seed", "7", "--out", str(folder / "raw")],
        [*portal, "db", "upgrade", "--store", url],
        [*portal, "run", "--raw", str(folder / "raw"), "--work", str(folder / "work")]
        + ["--store", url, "--demo"],
    ]
    for step in steps:
        subprocess.run(step, cwd=folder, check=True, stdout=subprocess.DEVNULL)
    return url, folder / "data" / "demo" / "sdc.key"


@contextlib.contextmanager
def release_service(url: str, env: dict[str, str], folder: Path) -> Iterator[tuple[str, str]]:
    """`portal serve` on the store with one local planner account; yields (its URL, a
    session token from signing in as that account), as an analyst's `portal table
    --service` would hold one."""
    import httpx

    from portal.service import accounts

    password = secrets.token_urlsafe(16)
    account_file = folder / "accounts.toml"
    account_file.write_text(
        f'[accounts.bench]\nname = "Bench"\nroles = ["planner"]\n'
        f'password_hash = "{accounts.hash_password(password)}"\n',
        encoding="utf-8",
    )
    port = 8600 + secrets.randbelow(300)
    env = {**env, "PORTAL_SERVICE_TOKEN": secrets.token_urlsafe(32)}
    env["PORTAL_ACCOUNTS_FILE"] = str(account_file)
    env.pop("PORTAL_CONFIG", None)
    cmd = [sys.executable, "-m", "portal.cli", "serve", "--store", url, "--port", str(port)]
    service = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, service)
        r = httpx.post(
            f"{base}/v1/sessions/local",
            json={"username": "bench", "password": password},
            trust_env=False,
        )
        r.raise_for_status()
        yield base, r.json()["token"]
    finally:
        service.terminate()
        service.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--store", help="A published store (else a county is generated).")
    ap.add_argument("--secret-file", type=Path, help="Its disclosure-control secret.")
    ap.add_argument("--people", type=int, default=50_000)
    ap.add_argument(
        "--compare",
        type=Path,
        help="Another checkout (e.g. main's) whose --help and server-side table are timed "
        "in the same run, interleaved.",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.store:
            url, secret = args.store, args.secret_file
        else:
            print(f"publishing a county of {args.people:,} people in {tmp} ...", flush=True)
            url, secret = publish_county(Path(tmp), args.people)
        env = dict(os.environ)
        if secret is not None:
            env["PORTAL_SDC_SECRET_FILE"] = str(secret)
        with release_service(url, env, Path(tmp)) as (base, session):
            times = _time_cases(url, base, {**env, "PORTAL_SESSION_TOKEN": session}, args)
    print(f"load average (1 min) {times.pop('load')[0]:.1f} before, ", end="")
    print(f"{times.pop('load after')[0]:.1f} after; ", end="")
    print(f"{os.cpu_count()} CPUs")
    print(f"{'case':66} {'median s':>9} {'p90 s':>7} {'min s':>7}")
    for name, ts in times.items():
        p90 = sorted(ts)[int(0.9 * (len(ts) - 1))]
        print(f"{name:66} {statistics.median(ts):9.3f} {p90:7.3f} {min(ts):7.3f}")
    lazy = statistics.median(times["portal --help (lazy)"])
    eager = statistics.median(times["portal --help (every module loaded)"])
    print(f"\nlazy help is {eager / lazy:.1f}x faster than loading every module")


def _time_cases(
    url: str, base: str, env: dict[str, str], args: argparse.Namespace
) -> dict[str, list[float]]:
    table = [sys.executable, "-m", "portal.cli", "table", MEASURE, "--by", BY]
    cases = {
        "python -c pass (floor)": [sys.executable, "-c", "pass"],
        "portal --help (lazy)": [sys.executable, "-m", "portal.cli", "--help"],
        "portal --help (every module loaded)": [
            sys.executable,
            "-c",
            "from portal import cli; cli.build()(args=['--help'], prog_name='portal')",
        ],
        "import polars, numpy, sqlalchemy (floor of a server-side table)": [
            sys.executable,
            "-c",
            "import polars, numpy, sqlalchemy",
        ],
        f"portal table {MEASURE} --by {BY} (server)": [*table, "--store", url],
        "  the same, --format csv": [*table, "--store", url, "--format", "csv"],
        "  the same, --service (client)": [*table, "--service", base],
        "  the same, --service, --format csv": [*table, "--service", base, "--format", "csv"],
    }
    cwd = dict.fromkeys(cases, ROOT)
    if args.compare:
        for name in ("portal --help (lazy)", f"portal table {MEASURE} --by {BY} (server)"):
            cases[f"{name}, {args.compare}"] = cases[name]
            cwd[f"{name}, {args.compare}"] = args.compare.resolve()
    # One untimed call each: a failing case should stop the benchmark, not be timed (and
    # the service's first answer, which reads the cube, is not the client's cost).
    for name, cmd in cases.items():
        subprocess.run(cmd, cwd=cwd[name], env=env, check=True, stdout=subprocess.DEVNULL)
    times: dict[str, list[float]] = {name: [] for name in cases}
    load_before = os.getloadavg()[0]
    for _ in range(args.repeats):
        for name, cmd in cases.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=cwd[name], env=env, stdout=subprocess.DEVNULL, check=False)
            times[name].append(time.perf_counter() - t0)
    times["load"] = [load_before]
    times["load after"] = [os.getloadavg()[0]]
    return times


if __name__ == "__main__":
    main()
