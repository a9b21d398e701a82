"""Risk engine vs pycanon, side by side in one run: same values, and how much faster.

    .venv/bin/python benchmarks/bench_risk.py                      # 10k, 200k, 1M rows
    .venv/bin/python benchmarks/bench_risk.py --sizes 10000 --pycanon-cap 60

The data has five raw quasi-identifiers (age 0-99, sex, 300 districts, 18 ethnic
groups, IMD decile: about a million possible combinations), so nearly every record is
in a class of its own: the case where pycanon, which loops over classes in Python, is
slowest. pycanon runs in a forked child process so a call can be stopped at
``--pycanon-cap`` seconds; ``--pycanon-skip`` names size:measure pairs not to run at all
(by default t at 1M rows, which ANCHORS.md puts at about 7 minutes). Our times are the
median of ``--repeats`` warm runs; pycanon's is one run (it is slow enough to be stable).

``--whole-process ROWS`` times instead what a user waits for: ``portal risk FILE --qi ...
--sensitive need --json`` (every measure, from reading the CSV to printing) against a
Python process that reads the same CSV with pandas and asks pycanon for k and l only,
interleaved, ``--repeats`` rounds, with the load average. Target: at 200,000 rows,
``portal risk`` at least 10x faster.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import queue as queue_module
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anonymise import risk  # noqa: E402

QI = ["age", "sex", "district", "ethnicity", "imd_decile"]
SENSITIVE = "need"


def make_data(rows: int, seed: int = 11, *, coarse: bool = False) -> pl.DataFrame:
    """Five raw QIs (about 1.08M combinations), or with ``coarse`` already generalised
    ones (4,000 combinations) so that k, l and t are not trivially 1, 1 and near 1."""
    rng = np.random.default_rng(seed)
    ages, districts, groups = (20, 10, 5) if coarse else (100, 300, 18)
    return pl.DataFrame(
        {
            "age": rng.integers(0, ages, rows),
            "sex": rng.choice(["F", "M"], rows),
            "district": pl.Series([f"D{i:03d}" for i in rng.integers(0, districts, rows)]),
            "ethnicity": pl.Series([f"E{i:02d}" for i in rng.integers(0, groups, rows)]),
            "imd_decile": rng.integers(1, 3 if coarse else 11, rows),
            SENSITIVE: pl.Series([f"N{i:02d}" for i in rng.integers(0, 12, rows)]),
        }
    )


OURS: dict[str, Callable[[pl.DataFrame], Any]] = {
    "k": lambda df: risk.k_anonymity(df, QI),
    "l": lambda df: risk.l_diversity(df, QI, SENSITIVE),
    "t": lambda df: risk.t_closeness(df, QI, SENSITIVE),
    "entropy-l": lambda df: risk.entropy_l_diversity(df, QI, SENSITIVE),
}


def _pycanon_call(measure: str, frame: Any) -> Any:
    from pycanon import anonymity

    if measure == "k":
        return anonymity.k_anonymity(frame, QI)
    if measure == "l":
        return anonymity.l_diversity(frame, QI, [SENSITIVE])
    if measure == "t":
        return anonymity.t_closeness(frame, QI, [SENSITIVE])
    return anonymity.entropy_l_diversity(frame, QI, [SENSITIVE])


_SHARED: dict[str, Any] = {}


def _child(measure: str, queue: Any) -> None:
    started = time.perf_counter()
    value = _pycanon_call(measure, _SHARED["frame"])
    queue.put((time.perf_counter() - started, value))


def run_pycanon(measure: str, frame: Any, cap: float) -> tuple[float | None, Any]:
    """(seconds, value), or (None, None) when the call passed the cap and was stopped."""
    _SHARED["frame"] = frame  # the forked child inherits it: no pickling of a large frame
    context = mp.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child, args=(measure, queue))
    child.start()
    # Read before joining: a child blocks on exit until its queued result is consumed.
    try:
        seconds, value = queue.get(timeout=cap)
    except queue_module.Empty:
        child.terminate()
        child.join()
        return None, None
    child.join()
    return seconds, value


def time_ours(
    fn: Callable[[pl.DataFrame], Any], df: pl.DataFrame, repeats: int
) -> tuple[float, Any]:
    value = fn(df)  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        value = fn(df)
        times.append(time.perf_counter() - started)
    return statistics.median(times), value


def same(ours: Any, theirs: Any) -> str:
    if ours is None or theirs is None:
        return "–"
    if isinstance(theirs, int | np.integer) and isinstance(ours, float):
        # pycanon truncates entropy-l to an integer (after a rounding error)
        return "yes (truncated)" if int(theirs) in {int(ours - 1e-9), int(ours + 1e-9)} else "NO"
    if isinstance(ours, float) or isinstance(theirs, float):
        return "yes" if abs(float(ours) - float(theirs)) <= 1e-9 else "NO"
    return "yes" if ours == theirs else "NO"


def whole_process(rows: int, repeats: int) -> None:
    """`portal risk` and pycanon's k and l as whole processes on one CSV (see the module's
    docstring)."""
    import os
    import subprocess
    import tempfile

    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "records.csv"
        make_data(rows).write_csv(csv)
        ours = [sys.executable, "-m", "portal.cli", "risk", str(csv), "--qi", ",".join(QI)]
        ours += ["--sensitive", SENSITIVE, "--json"]
        theirs_code = (
            "import pandas as pd\nfrom pycanon import anonymity\n"
            f"df = pd.read_csv({str(csv)!r})\n"
            f"print(anonymity.k_anonymity(df, {QI!r}), "
            f"anonymity.l_diversity(df, {QI!r}, [{SENSITIVE!r}]))"
        )
        cases = {
            "portal risk (every measure, JSON)": ours,
            "pandas + pycanon k and l": [sys.executable, "-c", theirs_code],
        }
        for cmd in cases.values():  # untimed: a failing case stops the benchmark
            subprocess.run(cmd, cwd=root, check=True, stdout=subprocess.DEVNULL)
        times: dict[str, list[float]] = {name: [] for name in cases}
        load = [os.getloadavg()[0]]
        for _ in range(repeats):
            for name, cmd in cases.items():
                t0 = time.perf_counter()
                subprocess.run(cmd, cwd=root, check=True, stdout=subprocess.DEVNULL)
                times[name].append(time.perf_counter() - t0)
            load.append(os.getloadavg()[0])
    print(
        f"{rows:,} rows, {repeats} interleaved rounds, load average {min(load):.1f}-{max(load):.1f}"
    )
    for name, ts in times.items():
        print(f"{name:40} median {statistics.median(ts):7.3f} s  min {min(ts):7.3f} s")
    ratio = statistics.median(times["pandas + pycanon k and l"]) / statistics.median(
        times["portal risk (every measure, JSON)"]
    )
    print(f"portal risk is {ratio:.1f}x faster (medians), target >= 10x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,200000,1000000")
    parser.add_argument("--measures", default="k,l,t", help="any of k,l,t,entropy-l")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pycanon-cap", type=float, default=900.0, help="seconds per call")
    parser.add_argument(
        "--pycanon-skip",
        default="1000000:t",
        help="comma list of SIZE:MEASURE (or SIZE) where pycanon is not run",
    )
    parser.add_argument("--no-pycanon", action="store_true")
    parser.add_argument(
        "--coarse", action="store_true", help="4,000 possible classes instead of about a million"
    )
    parser.add_argument(
        "--whole-process", type=int, metavar="ROWS", help="time whole processes instead"
    )
    args = parser.parse_args()
    if args.whole_process:
        whole_process(args.whole_process, args.repeats)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    measures = [m.strip() for m in args.measures.split(",") if m.strip()]
    skips = {s.strip() for s in args.pycanon_skip.split(",") if s.strip()}

    print(f"polars {pl.__version__}; numpy {np.__version__}; cores: {mp.cpu_count()}")
    header = (
        "| rows | classes | measure | ours (s) | pycanon (s) | ours | pycanon | same | speed-up |"
    )
    print(header)
    print("|" + "---|" * 9)
    for rows in sizes:
        df = make_data(rows, coarse=args.coarse)
        classes = df.select(QI).unique().height
        frame = df.to_pandas().reset_index(drop=True)  # pycanon needs a RangeIndex
        for measure in measures:
            ours_s, ours_v = time_ours(OURS[measure], df, args.repeats)
            skipped = args.no_pycanon or str(rows) in skips or f"{rows}:{measure}" in skips
            if skipped:
                py_s, py_v, py_text, ratio = None, None, "skipped", "–"
            else:
                py_s, py_v = run_pycanon(measure, frame, args.pycanon_cap)
                if py_s is None:
                    py_text = f"> {args.pycanon_cap:.0f} (stopped)"
                    ratio = f"> {args.pycanon_cap / ours_s:,.0f}×"
                else:
                    py_text = f"{py_s:.3f}"
                    ratio = f"{py_s / ours_s:,.0f}×"
            ours_text = f"{ours_v:.6g}" if isinstance(ours_v, float) else str(ours_v)
            py_value = "–" if py_v is None else (f"{py_v:.6g}" if isinstance(py_v, float) else py_v)
            print(
                f"| {rows:,} | {classes:,} | {measure} | {ours_s:.4f} | {py_text} | {ours_text} "
                f"| {py_value} | {same(ours_v, py_v)} | {ratio} |",
                flush=True,
            )
        report_s, _ = time_ours(lambda d: risk.risk_report(d, QI, SENSITIVE), df, args.repeats)
        print(
            f"| {rows:,} | {classes:,} | full report (all measures) | {report_s:.4f} "
            f"| not run | | | | |",
            flush=True,
        )


if __name__ == "__main__":
    main()
