"""Benchmark the whole pipeline at county scale (synth excluded) and `portal table` queries.

Stages timed: ingest, link, pseudonymise, derive, publish, write; peak memory of the run.
Then every measure x every single allowed breakdown (and a few pairs) is tabulated through
the release layer: the first query of a measure loads and caches its cube (cold), the
rest are warm. Usage: python benchmarks/bench_pipeline.py [--people 300000] [--store URL]
Targets (issue 5): ingest -> publish <= 5 minutes and <= 6 GB at 300k; any table query <= 200 ms.
"""

from __future__ import annotations

import argparse
import itertools
import resource
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

from anonymise import cellkey
from anonymise.policy import default_policy
from anonymise.pseudonymise import MasterKey
from anonymise.release import clear_cache, tabulate
from pipelines.derive import MEASURES
from pipelines.run import run_pipeline
from pipelines.store import Store
from synthetic.generator import generate_county


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--people", type=int, default=300_000)
    ap.add_argument("--store", default=None, help="store URL (default: a temporary SQLite file)")
    args = ap.parse_args()
    secret = b"s" * 32
    with tempfile.TemporaryDirectory() as d:
        generate_county(args.people, 3, Path(d) / "raw")
        store = Store(args.store or f"sqlite:///{d}/store.sqlite", upgrade=True)
        t = time.perf_counter()
        r = run_pipeline(
            Path(d) / "raw", Path(d) / "work", MasterKey(b"m" * 32, "environment"),
            as_at=date(2026, 11, 21), store=store, sdc_secret=secret,
            accept_unmatched_objections="all",
        )  # fmt: skip
        total = time.perf_counter() - t
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"pipeline at {args.people:,} people: {total:.1f} s, peak {peak:,.0f} MB")
        for stage in ("ingest", "link", "quality", "pseudonymise", "derive", "publish", "write"):
            print(f"  {stage:>13}: {r.timings.get(stage, 0):7.1f} s")
        policy = default_policy()
        ptable = cellkey.ptable_for(policy.max_noise, policy.variance, secret)
        clear_cache()
        cold, warm = [], []
        for name, m in MEASURES.items():
            queries = [()] + [(b,) for b in m.meta.breakdowns]
            queries += list(itertools.combinations(m.meta.breakdowns[:5], 2))
            for i, by in enumerate(queries):
                t = time.perf_counter()
                tabulate(store, name, by=by, policy=policy, ptable=ptable)
                (cold if i == 0 else warm).append((time.perf_counter() - t) * 1000)
        q = statistics.quantiles(warm, n=100)
        print(f"table queries: {len(cold)} cold (cube load), {len(warm)} warm")
        print(f"  cold ms: median {statistics.median(cold):.0f}, max {max(cold):.0f}")
        print(f"  warm ms: median {statistics.median(warm):.1f}, p95 {q[94]:.1f}, max {max(warm):.1f}")


if __name__ == "__main__":
    main()
