"""Benchmark ingest + link: seconds per stage, peak memory, linkage quality (with the NHS
number trace, and without it for comparison), side by side with a naive exact-match
baseline (forename + surname + DOB). The timings are of the traced run.

Each size runs in a fresh subprocess (synthetic county generated first, not timed).
Usage: python benchmarks/bench_link.py [--sizes 10000,100000,300000] [--febrl 300000]
       [--raw 300000=/tmp/scale300k/raw] (reuse a county generated with seed 42)
Target (issue 3): 300k people, ingest + link <= 3 minutes, peak memory <= 6 GB, F1 >= 0.97.

Then the same probabilistic linkage on a FEBRL-style dedupe set we did not design
(benchmarks/febrl_style.py), beside plain Splink (library comparisons, default-style
training, threshold 0.9) and the naive exact baseline, each timed in the same run as a
fresh subprocess. Target (issue 15): F1 >= 0.966 at precision >= 0.995, in no more than
1.5x plain Splink's time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

CHILD = r"""
import json, os, resource, sys, time
from datetime import date
from pathlib import Path
import polars as pl
from synthetic.generator import generate_county
from pipelines.ingest import ingest_all
from pipelines.link import link, load_trace_response
from pipelines.quality import family_quality_by_source, linkage_quality, load_truth, pairwise_quality
n, out, untraced_too = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "1"
if not (out / "extract.json").exists():
    generate_county(n, 42, out)
load = os.getloadavg()[0]
t = time.perf_counter()
res = ingest_all(out, as_at=date(2026, 11, 21))
t_ingest = time.perf_counter() - t
t, c = time.perf_counter(), time.process_time()
linked = link(res, trace=load_trace_response(out))
t_link, c_link = time.perf_counter() - t, time.process_time() - c
truth = load_truth(out)
q = linkage_quality(linked.records, truth)
by_source = family_quality_by_source(linked.records, truth)
qn = linkage_quality(link(res).records, truth)["persons"] if untraced_too else None
t = time.perf_counter()
r = linked.records.with_columns(pl.concat_str("forename", "surname", pl.col("dob").cast(pl.Utf8), separator="|").alias("exact"))
lab = r.with_columns(pl.coalesce("exact", "unique_id").alias("k")).join(truth, on="unique_id")
base = pairwise_quality(lab, cluster="k", truth="person_id")
t_base = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({
    "people": n, "records": linked.records.height, "ingest": t_ingest, "link": t_link,
    "splink": linked.timings["splink"], "link_cpu": c_link, "peak_mb": peak,
    "pairs_scored": linked.model.training["pairs_scored"],
    "load": max(load, os.getloadavg()[0]), "p": q["persons"].precision,
    "r": q["persons"].recall, "f1": q["persons"].f1, "f1_untraced": qn.f1 if qn else float("nan"),
    "fam_p": q["families"].precision, "fam_r": q["families"].recall,
    "fam_split": q["families"].split_persons,
    "base_p": base.precision, "base_r": base.recall, "base_f1": base.f1, "base_s": t_base,
    "fam_by_source": by_source.to_dicts(),
}))
"""


FEBRL = r"""
import json, sys, time
import polars as pl
sys.path.insert(0, ".")
from benchmarks.febrl_style import generate
from pipelines.link import components, probabilistic_edges
from pipelines.quality import pairwise_quality
n, which = int(sys.argv[1]), sys.argv[2]
df = generate(n, seed=2026)

def quality(labels):
    lab = df.select("unique_id", "person_id").with_columns(labels.alias("k"))
    return pairwise_quality(lab, cluster="k", truth="person_id")

t = time.perf_counter()
extra = {}
if which == "ours":
    edges, _, training = probabilistic_edges(df)
    labels = components(df["unique_id"], edges.select("uid_l", "uid_r"))
    extra = training["threshold"]
elif which == "plain":
    import duckdb, logging
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on
    logging.getLogger("splink").setLevel(logging.ERROR)
    d = df.select("unique_id", "forename", "surname", pl.col("dob").dt.strftime("%Y-%m-%d").alias("dob"),
                  "sex", "postcode", "address_line1", "town")
    settings = SettingsCreator(link_type="dedupe_only", comparisons=[
        cl.NameComparison("forename"), cl.NameComparison("surname"),
        cl.DateOfBirthComparison("dob", input_is_string=True), cl.ExactMatch("postcode"),
        cl.ExactMatch("sex"), cl.LevenshteinAtThresholds("address_line1", 2), cl.ExactMatch("town")],
        blocking_rules_to_generate_predictions=[block_on("forename", "surname"), block_on("dob"),
                                                block_on("postcode", "surname")])
    con = duckdb.connect(config={"memory_limit": "2GB", "threads": 2})
    linker = Linker(DuckDBAPI(connection=con).register(d.to_arrow()), settings)
    linker.training.estimate_probability_two_random_records_match([block_on("forename", "surname", "dob")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("forename", "surname"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    pred = linker.inference.predict(threshold_match_probability=0.9)
    cl_ = linker.clustering.cluster_pairwise_predictions_at_threshold(pred, 0.9)
    out = pl.from_arrow(cl_.as_duckdbpyrelation().select("unique_id, cluster_id").arrow())
    m = df.select("unique_id").join(out, on="unique_id", how="left")
    labels = m["cluster_id"].cast(pl.Utf8).fill_null(m["unique_id"])
else:
    exact = pl.concat_str("forename", "surname", pl.col("dob").cast(pl.Utf8), separator="|")
    labels = df.select(pl.coalesce(exact, "unique_id").alias("k"))["k"]
secs = time.perf_counter() - t
q = quality(labels)
print(json.dumps({"which": which, "records": df.height, "p": q.precision, "r": q.recall, "f1": q.f1,
                  "s": secs, **{f"model_{k}": v for k, v in extra.items()}}))
"""


def febrl(records: int) -> None:
    print(f"\nFEBRL-style dedupe set, {records:,} records (seconds are linkage only, same run)")
    print(f"{'method':>22} {'P':>7} {'R':>7} {'F1':>7} {'seconds':>8}")
    rows = {}
    for which in ("plain", "ours", "naive"):
        res = subprocess.run(
            [sys.executable, "-c", FEBRL, str(records), which],
            check=True, capture_output=True, text=True,
        )
        r = json.loads(res.stdout.strip().splitlines()[-1])
        rows[which] = r
        label = {"plain": "plain Splink (0.9)", "ours": "ours (model threshold)",
                 "naive": "naive exact name+DOB"}[which]
        print(f"{label:>22} {r['p']:>7.4f} {r['r']:>7.4f} {r['f1']:>7.4f} {r['s']:>8.1f}")
    ours = rows["ours"]
    print(
        f"ours / plain time: {ours['s'] / rows['plain']['s']:.2f}x; threshold "
        f"{ours['model_threshold']:.4f}, model's own precision estimate "
        f"{ours['model_estimated_precision']:.4f}, recall estimate {ours['model_estimated_recall']:.4f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="10000,100000,300000")
    ap.add_argument("--febrl", type=int, default=300_000, help="FEBRL-style records (0: skip)")
    ap.add_argument("--skip-untraced", action="store_true", help="skip the run without the trace")
    ap.add_argument("--by-source", action="store_true", help="family quality by source")
    ap.add_argument("--raw", action="append", default=[], metavar="N=DIR",
                    help="reuse a county generated earlier for size N (seed 42)")
    args = ap.parse_args()
    given = {int(n): d for n, d in (r.split("=", 1) for r in args.raw)}
    head = (
        f"{'people':>8} {'records':>8} {'ingest s':>8} {'link s':>7} {'total s':>7} {'peak MB':>8} "
        f"{'P':>6} {'R':>6} {'F1':>6} {'F1 no trace':>11} {'fam P':>6} {'fam R':>6} | "
        f"{'naive P':>7} {'naive R':>7} {'naive F1':>8}"
    )
    print(head)
    for n in (int(x) for x in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as d:
            res = subprocess.run(
                [sys.executable, "-c", CHILD, str(n), given.get(n, d),
                 "0" if args.skip_untraced else "1"],
                capture_output=True, text=True,
            )
        if res.returncode:
            sys.exit(f"{n:,} people: the run failed\n{res.stderr[-4000:]}")
        r = json.loads(res.stdout.strip().splitlines()[-1])
        print(
            f"{r['people']:>8,} {r['records']:>8,} {r['ingest']:>8.1f} {r['link']:>7.1f} "
            f"{r['ingest'] + r['link']:>7.1f} {r['peak_mb']:>8.0f} {r['p']:>6.4f} {r['r']:>6.4f} "
            f"{r['f1']:>6.4f} {r['f1_untraced']:>11.4f} {r['fam_p']:>6.3f} {r['fam_r']:>6.3f} | "
            f"{r['base_p']:>7.4f} {r['base_r']:>7.4f} {r['base_f1']:>8.4f}"
        )
        print(f"  families: {r['fam_split']:.1%} of true families split across predicted ones")
        print(f"  P {r['p']:.5f} R {r['r']:.5f} F1 {r['f1']:.5f}; family P {r['fam_p']:.4f} "
              f"R {r['fam_r']:.4f}; link CPU {r['link_cpu']:.1f} s, Splink {r['splink']:.1f} s "
              f"wall; {r['pairs_scored']:,} pairs scored (>= the floor); load {r['load']:.1f}")
        if args.by_source:
            print(f"  family quality by source ({n:,} people): persons, true pairs, recall, "
                  "predicted pairs, precision")
            for row in r["fam_by_source"]:
                print(f"  {row['source']:>26} {row['persons']:>8,} {row['true_pairs'] or 0:>8,} "
                      f"{row['recall'] or 0:>6.3f} {row['predicted_pairs'] or 0:>8,} "
                      f"{row['precision'] or 0:>6.3f}")
    if args.febrl:
        febrl(args.febrl)


if __name__ == "__main__":
    main()
