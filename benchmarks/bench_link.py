"""Benchmark ingest + link: seconds per stage, peak memory, linkage quality (with the NHS
number trace, and without it for comparison), side by side with a naive exact-match
baseline (forename + surname + DOB). The timings are of the traced run.

Each size runs in a fresh subprocess (synthetic county generated first, not timed).
Usage: python benchmarks/bench_link.py [--sizes 10000,100000,300000]
Target (issue 3): 300k people, ingest + link <= 3 minutes, peak memory <= 6 GB, F1 >= 0.97.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

CHILD = r"""
import json, resource, sys, time
from datetime import date
from pathlib import Path
import polars as pl
from synthetic.generator import generate_county
from pipelines.ingest import ingest_all
from pipelines.link import link, load_trace_response
from pipelines.quality import linkage_quality, load_truth, pairwise_quality
n, out = int(sys.argv[1]), Path(sys.argv[2])
generate_county(n, 42, out)
t = time.perf_counter()
res = ingest_all(out, as_at=date(2026, 11, 21))
t_ingest = time.perf_counter() - t
t = time.perf_counter()
linked = link(res, trace=load_trace_response(out))
t_link = time.perf_counter() - t
truth = load_truth(out)
q = linkage_quality(linked.records, truth)
untraced = link(res)
qn = linkage_quality(untraced.records, truth)["persons"]
t = time.perf_counter()
r = linked.records.with_columns(pl.concat_str("forename", "surname", pl.col("dob").cast(pl.Utf8), separator="|").alias("exact"))
lab = r.with_columns(pl.coalesce("exact", "unique_id").alias("k")).join(truth, on="unique_id")
base = pairwise_quality(lab, cluster="k", truth="person_id")
t_base = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({
    "people": n, "records": linked.records.height, "ingest": t_ingest, "link": t_link,
    "splink": linked.timings["splink"], "peak_mb": peak, "p": q["persons"].precision,
    "r": q["persons"].recall, "f1": q["persons"].f1, "f1_untraced": qn.f1,
    "fam_p": q["families"].precision, "fam_r": q["families"].recall,
    "base_p": base.precision, "base_r": base.recall, "base_f1": base.f1, "base_s": t_base,
}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="10000,100000,300000")
    args = ap.parse_args()
    head = (
        f"{'people':>8} {'records':>8} {'ingest s':>8} {'link s':>7} {'total s':>7} {'peak MB':>8} "
        f"{'P':>6} {'R':>6} {'F1':>6} {'F1 no trace':>11} {'fam P':>6} {'fam R':>6} | "
        f"{'naive P':>7} {'naive R':>7} {'naive F1':>8}"
    )
    print(head)
    for n in (int(x) for x in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as d:
            res = subprocess.run(
                [sys.executable, "-c", CHILD, str(n), d], check=True, capture_output=True, text=True
            )
        r = json.loads(res.stdout.strip().splitlines()[-1])
        print(
            f"{r['people']:>8,} {r['records']:>8,} {r['ingest']:>8.1f} {r['link']:>7.1f} "
            f"{r['ingest'] + r['link']:>7.1f} {r['peak_mb']:>8.0f} {r['p']:>6.4f} {r['r']:>6.4f} "
            f"{r['f1']:>6.4f} {r['f1_untraced']:>11.4f} {r['fam_p']:>6.3f} {r['fam_r']:>6.3f} | "
            f"{r['base_p']:>7.4f} {r['base_r']:>7.4f} {r['base_f1']:>8.4f}"
        )


if __name__ == "__main__":
    main()
