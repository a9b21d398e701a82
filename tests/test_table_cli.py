"""`portal measures` / `portal table` on a real release: every measure and every allowed
breakdown comes out protected, queries are audited, downloads cannot carry formulas."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

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

ROOT = Path(__file__).resolve().parents[1]

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


def test_the_service_gives_the_same_table_as_the_server(published, tmp_path, monkeypatch):
    """`portal table --service URL` (any machine, no secret) prints exactly what `portal table`
    prints on the server, in every format; `portal measures --service` lists the same."""
    import httpx

    from portal.service import accounts
    from tests.service_fixtures import LiveService, accounts_file, cheap_hasher, service_config

    cheap_hasher()
    path = accounts_file(
        tmp_path / "accounts.toml", {"pat": (accounts.hash_password("p" * 16), ["planner"])}
    )
    config = service_config(published, env={"PORTAL_ACCOUNTS_FILE": str(path)})
    args = ["table", "cin_referrals", "--by", "locality,age_band", "--where",
            "financial_year=2024/25", "--margins"]  # fmt: skip
    with LiveService(config, sdc_secret=bytes.fromhex(SDC)) as live:
        r = httpx.post(
            f"{live.url}/v1/sessions/local", json={"username": "pat", "password": "p" * 16}
        )
        monkeypatch.setenv("PORTAL_SESSION_TOKEN", r.json()["token"])
        for fmt in ("json", "table", "csv"):
            local = CliRunner().invoke(app, [*args, "--store", published, "--format", fmt])
            remote = CliRunner().invoke(app, [*args, "--service", live.url, "--format", fmt])
            assert local.exit_code == 0 and remote.exit_code == 0, (local.output, remote.output)
            assert remote.output == local.output, fmt
        # Through the service the command is a thin client: none of the store, the privacy
        # engine, polars, numpy or SQLAlchemy is imported (they were most of its start-up),
        # nor pydantic (its one setting is read by registry.environment) nor, for CSV, rich.
        code = (
            "import sys\nfrom portal import cli\n"
            f"try:\n    cli.run({[*args, '--service', live.url, '--format', 'csv']!r})\n"
            "except SystemExit:\n    pass\n"
            "heavy = ('polars', 'numpy', 'sqlalchemy', 'anonymise', 'pipelines', 'httpx',\n"
            "         'pydantic', 'pydantic_settings', 'rich')\n"
            "print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
        )
        thin = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              cwd=ROOT, check=True).stdout  # fmt: skip
        body, loaded = thin.rsplit("LOADED ", 1)
        assert body == local.output and loaded.strip() == "[]", (thin[-300:], local.output[:200])
        listed = CliRunner().invoke(app, ["measures", "--service", live.url])
        assert listed.exit_code == 0 and "cin_referrals" in listed.output
        bad = CliRunner().invoke(app, ["table", "contacts", "--by", "nhs_number",
                                       "--service", live.url])  # fmt: skip
        assert bad.exit_code == 1 and "nhs_number" in bad.output
        monkeypatch.delenv("PORTAL_SESSION_TOKEN")
        refused = CliRunner().invoke(app, ["table", "contacts", "--service", live.url])
        assert refused.exit_code == 2 and "--user" in refused.output
        monkeypatch.setenv("PORTAL_SESION_TOKEN", "misspelt")
        misspelt = CliRunner().invoke(app, ["table", "contacts", "--service", live.url])
        assert misspelt.exit_code == 2 and "PORTAL_SESION_TOKEN: not a setting" in misspelt.output
        assert "misspelt" not in misspelt.output.replace("(misspelt?)", "")
        monkeypatch.delenv("PORTAL_SESION_TOKEN")
        monkeypatch.setenv("PORTAL_SESSION_TOKEN", "not-a-session")
        ended = CliRunner().invoke(app, ["table", "contacts", "--service", live.url])
        assert ended.exit_code == 1 and "sign in" in ended.output and "Traceback" not in ended.output
    # No service there, or not a web address: said plainly, exit 2, no traceback.
    gone = CliRunner().invoke(app, ["table", "contacts", "--service", live.url])
    assert gone.exit_code == 2 and "cannot reach the release service" in gone.output
    odd = CliRunner().invoke(app, ["table", "contacts", "--service", "file:///etc/passwd"])
    assert odd.exit_code == 2 and "http://" in odd.output


def test_json_carries_typed_values_and_the_release(published):
    doc = _json_table(published, "cp_plans_at_31_march", ("locality",))
    assert doc["release_id"] and doc["data_as_at"] and doc["policy"] and doc["ptable_id"]
    assert doc["is_rate"] and doc["rate_per"] == 10000 and doc["permalink"].startswith("/v1/")
    for row in doc["rows"]:
        if row["count"] not in ("c", "z", "x"):
            assert row["count_value"] == int(row["count"])
        else:
            assert row["count_value"] is None


def test_after_make_run_the_cli_finds_the_demo_store_and_its_secret(
    published, tmp_path, monkeypatch
):
    """From the repository after `make run`: no --store, no secret in the environment; the
    demo store and the demo's own secret are found, and a missing secret is never answered
    with advice to make a new one when the demo's exists."""
    import sqlite3

    demo = tmp_path / "data" / "demo"
    demo.mkdir(parents=True)
    # A consistent copy of the published store (its latest writes may still be in the WAL).
    with (
        sqlite3.connect(published.removeprefix("sqlite:///")) as src,
        sqlite3.connect(demo / "portal.sqlite") as dst,
    ):
        src.backup(dst)
    (demo / "sdc.key").write_text(SDC + "\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PORTAL_SDC_SECRET")
    monkeypatch.delenv("PORTAL_STORE_URL", raising=False)
    monkeypatch.delenv("PORTAL_SDC_SECRET_FILE", raising=False)
    found = CliRunner().invoke(app, ["table", "contacts", "--by", "locality", "--format", "json"])
    assert found.exit_code == 0, found.output
    doc = json.loads(found.output[found.output.index("{") :])
    monkeypatch.setenv("PORTAL_SDC_SECRET", SDC)
    direct = CliRunner().invoke(
        app, ["table", "contacts", "--by", "locality", "--store", published, "--format", "json"]
    )
    assert doc["rows"] == json.loads(direct.output)["rows"], "same secret, same protected table"

    # Another store, no secret configured: the hint points at the demo's secret.
    monkeypatch.delenv("PORTAL_SDC_SECRET")
    refused = CliRunner().invoke(app, ["table", "contacts", "--store", published])
    assert refused.exit_code == 2
    assert "data/demo/sdc.key" in refused.output
    assert "token_hex" not in refused.output, "never told to make a new secret"


def test_a_table_as_a_whole_process_loads_no_migration_or_measure_code(published):
    """`portal table` runs as its own process on every call: opening the store checks the
    schema revision without Alembic, and nothing builds measures (benchmarks/bench_cli.py
    times it)."""
    import os
    import subprocess
    import sys

    probe = (
        "import sys, runpy\n"
        "sys.argv = ['portal', 'table', 'eh_referrals', '--by', 'locality', '--store', "
        f"{published!r}, '--format', 'csv']\n"
        "try:\n    runpy.run_module('portal.cli', run_name='__main__')\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "heavy = sorted(m for m in ('alembic', 'mako', 'pipelines.derive', 'holidays', "
        "'splink', 'duckdb') if m in sys.modules)\n"
        "print('LOADED', heavy)\n"
    )
    env = dict(os.environ, PORTAL_SDC_SECRET=SDC)
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert "locality" in out.splitlines()[0]
    assert out.strip().splitlines()[-1] == "LOADED []"
