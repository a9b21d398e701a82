"""Optimal anonymisation vs anjana (and ARX's published figures), side by side in one run.

    .venv/bin/python benchmarks/bench_anonymise.py
    .venv/bin/python benchmarks/bench_anonymise.py --verify      # also check optimality exhaustively

Scenarios (ARX 3.9.2 figures from /work/shared/ANCHORS.md, measured on the same
machine class; ARX itself is Java and is not run here):

* Adult (30,162 rows, 9 QIs), k=5, 2% suppression: ARX's optimum [0,3,0,2,2,1,1,2,0],
  Loss 0.313713, 506 suppressed, 222 classes, 1.1-1.3 s warm. anjana runs in the same
  process on the same data and hierarchies, and its output is scored with the same
  metric (``anonymise.loss.information_loss``).
* Adult, occupation sensitive, k=5 + distinct 3-diversity: ARX Loss 0.246912, 0.83 s.
* Adult x33 (995,346 rows), k=50: ARX 1.95 s warm.

Our times are for ``anonymise()`` on a polars frame already in memory (encoding,
search and building the output all included); the median of ``--repeats`` warm runs
and the first (cold) run are both shown.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import multiprocessing as mp
import queue as queue_module
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anonymise.hierarchies import Hierarchy, load_arx_hierarchies  # noqa: E402
from anonymise.lattice import AnonymisationResult, anonymise  # noqa: E402
from anonymise.loss import information_loss  # noqa: E402

QI = [
    "sex", "age", "race", "marital-status", "education",
    "native-country", "workclass", "occupation", "salary-class",
]  # fmt: skip
ARX = {
    "adult k=5": ("[0, 3, 0, 2, 2, 1, 1, 2, 0]", 0.313713, 506, 222, "1.1-1.3 (3.2-4.0 cold)"),
    "adult k=5, l=3 (occupation)": ("–", 0.246912, None, None, "0.83"),
    "adult x33 k=50": ("–", None, None, None, "1.95 (4.7 cold)"),
}


def timed(repeats: int, fn: Any) -> tuple[float, float, Any]:
    """(first run, median of the warm runs, last result)."""
    started = time.perf_counter()
    result = fn()
    first = time.perf_counter() - started
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return first, statistics.median(times) if times else first, result


def verify_optimum(
    df: pl.DataFrame, qi: list[str], hierarchies: dict[str, Hierarchy], result: AnonymisationResult
) -> str:
    """Evaluate every node of the lattice with the same engine; the search must match the best."""
    from anonymise import lattice

    settings = result.settings
    models = lattice._Models(
        k=settings["k"],
        l=settings["l"],
        l_variant=settings["l_variant"] or "distinct",
        c=settings["c"],
        t=settings["t"],
        t_ordered=settings["t_distance"] == "ordered",
        limit=settings["suppression_limit_records"],
    )
    sensitive = settings["sensitive"] if (settings["l"] or settings["t"]) else None
    engine = lattice._Engine(df, qi, hierarchies, sensitive, models, settings["metric"])
    best = (np.inf, None)
    shape = [hierarchies[q].height + 1 for q in qi]
    for levels in itertools.product(*[range(s) for s in shape]):
        evaluation = engine.evaluate(levels)
        if evaluation.passes and evaluation.objective < best[0] - 1e-12:
            best = (evaluation.objective, levels)
    ok = abs(best[0] - result.loss.loss) < 1e-9
    return f"{'optimal' if ok else 'NOT OPTIMAL'} (exhaustive best {best[0]:.6f} at {list(best[1] or [])})"


def _anjana_child(frame: Any, k: int, supp: float, hierarchies: dict, queue: Any) -> None:
    from anjana.anonymity import _k_anonymity

    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        data, suppressed, levels = _k_anonymity.k_anonymity_inner(
            frame, [], QI, k, supp, hierarchies
        )
    queue.put((time.perf_counter() - started, data, suppressed, levels))


def run_anjana(
    df: pl.DataFrame, hierarchies: dict[str, Hierarchy], k: int, supp_percent: float, cap: float
):
    arx_like = {
        q: {i: h.table[c].to_list() for i, c in enumerate(h.table.columns)}
        for q, h in hierarchies.items()
    }
    context = mp.get_context("fork")
    queue = context.Queue()
    child = context.Process(
        target=_anjana_child, args=(df.to_pandas(), k, supp_percent, arx_like, queue)
    )
    child.start()
    # Read before joining: a child blocks on exit until its queued result is consumed.
    try:
        outcome = queue.get(timeout=cap)
    except queue_module.Empty:
        child.terminate()
        child.join()
        return None
    child.join()
    return outcome


def row(name: str, tool: str, seconds: str, transformation: str, loss: Any, suppressed: Any,
        classes: Any, extra: str = "") -> str:  # fmt: skip
    loss_text = f"{loss:.6f}" if isinstance(loss, float) else (loss or "–")
    sup = f"{suppressed:,}" if isinstance(suppressed, int) else (suppressed or "–")
    cls = f"{classes:,}" if isinstance(classes, int) else (classes or "–")
    return f"| {name} | {tool} | {seconds} | {transformation} | {loss_text} | {sup} | {cls} | {extra} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="/work/shared/benchmarks/adult")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--anjana-cap", type=float, default=600.0, help="seconds")
    parser.add_argument("--no-anjana", action="store_true")
    parser.add_argument("--skip-big", action="store_true", help="skip Adult x33")
    parser.add_argument("--verify", action="store_true", help="exhaustive optimality check")
    args = parser.parse_args()
    folder = Path(args.data)

    started = time.perf_counter()
    adult = pl.read_csv(folder / "adult.csv", separator=";", infer_schema=False)
    read_seconds = time.perf_counter() - started
    hierarchies = load_arx_hierarchies(folder, names=QI)
    print(
        f"polars {pl.__version__}; cores: {mp.cpu_count()}; Adult CSV read in {read_seconds:.3f} s"
    )
    print()
    print(
        "| scenario | tool | seconds | transformation | ARX Loss | suppressed | classes | notes |"
    )
    print("|" + "---|" * 8)

    def ours(name: str, df: pl.DataFrame, qi: list[str], **options: Any) -> None:
        first, warm, result = timed(args.repeats, lambda: anonymise(df, qi, hierarchies, **options))
        vector = str([result.transformation[q] for q in qi])
        note = f"{result.nodes_evaluated:,}/{result.lattice_size:,} nodes evaluated; cold {first:.2f} s"
        if args.verify:
            note += "; " + verify_optimum(df, qi, hierarchies, result)
        print(row(name, "ours", f"{warm:.3f}", vector, result.loss.loss, result.suppressed,
                  result.loss.classes, note), flush=True)  # fmt: skip
        transformation, loss, suppressed, classes, seconds = ARX[name]
        print(row(name, "ARX 3.9.2 (ANCHORS.md)", seconds, transformation, loss, suppressed,
                  classes, "not run here"), flush=True)  # fmt: skip

    ours("adult k=5", adult, QI, k=5, suppression_limit=0.02)
    if not args.no_anjana:
        outcome = run_anjana(adult, hierarchies, 5, 2.0, args.anjana_cap)
        if outcome is None:
            print(row("adult k=5", "anjana 1.2.3", f"> {args.anjana_cap:.0f}", "–", "–", "–", "–",
                      "stopped at the cap"))  # fmt: skip
        else:
            seconds, data, suppressed, levels = outcome
            output = pl.from_pandas(data).select(pl.all().cast(pl.String))
            transformation = {q: int(levels.get(q, 0)) for q in QI}
            scored = information_loss(
                output, records=adult.height, quasi_ids=QI, hierarchies=hierarchies,
                transformation=transformation, k=5,
            )  # fmt: skip
            reached = output.group_by(QI).len()["len"].min() if output.height else None
            print(row("adult k=5", "anjana 1.2.3", f"{seconds:.3f}",
                      str([transformation[q] for q in QI]), scored.loss, scored.suppressed,
                      scored.classes, f"k reached {reached}; Datafly-style greedy"), flush=True)  # fmt: skip

    qi8 = [q for q in QI if q != "occupation"]
    ours("adult k=5, l=3 (occupation)", adult, qi8, k=5, l=3, sensitive="occupation")

    if not args.skip_big:
        big = pl.concat([adult] * 33, rechunk=True)
        ours("adult x33 k=50", big, QI, k=50, suppression_limit=0.02)


if __name__ == "__main__":
    main()
