"""Supporting Families payment-by-results claims (the rules in `pipelines.claims`)."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from pipelines.claims import claim_review
from pipelines.derive.common import (
    GEO,
    SUSTAIN_DAYS,
    TIME,
    ZoneBFrames,
    _in_window,
    _label,
    _memo,
    _per_family,
    _select,
    _unit,
    time_dims,
)
from pipelines.derive.early_help import (
    _eh_families,
    need_outcomes,
)
from registry.codes import (
    NEED_LABELS,
)


def _claim_review(zb: ZoneBFrames) -> pl.DataFrame:
    """Family episodes due a claim review, with each claim rule's verdict
    (`pipelines.claims.claim_review`)."""
    return _memo(
        zb,
        "claim_review",
        lambda z: claim_review(
            _eh_families(z), need_outcomes(z), as_at=z.as_at, sustain_days=SUSTAIN_DAYS
        ),
    )


CLAIM_UNIT = "sfr"  # one unit per family episode reviewed: every claim measure shares it


def sf_claim_reviews(zb: ZoneBFrames) -> pl.DataFrame:
    return _per_family(_claim_review(zb), zb, at="review_date", prefix=CLAIM_UNIT)


def _rule_met(key: str) -> Callable[[ZoneBFrames], pl.DataFrame]:
    def build(zb: ZoneBFrames) -> pl.DataFrame:
        met = _claim_review(zb).filter(pl.col(key))
        return _per_family(met, zb, at="review_date", prefix=CLAIM_UNIT)

    build.__name__ = f"sf_rule_{key}"
    return build


def sf_claims(zb: ZoneBFrames) -> pl.DataFrame:
    """Successful family outcomes: the family's first episode meeting every claim rule."""
    claimed = _claim_review(zb).filter(pl.col("claim"))
    return _per_family(claimed, zb, at="review_date", prefix=CLAIM_UNIT)


def _reviewed_needs(zb: ZoneBFrames) -> pl.DataFrame:
    """One row per need of each family episode due a claim review, with its outcome."""
    review = _claim_review(zb).select("family_id", "episode_id", "review_date", "locality", "ward")
    needs = need_outcomes(zb).select("episode_id", "need", "positive")
    return review.join(needs, on="episode_id", how="inner")


def _need_rows(rows: pl.DataFrame, zb: ZoneBFrames) -> pl.DataFrame:
    rows = _in_window(rows, "review_date", zb, "early_help")
    df = rows.with_columns(
        *time_dims("review_date"),
        _unit("sfrn", pl.col("family_id"), pl.col("episode_id"), pl.col("need")),
    ).with_columns(_label("need", NEED_LABELS).alias("need"))
    return _select(df, (*GEO, *TIME, "need"))


def sf_needs_reviewed(zb: ZoneBFrames) -> pl.DataFrame:
    return _need_rows(_reviewed_needs(zb), zb)


def sf_needs_sustained(zb: ZoneBFrames) -> pl.DataFrame:
    return _need_rows(_reviewed_needs(zb).filter(pl.col("positive")), zb)
