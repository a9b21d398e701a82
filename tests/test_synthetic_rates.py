"""The demo county's event rates are of the order of England's published figures.

DfE, "Children in need", reporting year 2024 (year ending 31 March 2024): children in
need at 31 March 332.9 per 10,000 children; children on a child protection plan at
31 March about 42 per 10,000 (41 to 43 in recent years); referrals about 520 per
10,000 children a year; re-referrals within 12 months about a fifth of referrals.

Two views: the generator's ground truth on a 60,000-person county (fast: no linkage),
and what the pipeline publishes for the 20,000-person county the suite shares.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from anonymise import cellkey
from anonymise.policy import default_policy
from anonymise.pseudonymise import MasterKey
from anonymise.release import CubeSet, tabulate
from pipelines.publish import build_cubes, measure_meta
from pipelines.reference import extract_as_at
from pipelines.run import run_pipeline
from synthetic.events import build_events
from synthetic.generator import population_for

YEARS = range(2022, 2027)  # 31 March 2022 .. 31 March 2026
POLICY = default_policy()
SECRET = b"rates" * 8


@pytest.fixture(scope="module")
def truth():
    seed = 7
    pop = population_for(60_000, seed, geo_seed=1)[0]
    events = build_events(pop, seed)
    people = pop.people.with_row_index("pidx").with_columns(pl.col("pidx").cast(pl.Int64))
    return people, events.by_source


def _children(people: pl.DataFrame, d: date) -> int:
    adult = pl.lit(d).dt.offset_by("-18y")
    return people.filter((pl.col("dob") <= d) & (pl.col("dob") > adult)).height


def _per_year(people, by_source):
    dob = people.select("pidx", "dob")
    sc = by_source["social_care"].join(dob, on="pidx")
    out = []
    for y in YEARS:
        end, start = date(y, 3, 31), date(y - 1, 4, 1)
        kids = _children(people, end)
        refs = sc.filter(pl.col("referral_date").is_between(start, end))
        open_on = (pl.col("referral_date") <= end) & (
            pl.col("closure_date").is_null() | (pl.col("closure_date") > end)
        )
        cp_on = (pl.col("cp_plan_start") <= end) & (
            pl.col("cp_plan_end").is_null() | (pl.col("cp_plan_end") > end)
        )
        history = sc.filter(pl.col("referral_date") <= end).sort("pidx", "referral_date")
        gap = history.with_columns(
            (pl.col("referral_date") - pl.col("referral_date").shift().over("pidx"))
            .dt.total_days()
            .alias("gap")
        ).filter(pl.col("referral_date") >= start)
        out.append(
            {
                "year": y,
                "children": kids,
                "referrals": refs.height / kids * 1e4,
                "cin": sc.filter(open_on)["pidx"].n_unique() / kids * 1e4,
                "cp": sc.filter(cp_on)["pidx"].n_unique() / kids * 1e4,
                "rereferral_share": gap.filter(pl.col("gap") <= 365).height / max(gap.height, 1),
            }
        )
    return pl.DataFrame(out)


def test_truth_rates_are_of_the_order_of_englands(truth):
    people, by_source = truth
    rates = _per_year(people, by_source)
    print("\n" + str(rates))
    mean = rates.select(pl.exclude("year", "children").mean()).row(0, named=True)
    assert 430 <= mean["referrals"] <= 620, mean  # England about 520
    assert 270 <= mean["cin"] <= 400, mean  # England 332.9
    assert 30 <= mean["cp"] <= 55, mean  # England about 42
    assert 0.10 <= mean["rereferral_share"] <= 0.30, mean  # England about 0.2
    # Every year, not only on average, is of the right order.
    assert rates["referrals"].min() > 350 and rates["cin"].min() > 220 and rates["cp"].min() > 20


def test_the_number_of_children_is_steady(truth):
    people, _ = truth
    counts = [_children(people, date(y, 3, 31)) for y in YEARS]
    assert max(counts) / min(counts) < 1.05, counts


def test_front_door_contacts_are_about_children(truth):
    people, by_source = truth
    fd = by_source["front_door"].join(people.select("pidx", "dob"), on="pidx")
    age = (pl.col("contact_date") - pl.col("dob")).dt.total_days() / 365.25
    assert fd.filter((age >= 18) | (age < 0)).height == 0


def test_published_rates_of_the_shared_county(county_20k, tmp_path):
    """What the portal shows for the 20,000-person county, through the release layer."""
    as_at = extract_as_at(county_20k)
    res = run_pipeline(
        county_20k,
        tmp_path / "work",
        MasterKey(b"r" * 32, "environment"),
        as_at=as_at,
        accept_unmatched_objections="all",
    )
    assert res.zone_b is not None
    from pipelines.derive import ZoneBFrames, derive_all
    from pipelines.reference import load_reference

    frames, _ = derive_all(
        ZoneBFrames(res.zone_b.persons, res.zone_b.events, as_at, load_reference(county_20k))
    )
    cubes = CubeSet(build_cubes(frames, SECRET), {n: measure_meta(n) for n in frames}, "t", as_at)
    ptable = cellkey.ptable_for(POLICY.max_noise, POLICY.variance, SECRET)

    def rates(measure: str) -> list[float]:
        t = tabulate(cubes, measure, by=("financial_year",), policy=POLICY, ptable=ptable)
        return t.data["rate_value"].to_list()

    cin, cp = rates("cin_at_31_march"), rates("cp_plans_at_31_march")
    print(f"\nCIN at 31 March per 10,000: {cin}\nCP at 31 March per 10,000: {cp}")
    assert len(cin) == 5 and None not in cin and None not in cp
    assert 250 <= float(np.mean(cin)) <= 420, cin
    assert 25 <= float(np.mean(cp)) <= 60, cp
    refs = tabulate(cubes, "cin_referrals", by=("financial_year",), policy=POLICY, ptable=ptable)
    kids = tabulate(cubes, "child_population", by=("financial_year",), policy=POLICY, ptable=ptable)
    per_10k = np.array(refs.data["count_value"].to_list()) / np.array(
        kids.data["count_value"].to_list()
    )
    print(f"referrals per 10,000 a year: {np.round(per_10k * 1e4, 1).tolist()}")
    assert 400 <= float(per_10k.mean() * 1e4) <= 650
