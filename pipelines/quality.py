"""Linkage quality against the synthetic ground truth.

Pairwise figures count pairs of records: a true pair is two records of the
same true person; a predicted pair is two records given the same person key.
Computed from the contingency table of (predicted cluster, true person), so
no pair is ever materialised.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl


@dataclass(frozen=True)
class LinkageQuality:
    records: int
    precision: float
    recall: float
    f1: float
    true_persons: int
    predicted_persons: int
    split_persons: float  # share of true persons spread over more than one cluster
    merged_clusters: float  # share of clusters holding more than one true person

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _pairs(n: pl.Expr) -> pl.Expr:
    return (n * (n - 1) / 2).sum()


def pairwise_quality(assigned: pl.DataFrame, *, cluster: str, truth: str) -> LinkageQuality:
    """`assigned` has one row per record with a predicted `cluster` and a `truth` label."""
    cont = assigned.group_by(cluster, truth).len("_n")
    tp = cont.select(_pairs(pl.col("_n").cast(pl.Float64))).item()
    pred = assigned.group_by(cluster).len("_n").select(_pairs(pl.col("_n").cast(pl.Float64))).item()
    true = assigned.group_by(truth).len("_n").select(_pairs(pl.col("_n").cast(pl.Float64))).item()
    precision = tp / pred if pred else 1.0
    recall = tp / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    per_truth = cont.group_by(truth).len("_k")
    per_cluster = cont.group_by(cluster).len("_k")
    return LinkageQuality(
        records=assigned.height,
        precision=precision,
        recall=recall,
        f1=f1,
        true_persons=per_truth.height,
        predicted_persons=per_cluster.height,
        split_persons=per_truth.filter(pl.col("_k") > 1).height / max(per_truth.height, 1),
        merged_clusters=per_cluster.filter(pl.col("_k") > 1).height / max(per_cluster.height, 1),
    )


def load_truth(raw_dir: Path) -> pl.DataFrame | None:
    """The truth map of a synthetic county, or None for real extracts (no truth exists)."""
    for ext in ("csv", "parquet"):
        p = raw_dir / "truth" / f"records.{ext}"
        if p.exists():
            df = pl.read_csv(p, infer_schema=False) if ext == "csv" else pl.read_parquet(p)
            return df.select(
                pl.concat_str("source", pl.lit(":"), "record_id").alias("unique_id"),
                "person_id",
                "family_id",
            )
    return None


def linkage_quality(records: pl.DataFrame, truth: pl.DataFrame) -> dict[str, LinkageQuality]:
    """Person and family quality for linked records (unique_id, person_key, family_key)."""
    joined = records.select("unique_id", "person_key", "family_key").join(
        truth, on="unique_id", how="inner"
    )
    persons = pairwise_quality(joined, cluster="person_key", truth="person_id")
    # Families are judged on persons: one row per predicted person, labelled with its
    # majority true person's family.
    per_person = (
        joined.group_by("person_key", "family_key", "family_id")
        .len("_n")
        .sort("_n", descending=True)
        .unique("person_key", keep="first")
    )
    families = pairwise_quality(per_person, cluster="family_key", truth="family_id")
    return {"persons": persons, "families": families}


def family_quality_by_source(records: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    """Family linkage quality seen from each source: among pairs of persons with at least
    one record of the source, the recall of true family pairs and the precision of
    predicted ones (source, persons, true_pairs, recall, predicted_pairs, precision).

    A source whose people link into families well (Early Help, with its family reference)
    beside one whose people do not (a source with a postcode but no address) shows where
    split families come from."""
    joined = records.select("unique_id", "source", "person_key", "family_key").join(
        truth, on="unique_id", how="inner"
    )
    per = (
        joined.group_by("person_key", "family_key", "family_id")
        .len("_n")
        .sort("_n", descending=True)
        .unique("person_key", keep="first")
        .select("person_key", "family_key", "family_id")
    )
    src = joined.select("person_key", "source").unique()

    def pairs(on: str, other: str) -> pl.DataFrame:
        p = per.join(per, on=on, suffix="_r").filter(pl.col("person_key") < pl.col("person_key_r"))
        return p.select(
            pl.col("person_key").alias("a"),
            pl.col("person_key_r").alias("b"),
            (pl.col(other) == pl.col(f"{other}_r")).alias("ok"),
        )

    def by_source(p: pl.DataFrame) -> pl.DataFrame:
        ends = pl.concat(
            [
                p.join(src, left_on="a", right_on="person_key"),
                p.join(src, left_on="b", right_on="person_key"),
            ]
        ).unique(["a", "b", "source"])
        return ends.group_by("source").agg(
            pl.len().alias("pairs"), pl.col("ok").mean().alias("rate")
        )

    recall = by_source(pairs("family_id", "family_key")).rename(
        {"pairs": "true_pairs", "rate": "recall"}
    )
    precision = by_source(pairs("family_key", "family_id")).rename(
        {"pairs": "predicted_pairs", "rate": "precision"}
    )
    persons = src.group_by("source").agg(pl.len().alias("persons"))
    return (
        persons.join(recall, on="source", how="left")
        .join(precision, on="source", how="left")
        .sort("source")
    )
