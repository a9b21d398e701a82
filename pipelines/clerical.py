"""Clerical review: people label a stratified sample of linkage decisions, and the labels
give precision and recall estimates with confidence intervals, with no ground truth.

A *decision* is one place where the threshold decides whether two groups of records
become one person: two groups already joined by deterministic links (a shared NHS
number, say) and the best-scoring record pair between them (`pipelines.link.
merge_decisions`). Decisions, not record pairs, are what review samples, because one
person with many records contributes thousands of easy pairs and almost no decisions.

Sampling is stratified by match weight: the range around the threshold is cut into bands
(the threshold is always a band edge), and each band is sampled equally, so the band
where the model is least sure gets as many labels as the bands where it is sure. Each
band's share of true matches is estimated from its labels and weighted by how many
decisions the band holds (a stratified estimator); the confidence intervals come from a
bootstrap within bands. Pairs never scored (outside every blocking rule) are invisible
here: recall is of the decisions the model saw.

Labels are zone A data (they point at identifiable records): they live in the work
folder's zone A, are carried from run to run, and are re-used whenever a later run meets
a decision between the same records. Who labelled and how many is audited; what they saw
is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

LABELS = ("match", "non-match", "unsure")
# File names in the work folder's zone A.
CLERICAL_DECISIONS = "linkage_decisions.parquet"
CLERICAL_LABELS = "clerical_labels.parquet"
LABEL_SCHEMA: dict[str, pl.DataType] = {
    "uid_l": pl.String(),
    "uid_r": pl.String(),
    "label": pl.String(),
    "labeller": pl.String(),
    "labelled_at": pl.Datetime("us", "UTC"),
}
DECISION_COLUMNS = ("uid_l", "uid_r", "match_probability", "match_weight")


class ReviewError(ValueError):
    """Clerical review input is missing or malformed."""


def weight_of(probability: float) -> float:
    """Match weight (log2 Bayes factor) of a match probability, as Splink reports it."""
    p = min(max(probability, 1e-12), 1 - 1e-12)
    return float(np.log2(p / (1 - p)))


def bands(threshold: float, *, width: float = 2.0, count: int = 4) -> list[float]:
    """Band edges in match weight: `count` bands of `width` either side of the threshold's
    weight, plus open bands beyond them (the threshold is always an edge)."""
    w = weight_of(threshold)
    return [w + width * i for i in range(-count, count + 1)]


def with_bands(decisions: pl.DataFrame, edges: list[float]) -> pl.DataFrame:
    """Each decision's band: 0 (at or below the lowest edge) .. len(edges) (above the
    highest); a weight equal to an edge falls in the band below it."""
    w = decisions["match_weight"].to_numpy()
    band = np.searchsorted(np.asarray(edges, dtype=float), w, side="left")
    return decisions.with_columns(pl.Series("band", band, dtype=pl.Int32))


def _key(df: pl.DataFrame) -> pl.DataFrame:
    """Order each pair's two ids so (a, b) and (b, a) are one key."""
    return df.with_columns(
        pl.min_horizontal("uid_l", "uid_r").alias("_a"),
        pl.max_horizontal("uid_l", "uid_r").alias("_b"),
    )


def sample_for_review(
    decisions: pl.DataFrame,
    labels: pl.DataFrame,
    threshold: float,
    *,
    per_band: int = 20,
    seed: int = 1,
) -> pl.DataFrame:
    """Up to `per_band` decisions from each band that have no label yet, nearest bands to
    the threshold first. Deterministic for a seed."""
    missing = [c for c in DECISION_COLUMNS if c not in decisions.columns]
    if missing:
        raise ReviewError(f"decisions need column(s) {missing}")
    edges = bands(threshold)
    banded = _key(with_bands(decisions, edges))
    done = _key(labels).select("_a", "_b")
    todo = banded.join(done, on=["_a", "_b"], how="anti")
    centre = len(edges) // 2
    parts = []
    for b in sorted(todo["band"].unique().to_list(), key=lambda x: abs(x - centre + 0.5)):
        sub = todo.filter(pl.col("band") == b)
        parts.append(sub.sample(min(per_band, sub.height), seed=seed))
    if not parts:
        return decisions.head(0).with_columns(pl.lit(0, pl.Int32).alias("band"))
    return pl.concat(parts).drop("_a", "_b")


def empty_labels() -> pl.DataFrame:
    return pl.DataFrame(schema=LABEL_SCHEMA)


def read_labels(path: Path) -> pl.DataFrame:
    """The labels file, or no labels; a malformed file is an error, never ignored."""
    if not path.exists():
        return empty_labels()
    try:
        df = pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise ReviewError(f"{path}: cannot read the clerical labels: {exc}") from None
    missing = set(LABEL_SCHEMA) - set(df.columns)
    if missing:
        raise ReviewError(f"{path}: clerical labels lack column(s) {sorted(missing)}")
    bad = df.filter(~pl.col("label").is_in(LABELS))
    if bad.height:
        raise ReviewError(f"{path}: {bad.height} label(s) are not one of {LABELS}")
    return df.select(list(LABEL_SCHEMA)).cast(pl.Schema(LABEL_SCHEMA))


def add_label(
    labels: pl.DataFrame, uid_l: str, uid_r: str, label: str, labeller: str
) -> pl.DataFrame:
    """The labels with this pair's label set (a later label replaces an earlier one)."""
    if label not in LABELS:
        raise ReviewError(f"a label is one of {LABELS}, got {label!r}")
    if not labeller.strip():
        raise ReviewError("the labeller's name is required")
    row = pl.DataFrame(
        {
            "uid_l": [uid_l],
            "uid_r": [uid_r],
            "label": [label],
            "labeller": [labeller.strip()],
            "labelled_at": [datetime.now(UTC)],
        },
        schema=LABEL_SCHEMA,
    )
    kept = _key(labels).join(_key(row).select("_a", "_b"), on=["_a", "_b"], how="anti")
    return pl.concat([kept.drop("_a", "_b"), row])


def write_labels(labels: pl.DataFrame, path: Path) -> None:
    """Atomically, owner-only: labels point at identifiable records."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    labels.write_parquet(tmp)
    tmp.chmod(0o600)
    tmp.replace(path)


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return {
            "value": round(self.value, 4),
            "low": round(self.low, 4),
            "high": round(self.high, 4),
        }


@dataclass(frozen=True)
class QualityEstimate:
    """Precision and recall of the decisions at the threshold, estimated from labels."""

    threshold: float
    precision: Estimate | None  # None: no labels above the threshold
    recall: Estimate | None  # None: no labels on either side
    labelled: int  # decisions with a match / non-match label
    unsure: int
    decisions: int
    by_band: pl.DataFrame  # band, decisions, labelled, matches, share

    def to_dict(self) -> dict[str, object]:
        return {
            "threshold": self.threshold,
            "precision": self.precision.to_dict() if self.precision else None,
            "recall": self.recall.to_dict() if self.recall else None,
            "labelled": self.labelled,
            "unsure": self.unsure,
            "decisions": self.decisions,
        }


def estimate_quality(
    decisions: pl.DataFrame,
    labels: pl.DataFrame,
    threshold: float,
    *,
    replicates: int = 2000,
    seed: int = 1,
    confidence: float = 0.95,
) -> QualityEstimate:
    """Stratified estimates of precision (share of decisions at or above the threshold
    that are true matches) and recall (true matches at or above it over all true matches
    among the decisions), with bootstrap confidence intervals. A band with no labels
    borrows the model's own mean probability (stated in `by_band`)."""
    edges = bands(threshold)
    banded = _key(with_bands(decisions, edges))
    lab = _key(labels).select("_a", "_b", "label")
    joined = banded.join(lab, on=["_a", "_b"], how="left")
    above_band = {i for i in range(len(edges) + 1) if i > len(edges) // 2}
    rows = []
    samples: dict[int, np.ndarray] = {}
    for b in range(len(edges) + 1):
        sub = joined.filter(pl.col("band") == b)
        known = sub.filter(pl.col("label").is_in(["match", "non-match"]))
        x = (known["label"] == "match").to_numpy().astype(float)
        samples[b] = x
        model_mean = sub["match_probability"].mean() if sub.height else 0.0
        share = float(x.mean()) if x.size else float(model_mean or 0.0)  # type: ignore[arg-type]
        rows.append(
            {
                "band": b,
                "above_threshold": b in above_band,
                "decisions": sub.height,
                "labelled": int(x.size),
                "matches": int(x.sum()),
                "share": share,
                "share_from": "labels" if x.size else "model",
            }
        )
    by_band = pl.DataFrame(rows)
    n = by_band["decisions"].to_numpy().astype(float)
    fallback = by_band["share"].to_numpy()
    above = np.array([b in above_band for b in range(len(edges) + 1)])

    def stats(shares: np.ndarray) -> tuple[float, float]:
        tp = float((n * shares)[above].sum())
        fn = float((n * shares)[~above].sum())
        n_above = float(n[above].sum())
        prec = tp / n_above if n_above else float("nan")
        rec = tp / (tp + fn) if tp + fn else float("nan")
        return prec, rec

    point = stats(fallback)
    rng = np.random.default_rng(seed)
    reps = np.empty((replicates, 2))
    for i in range(replicates):
        shares = fallback.copy()
        for b, x in samples.items():
            if x.size:
                shares[b] = rng.choice(x, size=x.size, replace=True).mean()
        reps[i] = stats(shares)
    lo_q, hi_q = (1 - confidence) / 2, 1 - (1 - confidence) / 2
    labelled_above = sum(samples[b].size for b in above_band)
    labelled_all = sum(x.size for x in samples.values())

    def est(j: int, have: bool) -> Estimate | None:
        if not have or np.isnan(point[j]):
            return None
        lo, hi = np.nanquantile(reps[:, j], [lo_q, hi_q])
        return Estimate(point[j], float(lo), float(hi))

    unsure = joined.filter(pl.col("label") == "unsure").height
    return QualityEstimate(
        threshold=threshold,
        precision=est(0, labelled_above > 0),
        recall=est(1, labelled_all > 0),
        labelled=labelled_all,
        unsure=unsure,
        decisions=decisions.height,
        by_band=by_band,
    )
