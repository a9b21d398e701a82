"""The administrators' figures: the last pipeline run, quarantined rows, linkage quality.

Read from the two aggregate files the pipeline writes for the purpose (`run.json` and
`zone_a/quarantine_report.csv`), by the service only: the portal's web process has no
work folder. Counts of records from 1 to threshold - 1 are shown as `<10` (for the
default threshold of 10), never exactly: a quarantined row is a real record, and a count
of 1 in "police: invalid date of birth" points at someone. Zeros stay zeros.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from registry.settings import WorkFolder


def small(n: int | None, threshold: int) -> dict[str, Any]:
    """A count as published to administrators: the number, or null and `<threshold`."""
    if n is None:
        return {"value": None, "shown": ""}
    if 0 < n < threshold:
        return {"value": None, "shown": f"<{threshold}"}
    return {"value": int(n), "shown": f"{int(n):,}"}


def _run(work_dir: Path | None) -> dict[str, Any] | None:
    if work_dir is None:
        return None
    try:
        doc = json.loads(WorkFolder(Path(work_dir)).run_manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def run_summary(work_dir: Path | None, threshold: int) -> dict[str, Any] | None:
    """The last run: ids, stage timings, record counts and rows per source (small counts
    masked), or None when there is no run.json."""
    doc = _run(work_dir)
    if doc is None:
        return None
    counts = {
        str(k): small(v, threshold)
        for k, v in (doc.get("counts") or {}).items()
        if isinstance(v, int)
    }
    ingest = [
        {
            "source": row.get("source"),
            **{
                col: small(row.get(col), threshold)
                for col in ("rows_in", "accepted", "quarantined")
            },
        }
        for row in doc.get("ingest") or []
    ]
    return {
        "run_id": doc.get("run_id"),
        "release_id": doc.get("release_id"),
        "timings_s": {
            str(k): float(v)
            for k, v in (doc.get("timings_s") or {}).items()
            if isinstance(v, int | float)
        },
        "counts": counts,
        "ingest": ingest,
    }


def linkage_figures(work_dir: Path | None) -> dict[str, Any] | None:
    """Linkage quality against the synthetic ground truth (ratios only), or None."""
    doc = _run(work_dir)
    if doc is None:
        return None
    quality = doc.get("linkage_quality") or {}
    keep = ("precision", "recall", "f1", "split_persons", "merged_clusters")
    return {
        "run_id": doc.get("run_id"),
        "levels": {
            str(level): {k: float(q[k]) for k in keep if isinstance(q.get(k), int | float)}
            for level, q in quality.items()
            if isinstance(q, dict)
        },
    }


def quarantine_counts(work_dir: Path | None, threshold: int) -> list[dict[str, Any]] | None:
    """Rows quarantined by source and reason (counts only, small ones masked), or None."""
    if work_dir is None:
        return None
    path = WorkFolder(Path(work_dir)).quarantine_report
    if not path.exists():
        return None
    try:
        frame = pl.read_csv(
            path,
            columns=["source", "reason", "rows"],
            schema_overrides={"source": pl.String, "reason": pl.String, "rows": pl.Int64},
        )
    except (OSError, pl.exceptions.PolarsError):
        return None
    return [
        {"source": r["source"], "reason": r["reason"], "rows": small(r["rows"], threshold)}
        for r in frame.iter_rows(named=True)
    ]
