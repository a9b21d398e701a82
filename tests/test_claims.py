"""Supporting Families claim rules (pipelines.claims): for each rule, a family built to meet
every rule, and one that breaks only that rule."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import polars as pl
import pytest

from pipelines.claims import CLAIM_RULES, RULE_KEYS, claim_review, headline_count
from pipelines.derive import SUSTAIN_DAYS

AS_AT = date(2026, 3, 31)
CLOSED = date(2025, 6, 30)  # reviewed on 30 Dec 2025: due by AS_AT

GOOD: dict[str, Any] = {
    "family_id": "F1",
    "episode_id": "EP1",
    "referral_date": date(2024, 9, 1),
    "assessment_date": date(2024, 9, 20),
    "plan_start": date(2024, 10, 1),
    "closure_date": CLOSED,
    "needs": "EDUCATION;HEALTH;HOUSING",
    "lead_practitioner": "LP0007",
    "has_child": True,
}


def _episodes(*rows: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(
        list(rows),
        schema={
            "family_id": pl.String, "episode_id": pl.String, "referral_date": pl.Date,
            "assessment_date": pl.Date, "plan_start": pl.Date, "closure_date": pl.Date,
            "needs": pl.String, "lead_practitioner": pl.String, "has_child": pl.Boolean,
        },  # fmt: skip
    )


def _outcomes(rows: list[tuple[str, str, bool]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema={"episode_id": pl.String, "need": pl.String, "positive": pl.Boolean},
        orient="row",
    )  # fmt: skip


def _all_positive(*episodes: dict[str, Any]) -> pl.DataFrame:
    return _outcomes(
        [(e["episode_id"], n, True) for e in episodes for n in (e["needs"] or "").split(";") if n]
    )


def _review(*episodes: dict[str, Any], outcomes: pl.DataFrame | None = None) -> pl.DataFrame:
    return claim_review(
        _episodes(*episodes),
        _all_positive(*episodes) if outcomes is None else outcomes,
        as_at=AS_AT,
        sustain_days=SUSTAIN_DAYS,
    )


def _verdicts(review: pl.DataFrame, episode: str = "EP1") -> dict[str, bool]:
    row = review.filter(pl.col("episode_id") == episode).row(0, named=True)
    return {k: row[k] for k in (*RULE_KEYS, "claimable", "claim")}


def test_a_family_meeting_every_rule_is_claimed_on_its_review_date() -> None:
    review = _review(GOOD)
    assert _verdicts(review) == {**dict.fromkeys(RULE_KEYS, True), "claimable": True, "claim": True}
    assert review["review_date"].to_list() == [CLOSED + timedelta(days=SUSTAIN_DAYS)]


# Each case breaks exactly one rule; every other rule still holds.
BREAKS: dict[str, tuple[dict[str, Any], list[tuple[str, str, bool]] | None]] = {
    # Chapter 4: dependent children (no one under 18 in the episode).
    "family_with_child": ({"has_child": False}, None),
    # Chapter 4: needs under at least three headlines; a repeated code is one headline.
    "three_headlines": ({"needs": "EDUCATION;HEALTH;HEALTH"}, None),
    # Chapter 5: a whole family assessment and a plan (no plan recorded).
    "assessment_and_plan": ({"plan_start": None}, None),
    # Chapter 5: a lead practitioner (blank reference: none allocated).
    "lead_practitioner": ({"lead_practitioner": "  "}, None),
    # Chapter 5: significant and sustained progress on EVERY need (one need relapsed).
    "sustained_progress": (
        {},
        [("EP1", "EDUCATION", True), ("EP1", "HEALTH", False), ("EP1", "HOUSING", True)],
    ),
}


def test_every_rule_has_a_failing_case() -> None:
    assert set(BREAKS) == set(RULE_KEYS)


@pytest.mark.parametrize("rule", list(BREAKS))
def test_breaking_one_rule_stops_the_claim(rule: str) -> None:
    change, outcomes = BREAKS[rule]
    episode = {**GOOD, **change}
    review = _review(episode, outcomes=None if outcomes is None else _outcomes(outcomes))
    verdicts = _verdicts(review)
    assert verdicts[rule] is False
    assert all(verdicts[k] for k in RULE_KEYS if k != rule), verdicts
    assert verdicts["claimable"] is False and verdicts["claim"] is False


def test_assessment_without_a_plan_and_plan_without_assessment_both_fail() -> None:
    for change in ({"assessment_date": None}, {"plan_start": None}):
        assert _verdicts(_review({**GOOD, **change}))["assessment_and_plan"] is False


def test_no_judged_outcome_is_no_sustained_progress() -> None:
    # Need outcomes missing (not judged): progress cannot be shown, so no claim.
    verdicts = _verdicts(_review(GOOD, outcomes=_outcomes([])))
    assert verdicts["sustained_progress"] is False and verdicts["claim"] is False


def test_an_episode_is_not_reviewed_before_six_months_after_closure() -> None:
    late = {**GOOD, "closure_date": AS_AT - timedelta(days=SUSTAIN_DAYS - 1)}
    on_time = {**GOOD, "episode_id": "EP2", "closure_date": AS_AT - timedelta(days=SUSTAIN_DAYS)}
    still_open = {**GOOD, "episode_id": "EP3", "closure_date": None}
    review = _review(late, on_time, still_open)
    assert review["episode_id"].to_list() == ["EP2"]


def test_a_family_is_claimed_once_for_its_first_claimable_episode() -> None:
    first = {**GOOD, "closure_date": date(2024, 3, 31)}
    second = {**GOOD, "episode_id": "EP2", "closure_date": CLOSED}
    other = {**GOOD, "family_id": "F2", "episode_id": "EP3"}
    review = _review(second, first, other)
    claims = dict(zip(review["episode_id"], review["claim"], strict=True))
    assert claims == {"EP1": True, "EP2": False, "EP3": True}
    assert review.filter(pl.col("episode_id") == "EP2")["claimable"].item() is True


def test_headline_count_ignores_blanks_and_repeats() -> None:
    needs = pl.Series(["EDUCATION; HEALTH;;EDUCATION", None, "", "A;B;C;D"])
    got = pl.select(headline_count(pl.lit(needs))).to_series().to_list()
    assert got == [2, 0, 0, 4]


def test_every_rule_cites_the_guidance() -> None:
    for rule in CLAIM_RULES:
        assert rule.guidance.startswith("Chapter "), rule.key


def test_missing_columns_are_named() -> None:
    with pytest.raises(ValueError, match="lead_practitioner"):
        claim_review(
            _episodes(GOOD).drop("lead_practitioner"),
            _all_positive(GOOD),
            as_at=AS_AT,
            sustain_days=SUSTAIN_DAYS,
        )
