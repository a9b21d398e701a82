"""LAIT's benchmarking rules (pipelines.benchmarking) against a hand-worked example.

Eight authorities' values, sorted: 10, 20, 20, 30, 40, 50, 60, 80. R's default quantile
(type 7: h = (n - 1) p, interpolate between the order statistics either side):
  Q1: h = 1.75 -> x[1] + 0.75 (x[2] - x[1]) = 20 + 0.75 * 0 = 20
  Q2: h = 3.5  -> x[3] + 0.5  (x[4] - x[3]) = 30 + 0.5 * 10 = 35
  Q3: h = 5.25 -> x[5] + 0.25 (x[6] - x[5]) = 50 + 0.25 * 10 = 52.5
so the quarters are [10, 20], (20, 35], (35, 52.5], (52.5, 80].
"""

from __future__ import annotations

import pytest

from pipelines.benchmarking import (
    change_on_last_year,
    direction,
    national_rank,
    neighbour_average,
    quartile_band,
    quartiles,
    standing,
    trend,
)

VALUES: dict[str, float | None] = {
    "LA1": 10.0, "LA2": 20.0, "LA3": 20.0, "LA4": 30.0,
    "LA5": 40.0, "LA6": 50.0, "LA7": 60.0, "LA8": 80.0,
    "LA9": None,  # no figure this year: not ranked, not in the quartiles
}  # fmt: skip
BOUNDS = (10.0, 20.0, 35.0, 52.5, 80.0)


def test_quartiles_are_r_type_7() -> None:
    assert quartiles([v for v in VALUES.values() if v is not None]) == BOUNDS


@pytest.mark.parametrize(
    ("code", "polarity", "rank", "band"),
    [
        # Lower is better: rank 1 is the lowest; A is the lowest quarter [min, Q1].
        ("LA1", "Low", 1, "A"),
        ("LA2", "Low", 2, "A"),  # ties share the lower rank (R's ties.method = "min")
        ("LA3", "Low", 2, "A"),
        ("LA4", "Low", 4, "B"),  # 30 in (20, 35]
        ("LA5", "Low", 5, "C"),  # 40 in (35, 52.5]
        ("LA8", "Low", 8, "D"),
        # Higher is better: rank 1 is the highest; A is the highest quarter (Q3, max].
        ("LA8", "High", 1, "A"),
        ("LA7", "High", 2, "A"),  # 60 > 52.5
        ("LA6", "High", 3, "B"),  # 50 in (35, 52.5]
        ("LA4", "High", 5, "C"),  # 30 in (20, 35]
        ("LA2", "High", 6, "D"),  # 20 <= Q1, tied with LA3: both sixth
        ("LA1", "High", 8, "D"),
    ],
)
def test_rank_and_band_follow_polarity(code: str, polarity: str, rank: int, band: str) -> None:
    assert national_rank(VALUES, code, polarity) == rank
    assert quartile_band(VALUES[code], BOUNDS, polarity) == band
    s = standing(VALUES, code, polarity)
    assert (s.rank, s.of, s.band, s.bounds) == (rank, 8, band, BOUNDS)


def test_no_polarity_means_no_rank_and_no_band() -> None:
    s = standing(VALUES, "LA4", "-")
    assert s.rank is None and s.band is None
    assert s.of == 8 and s.bounds == BOUNDS  # the quartiles are still shown


def test_an_authority_without_a_figure_has_no_rank_or_band() -> None:
    s = standing(VALUES, "LA9", "Low")
    assert s.rank is None and s.band is None


def test_boundary_values_fall_in_the_lower_quarter() -> None:
    # LAIT: A is [min, Q1], B (Q1, median], ...: a value on a quartile is in the lower one.
    assert quartile_band(35.0, BOUNDS, "Low") == "B"
    assert quartile_band(35.0, BOUNDS, "High") == "C"
    assert quartile_band(52.5, BOUNDS, "Low") == "C"
    with pytest.raises(ValueError, match="outside the range"):
        quartile_band(81.0, BOUNDS, "Low")


def test_neighbour_average_is_the_mean_of_neighbours_with_a_figure() -> None:
    # LA9 has no figure and LA99 is not in the file: both left out of the mean (LAIT).
    avg, n = neighbour_average(VALUES, ["LA1", "LA4", "LA9", "LA99"])
    assert (avg, n) == (20.0, 2)
    assert neighbour_average(VALUES, ["LA9"]) == (None, 0)


def test_change_trend_and_whether_it_is_better() -> None:
    assert change_on_last_year(30.0, 25.0) == 5.0
    assert trend(5.0) == "Increase" and trend(-1.0) == "Decrease" and trend(0.0) == "No change"
    assert change_on_last_year(30.0, None) is None and trend(None) is None
    # Years that are not consecutive are not compared.
    assert change_on_last_year(30.0, 25.0, consecutive=False) is None
    assert direction(5.0, "High") == "better" and direction(5.0, "Low") == "worse"
    assert direction(-5.0, "Low") == "better" and direction(5.0, "-") is None
    assert direction(0.0, "High") is None
