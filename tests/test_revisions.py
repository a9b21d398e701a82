"""The revisions policy on small hand-made releases: routine releases keep published periods
as published, revisions re-key and protect zeros, materiality holds small changes back,
and the schedule refuses revisions it does not allow."""

from __future__ import annotations

import dataclasses
from datetime import date

import polars as pl
import pytest

from anonymise.policy import default_policy
from anonymise.release import clear_cache, tabulate
from pipelines.derive import MEASURES, OBJECTIONS_MEASURE
from pipelines.publish import (
    EXCLUDED_LEDGER,
    RevisionRefused,
    RoutineRefused,
    closed_units,
    plan_release,
    publish,
)
from pipelines.store import Store
from registry.periods import finest_time_dim, period_bounds, period_end, period_start

SECRET = b"v" * 32
POLICY = default_policy()
# Revisions three months apart and after any change, for these small tests.
QUICK = dataclasses.replace(
    POLICY,
    revisions=dataclasses.replace(POLICY.revisions, min_days_between=90, min_people_changed=1),
)
DIMS = MEASURES["s47_enquiries"].meta.breakdowns  # locality, ward, age, sex, ethnicity, time


def test_periods_of_every_time_dimension_and_both_quarter_spellings():
    assert period_bounds("month", "2025-02") == (date(2025, 2, 1), date(2025, 2, 28))
    assert period_bounds("quarter", "2025-Q1") == (date(2025, 1, 1), date(2025, 3, 31))
    assert period_bounds("quarter", "2025/26 Q1") == (date(2025, 4, 1), date(2025, 6, 30))
    assert period_bounds("quarter", "2025/26 Q4") == (date(2026, 1, 1), date(2026, 3, 31))
    assert period_end("year", "2024") == date(2024, 12, 31)
    assert period_start("financial_year", "2024/25") == date(2024, 4, 1)
    assert period_end("financial_year", "2024/25") == date(2025, 3, 31)
    assert period_end("month", "Not known") is None and period_end("ward", "2025") is None
    assert finest_time_dim(DIMS) == "month"
    assert finest_time_dim(("financial_year", "ward")) == "financial_year"


def _unit(uid: str, month: str, ward: str = "W1", sex: str = "F") -> dict[str, str]:
    y, m = month.split("-")
    fy = f"{int(y) - (int(m) < 4)}/{(int(y) - (int(m) < 4) + 1) % 100:02d}"
    q = f"{y}-Q{(int(m) - 1) // 3 + 1}"
    return {
        "unit_id": uid, "locality": "North", "ward": ward, "age_band": "10-15", "sex": sex,
        "ethnicity": "White", "financial_year": fy, "year": y, "quarter": q, "month": month,
    }  # fmt: skip


def _frames(units: list[dict[str, str]]) -> dict[str, pl.DataFrame]:
    frame = pl.DataFrame(units, schema={c: pl.String for c in ("unit_id", *DIMS)})
    objections = pl.DataFrame(
        schema={c: pl.String for c in ("unit_id", *OBJECTIONS_MEASURE.meta.breakdowns)}
    )
    return {"s47_enquiries": frame, OBJECTIONS_MEASURE.meta.name: objections}


def _counts(store: Store, release_id: str, by: tuple[str, ...]) -> dict[tuple, str]:
    clear_cache()
    from anonymise import cellkey

    ptable = cellkey.ptable_for(POLICY.max_noise, POLICY.variance, SECRET)
    t = tabulate(store, "s47_enquiries", by, policy=POLICY, release_id=release_id, ptable=ptable,
                 margins=True)  # fmt: skip
    return {tuple(r[d] for d in by): r["count"] for r in t.data.iter_rows(named=True)}


def _many(prefix: str, n: int, month: str, **kw: str) -> list[dict[str, str]]:
    return [_unit(f"{prefix}|p{i:032x}|{month}", month, **kw) for i in range(n)]


def _publish(store, units, as_at, **kw):
    return publish(store, _frames(units), policy=QUICK, secret=SECRET, data_as_at=as_at,
                   run_metadata={}, **kw)  # fmt: skip


def test_a_routine_release_keeps_published_periods_as_published(db_url):
    store = Store(db_url)
    jan = _many("s47", 14, "2025-01")
    first = _publish(store, jan + _many("s47b", 3, "2025-03"), date(2025, 3, 15))
    # Since then: one January unit is gone (an objection), one moved ward (a correction),
    # a late January unit arrived, and new units came for March (still open) and April.
    moved = {**jan[1], "ward": "W2"}
    later = jan[2:] + [moved] + _many("late", 1, "2025-01") + _many("s47b", 5, "2025-03")
    later += _many("apr", 12, "2025-04")
    second = _publish(store, later, date(2025, 4, 30))
    d = second.diff
    assert (d.gone, d.changed, d.late) == (1, 1, 1)
    assert d.added == 2 + 12  # the new March units and April
    ledger = store.read_ledger(second.release_id, "s47_enquiries")
    assert ledger is not None and ledger.height == 17 + 14
    assert set(ledger["ward"].filter(ledger["month"] == "2025-01")) == {"W1"}  # as published
    # January is closed: every cell in it is exactly as the first release showed it.
    before = _counts(store, first.release_id, ("month", "ward"))
    after = _counts(store, second.release_id, ("month", "ward"))
    jan_cells = [k for k in before if k[0] == "2025-01"]
    assert jan_cells and all(before[k] == after[k] for k in jan_cells)
    assert after[("2025-04", "Total")] not in ("0", "c")
    info = store.get_release(second.release_id)
    assert (info.kind, info.key_epoch, info.revised_through) == ("routine", 0, None)
    store.dispose()


def test_closed_units_wait_for_settling_measures():
    frame = pl.DataFrame([_unit("sf|x", "2025-01")]).select("unit_id", "month", "financial_year",
                                                            "quarter", "year", "locality", "ward")  # fmt: skip
    assert closed_units(frame, "sf_families_worked_with", date(2025, 3, 1)).to_list() == [True]
    # Progress is judged six months after closure: January closes in August.
    assert closed_units(frame, "sf_families_closed", date(2025, 3, 1)).to_list() == [False]
    assert closed_units(frame, "sf_families_closed", date(2025, 8, 5)).to_list() == [True]


def test_a_revision_rekeys_and_never_turns_a_removal_into_a_zero(db_url):
    store = Store(db_url)
    units = _many("s47", 30, "2025-01") + [_unit("s47|only|2025-02", "2025-02", ward="W9")]
    first = _publish(store, units, date(2025, 3, 31))
    shown = _counts(store, first.release_id, ("month", "ward"))
    assert shown[("2025-02", "W9")] == "c"
    # The only person in W9 objects; a revision recomputes every period.
    plan = plan_release(store, revision=True, data_as_at=date(2025, 6, 30))
    rev = _publish(store, units[:-1], date(2025, 6, 30), plan=plan,
                   excluded_people={"objections": pl.Series(["only"])})  # fmt: skip
    info = store.get_release(rev.release_id)
    assert (info.kind, info.key_epoch, info.revised_through) == ("revision", 1, date(2025, 6, 30))
    assert info.revision_note and "Revised" in info.revision_note
    after = _counts(store, rev.release_id, ("month", "ward"))
    assert after[("2025-02", "W9")] == "c"  # a true zero now, shown as before
    assert not [k for k in shown if shown[k] != "0" and after.get(k) == "0"]
    # Without materiality the zero rule alone keeps it from reading 0.
    no_m = dataclasses.replace(QUICK, revisions=dataclasses.replace(QUICK.revisions, materiality=0))
    plan = plan_release(store, revision=True, data_as_at=date(2025, 9, 30))
    again = publish(store, _frames(units[:-1]), policy=no_m, secret=SECRET,
                    data_as_at=date(2025, 9, 30), run_metadata={}, plan=plan,
                    excluded_people={"objections": pl.Series(["only", "x"])})  # fmt: skip
    assert _counts(store, again.release_id, ("month", "ward"))[("2025-02", "W9")] == "c"
    clear_cache()
    from anonymise import cellkey

    t = tabulate(store, "s47_enquiries", ("ward",), policy=POLICY, release_id=rev.release_id,
                 ptable=cellkey.ptable_for(POLICY.max_noise, POLICY.variance, SECRET))  # fmt: skip
    assert t.revision and t.revised_through == date(2025, 6, 30)
    assert t.footnotes[0].startswith("Revised")
    assert store.read_ledger(rev.release_id, EXCLUDED_LEDGER).height == 1
    store.dispose()


def test_materiality_revises_a_cell_only_when_enough_people_changed_in_it(db_url):
    store = Store(db_url)
    policy = dataclasses.replace(
        QUICK, revisions=dataclasses.replace(QUICK.revisions, materiality=5)
    )
    # W1: 40 people, one with 10 referrals. W2: 40 people, one referral each.
    heavy = [_unit(f"s47|p{999:032x}|2025-01-{i:02d}", "2025-01", ward="W1") for i in range(10)]
    units = heavy + _many("a", 30, "2025-01", ward="W1") + _many("b", 40, "2025-01", ward="W2")
    first = publish(store, _frames(units), policy=policy, secret=SECRET,
                    data_as_at=date(2025, 3, 31), run_metadata={})  # fmt: skip
    before = _counts(store, first.release_id, ("ward",))
    # The heavy user objects (10 units, one person: immaterial); six W2 people object
    # (six people: material).
    revised = units[10:40] + units[46:]
    gone = [f"p{999:032x}"] + [f"p{i:032x}" for i in range(6)]
    all_units = {"s47_enquiries": pl.DataFrame(units).select("unit_id", *DIMS)}
    plan = plan_release(store, revision=True, data_as_at=date(2025, 6, 30))
    rev = publish(store, _frames(revised), policy=policy, secret=SECRET,
                  data_as_at=date(2025, 6, 30), run_metadata={}, plan=plan,
                  excluded_people={"objections": pl.Series(gone)}, attribution=all_units)  # fmt: skip
    info = store.get_release(rev.release_id)
    assert (info.reference_release, info.materiality) == (first.release_id, 5)
    changes = store.read_change_set(rev.release_id, "s47_enquiries")
    assert changes is not None and changes.height == 16 and changes["subject_hash"].n_unique() == 7
    after = _counts(store, rev.release_id, ("ward",))
    assert after[("W1",)] == before[("W1",)]  # 10 fewer, but one person: stands
    assert abs(int(after[("W2",)]) - 34) <= POLICY.max_noise  # six people: revised
    # A routine release after the revision shows the same, drawing on the same reference.
    routine = publish(store, _frames(revised + _many("c", 12, "2025-07")), policy=policy,
                      secret=SECRET, data_as_at=date(2025, 7, 31), run_metadata={})  # fmt: skip
    assert store.get_release(routine.release_id).reference_release == first.release_id
    later = _counts(store, routine.release_id, ("month", "ward"))
    first_cells = _counts(store, first.release_id, ("month", "ward"))
    assert later[("2025-01", "W1")] == first_cells[("2025-01", "W1")]
    store.dispose()


def test_the_schedule_refuses_revisions_it_does_not_allow(db_url):
    store = Store(db_url)
    units = _many("s47", 20, "2025-01")
    _publish(store, units, date(2025, 3, 31))
    plan = plan_release(store, revision=True, data_as_at=date(2025, 4, 30))
    with pytest.raises(RevisionRefused, match=r"at most one revision every 90 days.*2025-06-29"):
        _publish(store, units, date(2025, 4, 30), plan=plan)
    strict = dataclasses.replace(
        POLICY, revisions=dataclasses.replace(POLICY.revisions, min_days_between=90)
    )
    plan = plan_release(store, revision=True, data_as_at=date(2025, 7, 31))
    with pytest.raises(RevisionRefused, match=r"needs at least 10 people's records .* 0 have"):
        publish(store, _frames(units), policy=strict, secret=SECRET, data_as_at=date(2025, 7, 31),
                run_metadata={}, plan=plan)  # fmt: skip
    with pytest.raises(RoutineRefused, match="earlier than the latest release"):
        plan_release(store, revision=False, data_as_at=date(2025, 1, 1))
    assert len(store.list_releases()) == 1
    store.dispose()


def test_a_release_without_a_ledger_can_only_be_followed_by_a_revision(db_url):
    from anonymise.cellkey import build_cube, with_record_key

    store = Store(db_url)
    frame = pl.DataFrame(_many("s47", 12, "2025-01"))
    cube = build_cube(with_record_key(frame.lazy(), pseudonym="unit_id", secret=SECRET), DIMS)
    store.write_release({"s47_enquiries": cube.collect()}, [MEASURES["s47_enquiries"].meta],
                        policy_id=POLICY.ref, data_as_at=date(2025, 3, 31))  # fmt: skip
    with pytest.raises(RoutineRefused, match="kept no ledger"):
        plan_release(store, revision=False, data_as_at=date(2025, 6, 30))
    plan = plan_release(store, revision=True, data_as_at=date(2025, 6, 30))
    assert plan.kind == "revision" and plan.legacy
    store.dispose()


def test_cli_lists_releases_and_refuses_a_revision_with_the_reason(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from portal.cli import app

    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    store = Store(url)
    units = _many("s47", 20, "2025-01")
    _publish(store, units, date(2025, 3, 31))
    plan = plan_release(store, revision=True, data_as_at=date(2025, 6, 30))
    _publish(store, units[1:], date(2025, 6, 30), plan=plan,
             excluded_people={"objections": pl.Series(["p0"])})  # fmt: skip
    store.dispose()
    monkeypatch.setenv("COLUMNS", "300")
    res = CliRunner().invoke(app, ["releases", "--store", url])
    assert res.exit_code == 0, res.output
    assert "revision" in res.output and "2025-06-30" in res.output and "Revised:" in res.output
    monkeypatch.setenv("PORTAL_PSEUDONYM_KEY", "ab" * 32)
    monkeypatch.setenv("PORTAL_SDC_SECRET", "cd" * 32)
    res = CliRunner().invoke(
        app, ["run", "--raw", str(tmp_path), "--work", str(tmp_path / "w"), "--store", url,
              "--as-at", "2025-09-30", "--revision"],
    )  # fmt: skip
    assert res.exit_code == 4, res.output
    assert "refused:" in res.output and "at most one revision every 365 days" in res.output
    assert "2026-06-30" in res.output  # when the next one may be
    assert not (tmp_path / "w").exists()
