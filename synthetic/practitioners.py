"""Lead practitioners for the synthetic county's Early Help episodes.

A Supporting Families claim needs a lead practitioner for the family (programme guidance
2022 to 2025, chapter 5), so the EHM extract carries one: a staff reference per episode,
blank where none was allocated. Drawn from a generator of its own, seeded from the county's
seed, so that adding the field changes no other value of any extract: the county's main
random stream is not touched.
"""

from __future__ import annotations

import numpy as np
import polars as pl

# Share of episodes with no lead practitioner: rare once a Whole Family Assessment is done,
# common for episodes that never reached one (the family disengaged first).
UNALLOCATED_ASSESSED = 0.04
UNALLOCATED_NOT_ASSESSED = 0.5
EPISODES_PER_PRACTITIONER = 20
STREAM = 14  # this generator's own stream of the county's seed


def with_lead_practitioners(early_help: pl.DataFrame, seed: int) -> pl.DataFrame:
    """`early_help` (one row per person per episode, `episode_no` and `assessment_date`)
    with `lead_practitioner`: the same staff reference for every row of an episode."""
    rng = np.random.default_rng([seed, STREAM])
    episodes = (
        early_help.group_by("episode_no")
        .agg(pl.col("assessment_date").is_not_null().any().alias("_assessed"))
        .sort("episode_no")
    )
    n = episodes.height
    staff = max(4, n // EPISODES_PER_PRACTITIONER)
    assessed = episodes["_assessed"].to_numpy()
    unallocated = rng.random(n) < np.where(assessed, UNALLOCATED_ASSESSED, UNALLOCATED_NOT_ASSESSED)
    refs = np.array([f"LP{i:04d}" for i in rng.integers(1, staff + 1, n)], dtype=object)
    refs[unallocated] = None
    lead = episodes.select("episode_no").with_columns(
        pl.Series("lead_practitioner", refs.tolist(), dtype=pl.Utf8)
    )
    return early_help.join(lead, on="episode_no", how="left")
