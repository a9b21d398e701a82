"""`portal measures` / `portal table` on a real release: every measure and every allowed
breakdown comes out protected, queries are audited, downloads cannot carry formulas."""

from __future__ import annotations

import itertools
import json
from datetime import date

import polars as pl
import pytest
from typer.testing import CliRunner

from anonymise.policy import default_policy
from anonymise.pseudonymise import MasterKey
from anonymise.safe_output import safe_frame
from pipelines.derive import MEASURES
from pipelines.run import run_pipeline
from pipelines.store import Store
from portal.cli import app
from synthetic.generator import generate_county

SDC = "ef" * 32


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    d = tmp_path_factory.mktemp("pub")
    generate_county(4000, 31, d / "raw")
    url = f"sqlite:///{d / 'store.sqlite'}"
    run_pipeline(
        d / "raw", d / "work", MasterKey(b"m" * 32, "environment"), as_at=date(2026, 11, 21),
        store=Store(url), sdc_secret=bytes.fromhex(SDC), accept_unmatched_objections="all",
    )  # fmt: skip
    return url


@pytest.fixture(autouse=True)
def _secret(monkeypatch):
    monkeypatch.setenv("PORTAL_SDC_SECRET", SDC)


def _json_table(url: str, measure: str, by: tuple[str, ...]) -> dict:
    res = CliRunner().invoke(
        app, ["table", measure, "--by", ",".join(by), "--store", url, "--format", "json"]
    )
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def test_measures_lists_every_measure(published):
    res = CliRunner().invoke(app, ["measures", "--store", published])
    assert res.exit_code == 0, res.output
    for name in MEASURES:
        assert name in res.output


def _assert_protected(rows: list[dict], threshold: int) -> int:
    checked = 0
    for row in rows:
        for col in ("count", "denominator"):
            if col not in row:
                continue
            v = row[col]
            if v in ("c", "x", "z", "low", "u"):
                continue
            n = int(v)
            assert n == 0 or n >= threshold, f"unprotected small count {n} in {row}"
            checked += 1
    return checked


def test_every_measure_and_breakdown_is_protected(published):
    threshold = default_policy().threshold
    checked = 0
    for name, m in MEASURES.items():
        for by in itertools.chain(((),), ((d,) for d in m.meta.breakdowns)):
            doc = _json_table(published, name, by)
            checked += _assert_protected(doc["rows"], threshold)
    assert checked > 500


def test_pairs_of_breakdowns_are_protected(published):
    threshold = default_policy().threshold
    for name in ("cin_referrals", "eh_referrals", "sf_significant_sustained_progress"):
        dims = MEASURES[name].meta.breakdowns
        for by in itertools.combinations(dims[:6], 2):
            _assert_protected(_json_table(published, name, by)["rows"], threshold)


def test_queries_are_audited(published):
    CliRunner().invoke(
        app, ["table", "contacts", "--by", "locality", "--store", published, "--actor", "analyst-7"]
    )
    audit = Store(published).read_audit()
    rows = (
        audit.filter(pl.col("actor") == "analyst-7")
        if isinstance(audit, pl.DataFrame)
        else [a for a in audit if a["actor"] == "analyst-7"]
    )
    assert len(rows) >= 1


def test_bad_breakdown_is_a_clear_error(published):
    res = CliRunner().invoke(app, ["table", "contacts", "--by", "nhs_number", "--store", published])
    assert res.exit_code == 1
    assert "breakdown 'nhs_number' is not allowed" in res.output


def test_unknown_measure_is_a_clear_error(published):
    res = CliRunner().invoke(app, ["table", "no_such_measure", "--store", published])
    assert res.exit_code == 1
    assert "no_such_measure" in res.output


def test_table_refuses_without_secret(published, monkeypatch):
    monkeypatch.delenv("PORTAL_SDC_SECRET")
    res = CliRunner().invoke(app, ["table", "contacts", "--store", published])
    assert res.exit_code == 2


def test_csv_cells_cannot_become_formulas():
    df = pl.DataFrame(
        {
            "a": ['=HYPERLINK("x")', "+1", "-2", "@SUM(A1)", "Castlemere", None],
            "n": [1, 2, 3, 4, 5, 6],
        }
    )
    out = safe_frame(df)
    assert out["a"].to_list() == [
        '\'=HYPERLINK("x")',
        "'+1",
        "'-2",
        "'@SUM(A1)",
        "Castlemere",
        None,
    ]
    assert out["n"].to_list() == [1, 2, 3, 4, 5, 6]
