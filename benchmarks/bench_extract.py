"""Benchmark: a 20-variable research extract over a county-scale research table.

Builds a synthetic county and runs the pipeline once (not timed), then times
`build_extract` (k=10, l=2 on a sensitive variable) and writing the files.
Usage: python benchmarks/bench_extract.py [--people 300000] [--repeat 3]
Target (issue 7): <= 30 s at 300k people.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from datetime import date
from pathlib import Path

import polars as pl

from anonymise.extract import ExtractRequest, build_extract, load_extract_policy, write_extract
from anonymise.pseudonymise import MasterKey
from pipelines.run import run_pipeline
from synthetic.generator import generate_county

VARIABLES = (
    "age", "sex", "ethnicity", "lsoa", "eh_episodes", "first_eh_referral_month", "contacts",
    "csc_referrals", "assessments", "s47_enquiries", "cp_plan_ever", "looked_after_ever",
    "fsm_ever", "sen_latest", "absence_pct_latest", "suspensions_total", "police_incidents",
    "youth_offences", "benefit_spells", "mental_health_contacts",
)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--people", type=int, default=300_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    key = MasterKey(b"b" * 32, "environment")
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        generate_county(args.people, 5, Path(d) / "raw")
        run_pipeline(Path(d) / "raw", Path(d) / "work", key, as_at=date(2026, 11, 21))
        setup = time.perf_counter() - t
        table = pl.read_parquet(Path(d) / "work" / "zone_b" / "research_table.parquet")
        geo = pl.read_parquet(Path(d) / "work" / "zone_b" / "geography.parquet")
        print(f"setup (synth + pipeline, not timed): {setup:.0f} s; research table {table.height:,} rows")
        req = ExtractRequest("bench", "Benchmark of the extract builder", "bench", VARIABLES, k=10, l=2, sensitive="sen_latest")
        policy = load_extract_policy()
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            ex = build_extract(table, geo, req, key=key, policy=policy, data_as_at="2026-11-21")
            built = time.perf_counter() - t
            cert = write_extract(ex, Path(d) / "out" / "bench.csv")
            times.append((built, time.perf_counter() - t))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        best = min(times)
        print(f"{'people':>8} {'rows':>9} {'vars':>4} {'build s':>8} {'build+write s':>13} {'nodes':>6} {'k':>4} {'l':>3} {'suppressed':>10} {'peak MB':>8}")
        print(
            f"{args.people:>8,} {table.height:>9,} {len(VARIABLES):>4} {best[0]:>8.2f} {best[1]:>13.2f} "
            f"{cert['search']['nodes_evaluated']:>6} {cert['achieved']['k_anonymity']:>4} "
            f"{cert['achieved']['l_diversity_distinct']:>3} {cert['records']['suppressed']:>10,} {peak:>8.0f}"
        )
        print("transformation:", cert["transformation"])


if __name__ == "__main__":
    main()
