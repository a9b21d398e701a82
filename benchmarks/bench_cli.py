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
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--store", help="A published store (else a county is generated).")
    ap.add_argument("--secret-file", type=Path, help="Its disclosure-control secret.")
    ap.add_argument("--people", type=int, default=50_000)
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
        table = [sys.executable, "-m", "portal.cli", "table", MEASURE, "--by", BY]
        cases = {
            "python -c pass (floor)": [sys.executable, "-c", "pass"],
            "portal --help (lazy)": [sys.executable, "-m", "portal.cli", "--help"],
            "portal --help (every module loaded)": [
                sys.executable,
                "-c",
                "from portal import cli; cli.build()(args=['--help'], prog_name='portal')",
            ],
            f"portal table {MEASURE} --by {BY}": [*table, "--store", url],
            "  the same, --format csv": [*table, "--store", url, "--format", "csv"],
        }
        # One untimed call each: a failing case should stop the benchmark, not be timed.
        for cmd in cases.values():
            subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        times: dict[str, list[float]] = {name: [] for name in cases}
        load_before = os.getloadavg()[0]
        for _ in range(args.repeats):
            for name, cmd in cases.items():
                t0 = time.perf_counter()
                subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, check=False)
                times[name].append(time.perf_counter() - t0)
        load_after = os.getloadavg()[0]
    print(f"load average (1 min) {load_before:.1f} before, {load_after:.1f} after; ", end="")
    print(f"{os.cpu_count()} CPUs")
    print(f"{'case':50} {'median s':>9} {'p90 s':>7} {'min s':>7}")
    for name, ts in times.items():
        p90 = sorted(ts)[int(0.9 * (len(ts) - 1))]
        print(f"{name:50} {statistics.median(ts):9.3f} {p90:7.3f} {min(ts):7.3f}")
    lazy = statistics.median(times["portal --help (lazy)"])
    eager = statistics.median(times["portal --help (every module loaded)"])
    print(f"\nlazy help is {eager / lazy:.1f}x faster than loading every module")


if __name__ == "__main__":
    main()
