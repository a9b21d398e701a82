"""`portal linkage review` and `portal linkage estimate`: clerical review of linkage.

Review shows a stratified sample of the last run's merge decisions, two records side by
side, and asks whether they are the same person. It shows identifiable records, so it is
for the council's data stewards, on the server, with zone A access; what it writes (the
labels) stays in zone A. The audit log records who labelled how many, never what they
saw. Estimate prints precision and recall from the labels, with confidence intervals.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pipelines.clerical import (
    ReviewError,
    add_label,
    estimate_quality,
    read_labels,
    sample_for_review,
    write_labels,
)
from registry.settings import WorkFolder

linkage_app = typer.Typer(
    help="Clerical review of record linkage: label sampled decisions, estimate quality.",
    no_args_is_help=True,
)

SHOWN = ("source", "forename", "surname", "dob", "sex", "postcode", "address_line1")
ANSWERS = {"y": "match", "n": "non-match", "u": "unsure"}


def register(app: typer.Typer) -> None:
    app.add_typer(linkage_app, name="linkage")


def _threshold(work: Path) -> float:
    import json

    try:
        model = json.loads(WorkFolder(work).linkage_model.read_text())
    except (OSError, ValueError) as exc:
        raise ReviewError(
            f"cannot read {WorkFolder(work).linkage_model}: run the pipeline first ({exc})"
        ) from None
    return float(model["threshold"])


def _decisions(work: Path) -> pl.DataFrame:
    path = WorkFolder(work).clerical_decisions
    if not path.exists():
        raise ReviewError(
            f"no linkage decisions at {path}: run the pipeline first (they are kept with the "
            "linked records for the retention schedule's zone_a_working_copies_days; with 0 "
            "days a run keeps neither)"
        )
    return pl.read_parquet(path)


def _fail(console: Console, exc: Exception) -> None:
    console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
    raise typer.Exit(code=2)


@linkage_app.command("review")
def review(
    work: Annotated[Path, typer.Option(help="Pipeline working folder.")] = Path("data/work"),
    labeller: Annotated[
        str,
        typer.Option(
            envvar="USER",
            show_envvar=False,
            help="Your name (kept with each label and in the audit log; default: $USER).",
        ),
    ] = "",
    per_band: Annotated[int, typer.Option(help="Decisions to offer per weight band.")] = 20,
    store: Annotated[str | None, typer.Option(help="Store URL for the audit log.")] = None,
) -> None:
    """Label sampled linkage decisions: y (same person), n (different people), u (unsure),
    s (skip), q (quit and save)."""
    console = Console()
    try:
        threshold = _threshold(work)
        decisions = _decisions(work)
        labels_path = WorkFolder(work).clerical_labels
        labels = read_labels(labels_path)
        sample = sample_for_review(decisions, labels, threshold, per_band=per_band)
        records = pl.read_parquet(WorkFolder(work).linked_records).select("unique_id", *SHOWN)
    except (ReviewError, OSError) as exc:
        _fail(console, exc)
        return
    if not labeller.strip():
        _fail(console, ReviewError("--labeller is required"))
    console.print(
        f"{sample.height} decision(s) to review (threshold {threshold:.4f}); "
        "y = same person, n = different, u = unsure, s = skip, q = quit."
    )
    by_uid = {r["unique_id"]: r for r in records.iter_rows(named=True)}
    counts = {"match": 0, "non-match": 0, "unsure": 0}
    for i, d in enumerate(sample.iter_rows(named=True), start=1):
        left, right = by_uid.get(d["uid_l"]), by_uid.get(d["uid_r"])
        if left is None or right is None:
            continue
        t = Table(title=f"{i} of {sample.height}: match probability {d['match_probability']:.4f}")
        t.add_column("")
        t.add_column("record 1")
        t.add_column("record 2")
        for c in SHOWN:
            t.add_row(c, escape(str(left[c] or "")), escape(str(right[c] or "")))
        console.print(t)
        answer = typer.prompt("Same person? [y/n/u/s/q]", default="s").strip().lower()[:1]
        if answer == "q":
            break
        if answer not in ANSWERS:
            continue
        labels = add_label(labels, d["uid_l"], d["uid_r"], ANSWERS[answer], labeller)
        counts[ANSWERS[answer]] += 1
        write_labels(labels, labels_path)  # after every answer: nothing lost on Ctrl-C
    if sum(counts.values()):
        from pipelines.store import Store, default_store_url

        st = Store(store or default_store_url())
        try:
            st.audit(labeller.strip(), "clerical_review", {"labels": counts})
        finally:
            st.dispose()
    console.print(
        f"Saved {sum(counts.values())} label(s): {counts['match']} same, "
        f"{counts['non-match']} different, {counts['unsure']} unsure."
    )


@linkage_app.command("estimate")
def estimate(
    work: Annotated[Path, typer.Option(help="Pipeline working folder.")] = Path("data/work"),
) -> None:
    """Precision and recall of the last run's linkage, estimated from the labels."""
    console = Console()
    try:
        threshold = _threshold(work)
        q = estimate_quality(
            _decisions(work), read_labels(WorkFolder(work).clerical_labels), threshold
        )
    except (ReviewError, OSError) as exc:
        _fail(console, exc)
        return
    console.print(
        f"{q.labelled} labelled decision(s) ({q.unsure} unsure) of {q.decisions}; "
        f"threshold {threshold:.4f}"
    )
    for name, e in (("precision", q.precision), ("recall", q.recall)):
        if e is None:
            console.print(f"{name}: not enough labels yet")
        else:
            console.print(f"{name}: {e.value:.4f} (95% CI {e.low:.4f} to {e.high:.4f})")
