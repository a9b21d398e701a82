"""The differencing attack pointed at real measures of a real (small) release.

The attacker sees every table the table builder offers over the chosen dimensions
(every breakdown combination up to the policy's limit, every single-value filter,
margins, repeats) and knows the method's published parameters. Small counts must
not be recoverable. The whole breakdown list of a measure (month alone has 60
values) makes the query space too large for a test, so each measure is attacked
on the dimensions a planner uses most; tests/test_differencing_attack.py covers
the method on a deliberately skewed scenario.
"""

from __future__ import annotations

from datetime import date

import pytest

from anonymise import cellkey
from anonymise.policy import default_policy
from anonymise.pseudonymise import MasterKey
from anonymise.release import tabulate
from pipelines.run import run_pipeline
from pipelines.store import Store
from synthetic.generator import generate_county
from tests.test_differencing_attack import run_attack, true_counts

SECRET = b"r" * 32
POLICY = default_policy()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    d = tmp_path_factory.mktemp("attack")
    generate_county(3000, 23, d / "raw")
    st = Store(f"sqlite:///{d / 'store.sqlite'}")
    run_pipeline(
        d / "raw",
        d / "work",
        MasterKey(b"m" * 32, "environment"),
        as_at=date(2026, 11, 21),
        store=st,
        sdc_secret=SECRET,
        accept_unmatched_objections="all",
    )
    return st


@pytest.mark.parametrize(
    ("measure", "dims"),
    [
        ("cin_referrals", ("locality", "sex", "age_band", "financial_year")),
        ("eh_referrals", ("locality", "sex", "age_band", "financial_year")),
        ("sf_families_worked_with", ("locality", "ward", "financial_year")),
    ],
)
def test_no_small_count_of_a_real_measure_is_recovered(store, measure, dims):
    release = store.latest_release()
    assert release is not None
    cube = store.read_cube(release.release_id, measure)
    ptable = cellkey.ptable_for(POLICY.max_noise, POLICY.variance, SECRET)
    levels = {d: sorted(cube[d].unique().to_list()) for d in dims}

    def ask(by, where, margins):
        return tabulate(store, measure, by, where, policy=POLICY, ptable=ptable, margins=margins)

    report = run_attack(
        ask,
        levels=levels,
        max_dims=POLICY.max_table_dims,
        max_noise=POLICY.max_noise,
        threshold=POLICY.threshold,
        truth=lambda cells: true_counts(cube, cells),
        lp_targets=3,
    )
    print(f"\n{measure}: " + report.summary())
    assert report.conflicts == []
    assert report.unsound == []
    assert report.small_cells > 0, "the scenario must contain small cells to mean anything"
    assert report.recovered == []
