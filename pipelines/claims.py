"""Supporting Families claim rules: which family episodes are a successful family outcome.

The programme pays councils by results: a family's outcome may be claimed only when every
term of the programme guidance is met (DLUHC, *Supporting Families programme guidance 2022
to 2025*). Each rule below is one term, with the wording it follows; where the wording
leaves a choice, the choice and why are said here and in the measure's definition.

1. **A family with dependent children.** Chapter 4: "each family must include dependent
   children and/or expectant parents". Here: someone in the episode is under 18 on the
   referral date. Expectant parents are not recorded in the Early Help extract, so a family
   whose only child is unborn does not pass (the guidance's "and/or" cannot be checked).
2. **Needs under at least three headlines.** Chapter 4: "a minimum of three eligibility
   criteria or family needs as set out in the national Supporting Families Outcomes
   Framework"; councils read it as needs "from at least three headline indicators"
   (Hertfordshire Families First, June 2023). The Early Help extract records needs by
   headline, so three different headlines are needed: two needs under one headline count
   once.
3. **A whole family assessment and plan.** Chapter 5 and the framework: a whole family
   assessment and an action plan addressing all the family's problems. Here: a Whole
   Family Assessment date and a Team Around the Family plan start are both recorded.
4. **A lead practitioner.** Chapter 5: families supported by a lead practitioner
   (keyworker). Here: the episode records a lead practitioner's staff reference.
5. **Significant and sustained progress on every need.** Chapter 5: "significant and
   sustained progress" against every need identified, sustained for at least six months
   after the case closed ("success determined six months after case closure",
   Hertfordshire Families First). Here: every identified need's outcome held for 183 days
   after closure (`pipelines.derive.need_outcomes` says which events break each need).

An episode is **due a claim review** on the day its six months after closure end (the
review date): only then can rule 5 be judged, and that is when a council could claim. An
episode meeting every rule is **claimable**; a family is claimed once, for its first
claimable episode (a claimed family leaves the programme: Milton Keynes' Supporting
Families guidance, "Once a successful claim has been made the family will cease to be part
of the Supporting Families programme"), so a later claimable episode of the same family is
not a second claim.

Pure functions over polars frames; `pipelines.derive` builds the published measures from
them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

HEADLINES_NEEDED = 3


@dataclass(frozen=True)
class ClaimRule:
    key: str  # the column of `claim_review` that says whether an episode meets it
    title: str
    guidance: str


CLAIM_RULES: tuple[ClaimRule, ...] = (
    ClaimRule(
        "family_with_child",
        "The family includes a dependent child",
        "Chapter 4: each family must include dependent children and/or expectant parents. "
        "Here: someone in the episode is under 18 on the referral date (expectant parents "
        "are not recorded).",
    ),
    ClaimRule(
        "three_headlines",
        "Needs under at least three of the ten headline outcomes",
        "Chapter 4: a minimum of three family needs as set out in the national Supporting "
        "Families Outcome Framework. Needs are recorded by headline, so three different "
        "headlines.",
    ),
    ClaimRule(
        "assessment_and_plan",
        "A whole family assessment and a family plan",
        "Chapter 5: a whole family assessment and a plan addressing the family's needs. "
        "Here: a Whole Family Assessment and a Team Around the Family plan are recorded.",
    ),
    ClaimRule(
        "lead_practitioner",
        "A lead practitioner",
        "Chapter 5: the family is supported by a lead practitioner. Here: the episode records one.",
    ),
    ClaimRule(
        "sustained_progress",
        "Significant and sustained progress on every need, held six months after closure",
        "Chapter 5: significant and sustained progress against every need identified, "
        "sustained for at least six months after closure.",
    ),
)
RULE_KEYS = tuple(r.key for r in CLAIM_RULES)

EPISODE_COLUMNS = (
    "family_id",
    "episode_id",
    "referral_date",
    "assessment_date",
    "plan_start",
    "closure_date",
    "needs",
    "lead_practitioner",
    "has_child",
)


def headline_count(needs: pl.Expr) -> pl.Expr:
    """How many different headlines a ';'-separated list of need codes names."""
    return (
        needs.fill_null("")
        .str.split(";")
        .list.eval(pl.element().str.strip_chars().filter(pl.element().str.strip_chars() != ""))
        .list.unique()
        .list.len()
    )


def claim_review(
    episodes: pl.DataFrame, outcomes: pl.DataFrame, *, as_at: date, sustain_days: int
) -> pl.DataFrame:
    """One row per family episode due a claim review by `as_at`: `review_date` (closure
    plus `sustain_days`), one boolean column per rule (`RULE_KEYS`), `claimable` (every
    rule met) and `claim` (the family's first claimable episode).

    episodes: one row per family episode with `EPISODE_COLUMNS` (and any other columns,
    kept); outcomes: episode_id, need, positive for the needs of episodes closed at least
    `sustain_days` before `as_at` (`pipelines.derive.need_outcomes`)."""
    missing = [c for c in EPISODE_COLUMNS if c not in episodes.columns]
    if missing:
        raise ValueError(f"episodes lack column(s): {', '.join(missing)}")
    due = episodes.filter(pl.col("closure_date").is_not_null()).with_columns(
        (pl.col("closure_date") + pl.duration(days=sustain_days)).alias("review_date")
    )
    due = due.filter(pl.col("review_date") <= pl.lit(as_at))
    progress = outcomes.group_by("episode_id").agg(
        (pl.col("positive").all() & (pl.len() > 0)).alias("sustained_progress")
    )
    lead = pl.col("lead_practitioner").cast(pl.String).str.strip_chars()
    review = due.join(progress, on="episode_id", how="left").with_columns(
        pl.col("has_child").fill_null(False).alias("family_with_child"),
        (headline_count(pl.col("needs")) >= HEADLINES_NEEDED).alias("three_headlines"),
        (pl.col("assessment_date").is_not_null() & pl.col("plan_start").is_not_null()).alias(
            "assessment_and_plan"
        ),
        (lead.is_not_null() & (lead != "")).fill_null(False).alias("lead_practitioner_ok"),
        pl.col("sustained_progress").fill_null(False),
    )
    review = review.drop("lead_practitioner").rename({"lead_practitioner_ok": "lead_practitioner"})
    review = review.with_columns(pl.all_horizontal(*RULE_KEYS).alias("claimable"))
    first = (
        review.filter(pl.col("claimable"))
        .sort("review_date", "episode_id")
        .group_by("family_id", maintain_order=True)
        .first()
        .select("episode_id", pl.lit(True).alias("claim"))
    )
    return review.join(first, on="episode_id", how="left").with_columns(
        pl.col("claim").fill_null(False)
    )
