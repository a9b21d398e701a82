"""How the pipeline grows: seconds per stage and peak memory by county size and engine,
and a projection to 10M people.

Each (size, engine) runs as its own process (`--one`), so one run's caches and JVM do not
carry into the next; the parent samples the resident memory of the whole process tree
(the Python process and, on Spark, its JVM) every 0.2 s from /proc, so peak memory is
what the machine had to hold. The county is generated once per size, before timing.

On Spark the linkage applies the model the DuckDB run of the same size trained
(`--linkage-model`), as a council moving to a cluster would; ingest's row checks and
publish's cube counts run on Spark partitions (the same polars code, pipelines/
partitioned.py), each in a Spark session of its own whose start is inside the stage's
time; pseudonymise and derive run in polars on the driver either way (docs/scale.md).

Projection: for each stage, a power law t = a * n^b fitted by least squares on log-log
to the measured sizes, then evaluated at 10M; the same for CPU seconds and peak memory. With two sizes
the fit is exact through both points; the exponents are printed so the reader can judge.

Each line also gives the peak memory within each stage and the 1-minute load average (the
higher of start and end): on a shared machine a figure means little without it.

Usage: python benchmarks/bench_scale.py [--sizes 100000,300000,1000000] [--engines duckdb,spark]
       [--raw 1000000=/tmp/scale1m/raw ...] [--memory-limit 2GB]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

STAGES = ("ingest", "link", "pseudonymise", "derive", "publish", "write")
AS_AT = date(2026, 3, 31)


def _tree_sum(root: int, value: Callable[[list[str]], int]) -> int:
    """`value` of each process's /proc stat fields (after the name), summed over `root`
    and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    values: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        values[pid] = value(fields)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += values.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total


def _tree_rss_mb(root: int) -> float:
    """Resident memory of `root` and all its descendants, in MB."""
    page = os.sysconf("SC_PAGE_SIZE")
    return _tree_sum(root, lambda fields: int(fields[21]) * page) / 1e6


def _cpu_seconds() -> float:
    """CPU seconds of this process and every process under it, live or finished: on Spark
    the work is done by the JVM and its Python workers, which run beside this process
    until it exits, so its own times (os.times) would leave them out. Each live process
    counts its own time and that of the children it has waited for (Linux /proc)."""
    # utime, stime, cutime, cstime (fields 14-17 of stat; 12-15 after the name)
    ticks = _tree_sum(os.getpid(), lambda fields: sum(int(v) for v in fields[11:15]))
    return ticks / os.sysconf("SC_CLK_TCK")


def run_one(
    raw: Path, work: Path, engine: str, model: Path | None, out: Path, memory_limit: str
) -> None:
    """One pipeline run (the child process): writes its stage timings to `out`."""
    from anonymise.pseudonymise import MasterKey
    from pipelines.run import run_pipeline
    from pipelines.store import Store

    store = Store(f"sqlite:///{work.parent / (work.name + '.sqlite')}", upgrade=True)
    trained = json.loads(model.read_text()) if model else None
    # Wall-clock end of each stage, so the parent can split its memory samples by stage,
    # and the CPU seconds at that point (every thread, DuckDB's included, and every child
    # process: publishing's second hashing process, Spark's JVM and Python workers): on a
    # shared machine CPU time says more about the work than wall time does.
    ends: dict[str, float] = {"start": time.time()}
    cpu: dict[str, float] = {"start": _cpu_seconds()}

    def stage_done(name: str) -> None:
        ends[name], cpu[name] = time.time(), _cpu_seconds()

    t = time.perf_counter()
    r = run_pipeline(raw, work, MasterKey(b"m" * 32, "environment"), as_at=AS_AT, store=store,
                     sdc_secret=b"s" * 32, accept_unmatched_objections="all", keep_zone_a=True,
                     engine=engine, linkage_model=trained, memory_limit=memory_limit,
                     after_stage=stage_done)  # fmt: skip
    timings: dict[str, object] = {k: round(v, 2) for k, v in r.timings.items()}
    timings["total"] = round(time.perf_counter() - t, 2)
    timings["ends"] = ends
    timings["cpu"] = cpu
    out.write_text(json.dumps(timings))
    store.dispose()


def measure(
    raw: Path, work: Path, engine: str, model: Path | None, memory_limit: str
) -> dict[str, float]:
    out = work.parent / f"{work.name}.timings.json"
    cmd = [sys.executable, __file__, "--one", str(raw), str(work), engine, str(model or ""),
           str(out), memory_limit]  # fmt: skip
    proc = subprocess.Popen(cmd)
    samples: list[tuple[float, float]] = []  # (wall clock, MB)
    load = os.getloadavg()[0]
    while proc.poll() is None:
        samples.append((time.time(), _tree_rss_mb(proc.pid)))
        time.sleep(0.2)
    if proc.returncode != 0:
        raise SystemExit(f"run failed: {engine} on {raw} (exit {proc.returncode})")
    got = json.loads(out.read_text())
    ends: dict[str, float] = got.pop("ends")
    cpu: dict[str, float] = got.pop("cpu")
    timings: dict[str, float] = got
    timings["peak_mb"] = round(max(mb for _, mb in samples))
    timings["load"] = round(max(load, os.getloadavg()[0]), 1)
    # Peak memory within each stage: the samples between the previous stage's end and its own.
    start, cpu_start = ends.pop("start"), cpu.pop("start")
    for name, end in sorted(ends.items(), key=lambda kv: kv[1]):
        inside = [mb for at, mb in samples if start <= at <= end]
        timings[f"peak_mb.{name}"] = round(max(inside)) if inside else 0
        timings[f"cpu.{name}"] = round(cpu[name] - cpu_start, 1)
        start, cpu_start = end, cpu[name]
    return timings


def project(sizes: list[int], values: list[float], target: int) -> tuple[float, float]:
    """Least-squares power law through (size, value): (value at target, exponent)."""
    pts = [(math.log(n), math.log(v)) for n, v in zip(sizes, values, strict=True) if v > 0]
    if len(pts) < 2:
        return float("nan"), float("nan")
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    b = sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)
    a = my - b * mx
    return math.exp(a + b * math.log(target)), b


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        raw, work, engine, model, out, memory_limit = sys.argv[2:8]
        run_one(
            Path(raw), Path(work), engine, Path(model) if model else None, Path(out), memory_limit
        )
        return
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="100000,300000,1000000")
    ap.add_argument("--engines", default="duckdb,spark")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--raw", action="append", default=[], metavar="N=DIR",
                    help="use the county already generated in DIR for size N (repeatable): "
                    "a 1M county takes minutes to generate")  # fmt: skip
    ap.add_argument("--memory-limit", default="2GB", help="DuckDB's cap (portal run's)")
    args = ap.parse_args()
    given = {int(n): Path(d) for n, d in (r.split("=", 1) for r in args.raw)}
    sizes = [int(s) for s in args.sizes.split(",")]
    engines = args.engines.split(",")
    from synthetic.generator import generate_county

    results: dict[str, dict[int, dict[str, float]]] = {e: {} for e in engines}
    with tempfile.TemporaryDirectory() as d:
        for n in sizes:
            raw = given.get(n) or Path(d) / f"raw{n}"
            if n not in given:
                generate_county(n, args.seed, raw)
            model: Path | None = None
            for engine in engines:
                work = Path(d) / f"work-{engine}-{n}"
                got = measure(raw, work, engine, model if engine == "spark" else None,
                              args.memory_limit)  # fmt: skip
                got["cpu.total"] = round(sum(got.get(f"cpu.{k}", 0) for k in STAGES), 1)
                results[engine][n] = got
                if engine == "duckdb":
                    model = work / "zone_a" / "linkage_model.json"
                print(f"{engine:>6} {n:>9,}: " + ", ".join(
                    f"{k} {got.get(k, 0):.1f}" for k in (*STAGES, "total")
                ) + f" s; peak {got['peak_mb']:,.0f} MB (" + ", ".join(
                    f"{k} {got.get(f'peak_mb.{k}', 0):,.0f}" for k in STAGES
                ) + "; CPU s: " + ", ".join(f"{k} {got.get(f'cpu.{k}', 0):.1f}" for k in STAGES)
                + f"); load {got['load']}", flush=True)  # fmt: skip
    print(f"\n| engine | people | {' | '.join(STAGES)} | total s | peak MB |")
    print("|---|---:|" + "---:|" * (len(STAGES) + 2))
    for engine, by_size in results.items():
        for n, got in by_size.items():
            cells = " | ".join(f"{got.get(s, 0):.1f}" for s in STAGES)
            print(f"| {engine} | {n:,} | {cells} | {got['total']:.1f} | {got['peak_mb']:,.0f} |")
    print(f"\nCPU seconds (every thread of the run):\n| engine | people | {' | '.join(STAGES)} "
          "| total CPU s | load |")  # fmt: skip
    print("|---|---:|" + "---:|" * (len(STAGES) + 2))
    for engine, by_size in results.items():
        for n, got in by_size.items():
            cells = " | ".join(f"{got.get(f'cpu.{s}', 0):.1f}" for s in STAGES)
            print(f"| {engine} | {n:,} | {cells} | {got['cpu.total']:.1f} | {got['load']} |")
    print("\nProjection to 10,000,000 people (power law fitted to the sizes above):")
    for engine, by_size in results.items():
        ns = sorted(by_size)
        if len(ns) < 2:
            print(f"  {engine}: needs two sizes or more")
            continue
        # Wall seconds, CPU seconds (steadier when other work shares the machine), memory.
        cpu_keys = [f"cpu.{k}" for k in (*STAGES, "total")]
        for key in (*STAGES, "total", *cpu_keys, "peak_mb"):
            value, b = project(ns, [by_size[n].get(key, 0) for n in ns], 10_000_000)
            unit = "MB" if key == "peak_mb" else "CPU s" if key.startswith("cpu.") else "s"
            print(f"  {engine:>6} {key:>13}: {value:12,.0f} {unit}  (grows as n^{b:.2f})")


if __name__ == "__main__":
    main()
