"""The retention schedule: what is due, deleting exactly that, auditing by category and
count only, and a pipeline run that leaves no identifiable working copy behind."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from anonymise.policy import default_policy
from anonymise.pseudonymise import MasterKey
from anonymise.release import clear_cache, tabulate
from pipelines import retention
from pipelines.run import run_pipeline
from pipelines.store import Store, audit_log, releases
from portal.cli import app
from registry.errors import ReleaseDataRemovedError
from registry.measures import MeasureMeta
from synthetic.generator import generate_county

POLICY = default_policy()
NOW = datetime(2027, 6, 1, tzinfo=UTC)
META = MeasureMeta("m", "M", "a measure", "children", ("ward",))


def _age(path: Path, days: int) -> None:
    t = (NOW - timedelta(days=days)).timestamp()
    os.utime(path, (t, t))


def _file(path: Path, days: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    _age(path, days)
    return path


def _release(store: Store, when: datetime, **kw) -> str:
    cube = pl.DataFrame({"ward": ["A", "B"], "n": [12, 30], "ckey": [5, 9]})
    rid = store.write_release({"m": cube}, [META], policy_id=POLICY.ref,
                              data_as_at=date(2026, 3, 31), **kw)  # fmt: skip
    with store.engine.begin() as conn:
        conn.execute(releases.update().where(releases.c.release_id == rid).values(created_at=when))
    return rid


def test_due_and_apply_follow_the_schedule(tmp_path, db_url):
    work, extracts, labels = tmp_path / "work", tmp_path / "extracts", tmp_path / "labels"
    days = POLICY.retention
    old_linked = _file(
        work / "zone_a" / "linked_records.parquet", days.zone_a_working_copies_days + 1
    )
    old_q = _file(work / "zone_a" / "quarantine" / "dwp.csv", days.quarantine_files_days + 1)
    new_q = _file(work / "zone_a" / "quarantine" / "police.csv", 1)
    report = _file(work / "zone_a" / "quarantine_report.csv", 9999)
    old_b = _file(work / "zone_b" / "persons.parquet", days.zone_b_tables_days + 5)
    old_x = _file(extracts / "study.csv", days.extracts_days + 1)
    new_x = _file(extracts / "other.csv", days.extracts_days - 1)
    old_l = _file(labels / "labels.parquet", days.clerical_labels_days + 1)

    store = Store(db_url)
    r1 = _release(store, NOW - timedelta(days=1500))
    r2 = _release(store, NOW - timedelta(days=1000))  # supersedes r1 1000 days ago
    r3 = _release(store, NOW - timedelta(days=900))  # supersedes r2 900 days ago
    r4 = _release(store, NOW - timedelta(days=10))
    with store.engine.begin() as conn:
        conn.execute(
            audit_log.insert().values(
                at=NOW - timedelta(days=days.audit_log_days + 1), actor="x", action="old", detail={}
            )
        )

    items = retention.due(days, work_dir=work, store=store, extracts_dir=extracts,
                          labels_dir=labels, now=NOW)  # fmt: skip
    got = {i.category: i for i in items}
    print("\n" + "\n".join(i.describe() for i in items))
    assert set(got) == set(retention.CATEGORIES)
    assert got["zone_a_working_copies"].paths == (old_linked,)
    assert got["quarantine_files"].paths == (old_q,)
    assert got["zone_b_tables"].paths == (old_b,)
    assert got["extracts"].paths == (old_x,)
    assert got["clerical_labels"].paths == (old_l,)
    # r4 and r3 are the newest two: kept. r2 was superseded 900 days ago (> 730): due; r1 too.
    assert set(got["superseded_cubes"].releases) == {r1, r2}
    assert got["audit_log"].count == 1

    deleted = retention.apply(items, store=store, actor="cli:tester")
    assert deleted == {c: 1 for c in retention.CATEGORIES} | {"superseded_cubes": 2}
    for p in (old_linked, old_q, old_b, old_x, old_l):
        assert not p.exists()
    for p in (new_q, new_x, report):
        assert p.exists()
    info = {r.release_id: r for r in store.list_releases()}
    assert info[r1].cubes_removed_at and info[r2].cubes_removed_at
    assert not info[r3].cubes_removed_at and not info[r4].cubes_removed_at
    assert store.read_ledger(r1, "m") is None
    clear_cache()
    with pytest.raises(ReleaseDataRemovedError, match="removed under the retention schedule"):
        tabulate(store, "m", ("ward",), policy=POLICY, release_id=r1)
    # One audit entry per category, counts only.
    entries = store.read_audit(action="retention_deleted")
    assert entries.height == len(retention.CATEGORIES)
    for detail in entries["detail"]:
        d = json.loads(detail)
        assert set(d) <= {"category", "count", "releases"}
    # Nothing left to do.
    assert retention.due(days, work_dir=work, store=store, extracts_dir=extracts,
                         labels_dir=labels, now=NOW) == []  # fmt: skip
    store.dispose()


def test_a_reference_release_is_kept_while_a_kept_release_draws_on_it(db_url):
    store = Store(db_url)
    r1 = _release(store, NOW - timedelta(days=2000))
    r2 = _release(store, NOW - timedelta(days=1900))
    r3 = _release(store, NOW - timedelta(days=1800), reference_release=r1, materiality=3)
    _release(store, NOW - timedelta(days=1700), reference_release=r1, materiality=3)
    _release(store, NOW - timedelta(days=1600), reference_release=r1, materiality=3)
    items = retention.due(POLICY.retention, store=store, now=NOW)
    (cubes,) = [i for i in items if i.category == "superseded_cubes"]
    assert set(cubes.releases) == {r2, r3}  # r1 is the newest releases' reference
    store.dispose()


@pytest.fixture(scope="module")
def small_county(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("retention")
    generate_county(3000, 21, d)
    return d


def test_a_run_leaves_no_identifiable_working_copy_and_says_what_is_due(small_county, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 's.sqlite'}")
    key = MasterKey(b"r" * 32, "environment")
    work = tmp_path / "work"
    none = dataclasses.replace(
        POLICY, retention=dataclasses.replace(POLICY.retention, zone_a_working_copies_days=0)
    )
    result = run_pipeline(small_county, work, key, as_at=date(2026, 3, 31), store=store,
                          sdc_secret=b"t" * 32, accept_unmatched_objections="all",
                          policy=none)  # fmt: skip
    assert not (work / "zone_a" / "linked_records.parquet").exists()
    assert (work / "zone_a" / "quarantine_report.csv").exists()
    assert (work / "zone_b" / "persons.parquet").exists()
    assert result.retention_due == []
    assert json.loads((work / "run.json").read_text())["retention_due"] == {}
    # Under a schedule that keeps zone A copies a week, the run keeps them.
    week = dataclasses.replace(
        POLICY, retention=dataclasses.replace(POLICY.retention, zone_a_working_copies_days=7)
    )
    run_pipeline(small_county, work, key, as_at=date(2026, 3, 31), store=store, policy=week,
                 sdc_secret=b"t" * 32, accept_unmatched_objections="all")  # fmt: skip
    assert (work / "zone_a" / "linked_records.parquet").exists()
    # ...and once it is older than the default schedule allows, it is due and the CLI
    # deletes it.
    old = time.time() - 15 * 86400
    os.utime(work / "zone_a" / "linked_records.parquet", (old, old))
    res = CliRunner().invoke(
        app, ["retention", "--dry-run", "--work", str(work), "--store", store.url,
              "--extracts", str(tmp_path / "x"), "--labels", str(tmp_path / "l")],
        env={"COLUMNS": "300"},
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "due: zone_a_working_copies: 1 file(s)" in res.output and "Dry run" in res.output
    assert (work / "zone_a" / "linked_records.parquet").exists()
    res = CliRunner().invoke(
        app, ["retention", "--apply", "--work", str(work), "--store", store.url,
              "--extracts", str(tmp_path / "x"), "--labels", str(tmp_path / "l")],
        env={"COLUMNS": "300"},
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "Deleted: zone_a_working_copies 1" in res.output
    assert not (work / "zone_a" / "linked_records.parquet").exists()
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit_log.c.detail).where(audit_log.c.action == "retention_deleted")
        ).all()
    assert [r[0] if isinstance(r[0], dict) else json.loads(r[0]) for r in rows] == [
        {"category": "zone_a_working_copies", "count": 1}
    ]
    store.dispose()


def test_decisions_labels_and_ended_projects_extracts_are_on_the_schedule(tmp_path, db_url):
    """The linkage's pair decisions are a zone A working copy, the stewards' clerical labels
    in the work folder are labels, and an ended project's extract files (with the dictionary
    and certificates beside them) are due whatever their age; an open project's are not."""
    from anonymise.ledger import NewLedgerEntry, output_paths
    from anonymise.projects import ProjectSpec
    from pipelines.project_register import ProjectRegister

    work, days = tmp_path / "work", POLICY.retention
    decisions = _file(
        work / "zone_a" / "linkage_decisions.parquet", days.zone_a_working_copies_days + 1
    )
    labels = _file(work / "zone_a" / "clerical_labels.parquet", days.clerical_labels_days + 1)
    fresh_labels = tmp_path / "fresh"
    _file(fresh_labels / "zone_a" / "clerical_labels.parquet", 1)

    store = Store(db_url)
    reg = ProjectRegister(store)
    today = NOW.date()

    def project(title: str, expires: date) -> str:
        spec = ProjectSpec(title=title, purpose="Outcomes of Early Help for families",
                           lawful_basis="UK GDPR 6(1)(e)",
                           variables=("age",), researchers=("r",), approver="a",
                           approved_on=today - timedelta(days=400), expires_on=expires)  # fmt: skip
        return reg.add(spec, actor="admin").project_id

    ended, live = (
        project("Ended study", today - timedelta(days=1)),
        project("Live study", today + timedelta(days=9)),
    )
    files: dict[str, list[Path]] = {}
    for pid in (ended, live):
        out = tmp_path / "elsewhere" / f"{pid}.csv"
        files[pid] = [_file(p, 2) for p in output_paths(out)]
        entry = NewLedgerEntry(pid, 1, "r", ("age",), ("age",), {"age": 0}, {"age": "years"},
                               (), "0" * 64, 10, pl.DataFrame({"age": [1]}), str(out))  # fmt: skip
        reg.record_extract(entry, audit_detail={})
    unrelated = _file(tmp_path / "elsewhere" / f"{ended}.notes.txt", 2)

    got = {i.category: i for i in retention.due(days, work_dir=work, store=store,
                                                extracts_dir=None, labels_dir=None, now=NOW)}  # fmt: skip
    assert decisions in got["zone_a_working_copies"].paths
    assert got["clerical_labels"].paths == (labels,)
    assert set(got["extracts"].paths) == set(files[ended])
    retention.apply([got["extracts"]], store=store, actor="cli:tester")
    assert not any(p.exists() for p in files[ended])
    assert all(p.exists() for p in files[live]) and unrelated.exists()
    fresh = retention.due(days, work_dir=fresh_labels, store=None, extracts_dir=None,
                          labels_dir=None, now=NOW)  # fmt: skip
    assert fresh == []
    store.dispose()
