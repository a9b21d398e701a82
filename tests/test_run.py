"""`portal run` end to end on a small county, and what a failed run leaves behind."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from anonymise.pseudonymise import MasterKey
from pipelines.run import run_pipeline
from portal.cli import app
from synthetic.generator import generate_county

AS_AT = date(2026, 11, 21)
KEY_A = MasterKey(b"a" * 32, "environment")
KEY_B = MasterKey(b"b" * 32, "environment")
SDC = "ab" * 32


@pytest.fixture(scope="module")
def small_county(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("county3k")
    generate_county(3000, 21, d)
    return d


def test_cli_run_prints_quarantine_and_linkage_quality(small_county, tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_PSEUDONYM_KEY", "k" * 64)
    monkeypatch.setenv("PORTAL_SDC_SECRET", SDC)
    work = tmp_path / "work"
    store = f"sqlite:///{tmp_path / 'store.sqlite'}"
    res = CliRunner().invoke(
        app,
        [
            "run",
            "--raw",
            str(small_county),
            "--work",
            str(work),
            "--as-at",
            "2026-11-21",
            "--store",
            store,
            "--accept-unmatched-objections",
            "all",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "Published routine release" in res.output
    assert "rows in = accepted + quarantined" in res.output
    assert "duplicate_row" in res.output
    assert "Linkage quality" in res.output and "persons" in res.output
    assert (work / "zone_b" / "persons.parquet").exists()
    assert (work / "zone_a" / "linkage_model.json").exists()
    # Kept for the clerical review and shares, only as long as the schedule says (14 days).
    assert (work / "zone_a" / "linked_records.parquet").exists()
    assert "Objections:" in res.output and "Retention:" in res.output
    summary = json.loads((work / "run.json").read_text())
    assert summary["linkage_quality"]["persons"]["precision"] > 0.98


def test_cli_run_refuses_without_a_key_in_production(small_county, tmp_path, monkeypatch):
    monkeypatch.delenv("PORTAL_PSEUDONYM_KEY", raising=False)
    res = CliRunner().invoke(
        app, ["run", "--raw", str(small_county), "--work", str(tmp_path / "w")]
    )
    assert res.exit_code == 2
    assert "no pseudonymisation key" in res.output
    assert not (tmp_path / "w").exists()


def test_cli_run_refuses_without_a_disclosure_secret_in_production(
    small_county, tmp_path, monkeypatch
):
    monkeypatch.setenv("PORTAL_PSEUDONYM_KEY", "k" * 64)
    monkeypatch.delenv("PORTAL_SDC_SECRET", raising=False)
    monkeypatch.delenv("PORTAL_SDC_SECRET_FILE", raising=False)
    res = CliRunner().invoke(
        app, ["run", "--raw", str(small_county), "--work", str(tmp_path / "w")]
    )
    assert res.exit_code == 2
    assert "no disclosure-control secret" in res.output


def test_cli_run_bad_file_exits_nonzero_and_writes_nothing(small_county, tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_PSEUDONYM_KEY", "k" * 64)
    monkeypatch.setenv("PORTAL_SDC_SECRET", SDC)
    raw = tmp_path / "raw"
    shutil.copytree(small_county, raw)
    (raw / "dwp.csv").write_text("")
    work = tmp_path / "work"
    store_path = tmp_path / "store.sqlite"
    res = CliRunner().invoke(
        app, ["run", "--raw", str(raw), "--work", str(work), "--store", f"sqlite:///{store_path}"]
    )
    assert res.exit_code == 1
    assert "dwp.csv: the file is empty" in res.output
    assert not work.exists()
    from pipelines.store import Store

    assert Store(f"sqlite:///{store_path}").latest_release() is None


@pytest.mark.parametrize("failing_stage", ["derive", "write", "publish"])
def test_failure_midway_leaves_previous_outputs_and_release_intact(
    small_county, tmp_path, failing_stage
):
    from pipelines.store import Store

    store = Store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    work = tmp_path / "work"
    first = run_pipeline(
        small_county, work, KEY_A, as_at=AS_AT, store=store, sdc_secret=SDC.encode(),
        accept_unmatched_objections="all",
    )  # fmt: skip
    before = {p: p.read_bytes() for p in sorted(work.rglob("*")) if p.is_file()}

    def explode(stage: str) -> None:
        if stage == failing_stage:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        run_pipeline(
            small_county,
            work,
            KEY_B,
            as_at=AS_AT,
            store=store,
            sdc_secret=SDC.encode(),
            after_stage=explode,
            accept_unmatched_objections="all",
        )
    after = {p: p.read_bytes() for p in sorted(work.rglob("*")) if p.is_file()}
    assert before == after
    assert not list(tmp_path.glob(".work.*")), "no staging folder left behind"
    latest = store.latest_release()
    assert latest is not None
    if failing_stage != "publish":
        assert latest.release_id == first.release_id


def test_zone_b_holds_no_direct_identifiers(small_county, tmp_path):
    work = tmp_path / "work"
    run_pipeline(small_county, work, KEY_A, as_at=AS_AT, accept_unmatched_objections="all")
    people = pl.read_csv(small_county / "truth" / "people.csv", infer_schema=False)
    secrets = set()
    for col in ("forename", "surname", "nhs_number", "ni_number", "upn", "dob"):
        secrets |= {v.upper() for v in people[col].drop_nulls().to_list() if v}
    hist = pl.read_csv(small_county / "truth" / "address_history.csv", infer_schema=False)
    secrets |= set(hist["postcode"]) | {a.upper() for a in hist["address_line1"]}
    files = list((work / "zone_b").rglob("*.parquet"))
    assert len(files) >= 12
    for f in files:
        df = pl.read_parquet(f)
        for col in df.columns:
            if df[col].dtype != pl.Utf8:
                continue
            vals = {str(v).upper() for v in df[col].drop_nulls().unique().to_list()}
            # Code lists (e.g. sex 'M') may collide with a short name; names are longer.
            leaked = {v for v in vals & secrets if len(v) > 3}
            assert not leaked, f"{f.name}.{col} leaks {sorted(leaked)[:3]}"
    # Staff are people too: zone B says whether a lead practitioner was allocated, not who.
    eh = pl.read_parquet(work / "zone_b" / "events" / "early_help.parquet")
    assert set(eh["lead_practitioner"].drop_nulls().unique().to_list()) == {"allocated"}


def test_pseudonyms_stable_per_key_and_differ_across_keys(small_county, tmp_path):
    kw = {"as_at": AS_AT, "accept_unmatched_objections": "all"}
    a1 = run_pipeline(small_county, tmp_path / "a1", KEY_A, **kw).zone_b  # type: ignore[arg-type]
    a2 = run_pipeline(small_county, tmp_path / "a2", KEY_A, **kw).zone_b  # type: ignore[arg-type]
    b = run_pipeline(small_county, tmp_path / "b", KEY_B, **kw).zone_b  # type: ignore[arg-type]
    assert a1 is not None and a2 is not None and b is not None
    assert a1.persons["person_id"].to_list() == a2.persons["person_id"].to_list()
    assert not set(a1.persons["person_id"]) & set(b.persons["person_id"])
