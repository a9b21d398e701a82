"""`portal --help` as a whole process: lazy command loading against loading every command
module (what `portal --help` did before), interleaved in one run so that the machine's
noise falls on both alike.

    .venv/bin/python benchmarks/bench_cli.py [--repeats 15]

Prints the median and 90th percentile wall time of each and the ratio, and a bare
`python -c pass` as the floor no command line can beat. Target: `portal --help` <= 0.3 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CASES = {
    "python -c pass (floor)": [sys.executable, "-c", "pass"],
    "portal --help (lazy)": [sys.executable, "-m", "portal.cli", "--help"],
    "portal --help (every module loaded)": [
        sys.executable,
        "-c",
        "from portal import cli; cli.build()(args=['--help'], prog_name='portal')",
    ],
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(args.repeats):
        for name, cmd in CASES.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, check=False)
            times[name].append(time.perf_counter() - t0)
    print(f"{'case':40} {'median s':>9} {'p90 s':>7}")
    for name, ts in times.items():
        p90 = sorted(ts)[int(0.9 * (len(ts) - 1))]
        print(f"{name:40} {statistics.median(ts):9.3f} {p90:7.3f}")
    lazy = statistics.median(times["portal --help (lazy)"])
    eager = statistics.median(times["portal --help (every module loaded)"])
    print(f"\nlazy help is {eager / lazy:.1f}x faster than loading every module")


if __name__ == "__main__":
    main()
