"""Protected shares never say the impossible, and tables say which periods they cover.

A share whose numerator is a subset of its denominator (assessments within 45 working
days of assessments completed) is never shown above 100% or below 0%, and a count is
never shown larger than its denominator or beside a suppressed one. Checked with
hypothesis over random subsets and every breakdown, and against an attacker's view:
capping must not change what a reader can learn (the shown values are a function of
values the method would publish anyway)."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anonymise.cellkey import PerturbationTable, build_cube, record_keys
from anonymise.policy import default_policy
from anonymise.release import CubeSet, tabulate
from registry.measures import Denominator, MeasureMeta

POLICY = default_policy()
SECRET = b"shares test secret, not a real one"
PTABLE = PerturbationTable.generate(SECRET, max_noise=POLICY.max_noise, variance=POLICY.variance)
DIMS = ("ward", "sex", "quarter")
WARDS = ("W1", "W2", "W3")
QUARTERS = ("2025/26 Q1", "2025/26 Q2", "2025/26 Q3", "2025/26 Q4", "2026/27 Q1")


def _records(pids: list[str], wards, sexes, quarters) -> pl.DataFrame:
    return pl.DataFrame(
        {"pid": pids, "ward": wards, "sex": sexes, "quarter": quarters}
    ).with_columns(record_keys(pl.Series(pids), SECRET).alias("record_key"))


def _meta(subset: bool = True, after: int = 0) -> dict[str, MeasureMeta]:
    return {
        "all": MeasureMeta("all", "All", "every case", "cases", DIMS),
        "some": MeasureMeta(
            "some",
            "Some",
            "cases that met the standard",
            "cases",
            DIMS,
            denominator=Denominator("all", 100, 1, subset=subset),
            complete_after_days=after,
        ),
    }


@st.composite
def _subset_scenario(draw: st.DrawFn):
    n = draw(st.integers(1, 150))
    ids = draw(st.lists(st.integers(0, 10**9), min_size=n, max_size=n, unique=True))
    pids = [f"case{i}" for i in ids]
    wards = draw(st.lists(st.sampled_from(WARDS), min_size=n, max_size=n))
    sexes = draw(st.lists(st.sampled_from(["Female", "Male"]), min_size=n, max_size=n))
    quarters = draw(st.lists(st.sampled_from(QUARTERS), min_size=n, max_size=n))
    # Most cases meet the standard, so numerator and denominator are close: where noise
    # would most often push the count over.
    met = draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))
    share = draw(st.floats(0.5, 1.0))
    every = _records(pids, wards, sexes, quarters)
    some = every.filter(pl.Series([m < share for m in met]))
    by = tuple(draw(st.permutations(list(DIMS)))[: draw(st.integers(0, 2))])
    return every, some, by


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_subset_scenario(), st.booleans())
def test_a_share_of_a_subset_is_never_above_100_or_below_0(scenario, margins: bool) -> None:
    every, some, by = scenario
    cubes = CubeSet(
        {"all": build_cube(every, DIMS).collect(), "some": build_cube(some, DIMS).collect()},
        _meta(),
    )
    table = tabulate(cubes, "some", by=by, policy=POLICY, ptable=PTABLE, margins=margins)
    plain = tabulate(cubes, "all", by=by, policy=POLICY, ptable=PTABLE, margins=margins)
    assert table.data["denominator"].to_list() == plain.data["count"].to_list()
    capped = 0
    for row in table.data.iter_rows(named=True):
        if row["rate_value"] is not None:
            assert 0.0 <= row["rate_value"] <= 100.0, row
            assert float(row["rate"]) <= 100.0
        if row["count"] != "c" and row["denominator"] != "c":
            assert row["count_value"] <= row["denominator_value"], row
        if row["denominator"] == "c":
            assert row["count"] == "c", "a count beside a suppressed denominator"
        capped += row["rate_value"] == 100.0 and row["count_value"] == row["denominator_value"]
    assert table.capped <= capped
    if table.capped:
        assert any("capped at 100%" in f for f in table.footnotes)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_subset_scenario())
def test_capping_is_a_function_of_what_would_be_published_anyway(scenario) -> None:
    """The capped table is computable from the uncapped one (same cells, same secret):
    min(count, denominator), and c where the denominator is c. So it reveals nothing a
    reader of the uncapped table could not already know."""
    every, some, by = scenario
    cubes = {"all": build_cube(every, DIMS).collect(), "some": build_cube(some, DIMS).collect()}
    capped = tabulate(
        CubeSet(cubes, _meta(subset=True)), "some", by=by, policy=POLICY, ptable=PTABLE
    )
    raw = tabulate(CubeSet(cubes, _meta(subset=False)), "some", by=by, policy=POLICY, ptable=PTABLE)
    for c, r in zip(capped.data.iter_rows(named=True), raw.data.iter_rows(named=True), strict=True):
        assert c["denominator"] == r["denominator"]
        if r["denominator"] == "c" or r["count"] == "c":
            assert c["count"] == "c"
        else:
            assert c["count_value"] == min(r["count_value"], r["denominator_value"])


def test_the_impossible_figure_of_issue_13_is_capped() -> None:
    """14 of 12 (116.7%) becomes 12 of 12 (100.0%) with a footnote."""
    cubes = CubeSet(
        {
            "all": pl.DataFrame(
                {
                    "ward": ["W1"],
                    "sex": ["Female"],
                    "quarter": [QUARTERS[0]],
                    "n": [12],
                    "ckey": [0],
                }
            ),
            "some": pl.DataFrame(
                {
                    "ward": ["W1"],
                    "sex": ["Female"],
                    "quarter": [QUARTERS[0]],
                    "n": [12],
                    "ckey": [0],
                }
            ),
        },
        _meta(),
    )
    # Find cell keys that perturb 12 up for the numerator and down for the denominator.
    up = next(k for k in range(256) if PTABLE.noise[12, k] >= 2)
    down = next(k for k in range(256) if PTABLE.noise[12, k] <= 0)
    cubes = CubeSet(
        {
            "all": cubes.cubes["all"].with_columns(pl.lit(down).alias("ckey")),
            "some": cubes.cubes["some"].with_columns(pl.lit(up).alias("ckey")),
        },
        _meta(),
    )
    table = tabulate(cubes, "some", by=("ward",), policy=POLICY, ptable=PTABLE)
    row = table.data.row(0, named=True)
    assert row["count_value"] == row["denominator_value"] == 12 + int(PTABLE.noise[12, down])
    assert row["rate"] == "100.0" and table.capped == 1


# --- the period a table covers ------------------------------------------------------------


def _dated_cubes(after: int = 0) -> CubeSet:
    rng = np.random.default_rng(3)
    n = 900
    pids = [f"p{i}" for i in range(n)]
    every = _records(
        pids,
        rng.choice(WARDS, n).tolist(),
        rng.choice(["Female", "Male"], n).tolist(),
        rng.choice(QUARTERS, n).tolist(),
    )
    some = every.filter(pl.Series(rng.random(n) < 0.8))
    return CubeSet(
        {"all": build_cube(every, DIMS).collect(), "some": build_cube(some, DIMS).collect()},
        _meta(after=after),
        release_id="r1",
        data_as_at=date(2026, 5, 20),
    )


def test_a_quarter_that_has_not_ended_is_marked_partial() -> None:
    table = tabulate(_dated_cubes(), "some", by=("quarter",), policy=POLICY, ptable=PTABLE)
    assert table.partial_periods == {"quarter": ("2026/27 Q1",)}
    assert any("Not yet complete: 2026/27 Q1" in f for f in table.footnotes)
    assert table.covers == (date(2025, 4, 1), date(2026, 5, 20))


def test_a_measure_judged_months_later_marks_more_periods_partial() -> None:
    table = tabulate(_dated_cubes(after=183), "some", by=("quarter",), policy=POLICY, ptable=PTABLE)
    # 20 May 2026 minus 183 days is 18 November 2025: Q3 and later are not yet complete.
    assert table.partial_periods == {"quarter": ("2025/26 Q3", "2025/26 Q4", "2026/27 Q1")}
    assert any("183 days after it ends" in f for f in table.footnotes)


def test_a_filter_to_a_partial_period_is_marked_and_a_table_without_time_says_so() -> None:
    cubes = _dated_cubes()
    filtered = tabulate(
        cubes, "all", by=("ward",), where={"quarter": "2026/27 Q1"}, policy=POLICY, ptable=PTABLE
    )
    assert filtered.partial_periods == {"quarter": ("2026/27 Q1",)}
    whole = tabulate(cubes, "all", by=("ward",), policy=POLICY, ptable=PTABLE)
    assert whole.partial_periods == {}
    assert any(
        "no time breakdown: it adds together every period from 1 April 2025 to 20 May 2026" in f
        for f in whole.footnotes
    )
    complete = tabulate(
        cubes,
        "all",
        by=("quarter",),
        where={"quarter": list(QUARTERS[:4])},
        policy=POLICY,
        ptable=PTABLE,
    )
    assert complete.partial_periods == {}
