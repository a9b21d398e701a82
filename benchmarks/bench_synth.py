"""Benchmark `portal synth`: seconds, rows/s and peak memory at county sizes.

Each size runs in a fresh subprocess so peak memory is that run's alone.
Usage: python benchmarks/bench_synth.py [--sizes 10000,100000,300000] [--repeat 1]
Target (issue 2): 300k people in at most 60 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from synthetic.generator import generate_county
n, out, fmt = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
t = time.perf_counter()
s = generate_county(n, 42, out, fmt=fmt)
el = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"people": s.people, "rows": s.total_rows, "seconds": el, "peak_mb": peak}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="10000,100000,300000")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--format", default="csv", choices=["csv", "parquet"])
    args = ap.parse_args()
    print(
        f"{'people':>9} {'rows':>10} {'seconds':>8} {'rows/s':>10} {'people/s':>9} {'peak MB':>8}"
    )
    for n in (int(x) for x in args.sizes.split(",")):
        best = None
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as d:
                res = subprocess.run(
                    [sys.executable, "-c", CHILD, str(n), d, args.format],
                    check=True,
                    capture_output=True,
                    text=True,
                )
            r = json.loads(res.stdout.strip().splitlines()[-1])
            if best is None or r["seconds"] < best["seconds"]:
                best = r
        assert best is not None
        print(
            f"{best['people']:>9,} {best['rows']:>10,} {best['seconds']:>8.2f} "
            f"{best['rows'] / best['seconds']:>10,.0f} {best['people'] / best['seconds']:>9,.0f} "
            f"{best['peak_mb']:>8.0f}"
        )


if __name__ == "__main__":
    main()
