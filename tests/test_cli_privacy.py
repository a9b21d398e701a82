"""`portal risk` and `portal anonymise` end to end, on files, through typer's runner."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import typer
from pycanon import anonymity as pycanon
from typer.testing import CliRunner

from portal import cmd_privacy
from tests.adult_data import ADULT, ADULT_QI


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    application = typer.Typer()

    @application.callback()
    def main() -> None:
        """Test wrapper."""

    cmd_privacy.register(application)
    return application


runner = CliRunner()

NAMES = ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Katherine Johnson"]
NHS = ["9434765919", "9434765870", "4010232137", "4010232145"]


@pytest.fixture
def people(tmp_path: Path) -> Path:
    """A small file with direct identifiers that must never be echoed."""
    rng = np.random.default_rng(5)
    n = 400
    frame = pl.DataFrame(
        {
            "name": [NAMES[i % 4] + f" {i}" for i in range(n)],
            "nhs_number": [NHS[i % 4] + f"{i:04d}" for i in range(n)],
            "age": rng.integers(0, 18, n),
            "sex": rng.choice(["F", "M"], n),
            "area": rng.choice(["north-1", "north-2", "south-1", "south-2"], n),
            "need": rng.choice(["need-neglect", "need-abuse", "need-other"], n),
        }
    )
    path = tmp_path / "people.csv"
    frame.write_csv(path)
    hierarchies = tmp_path / "hier"
    hierarchies.mkdir()
    ages = list(range(18))
    pl.DataFrame(
        {"a": ages, "b": [f"{a // 5 * 5}-{a // 5 * 5 + 4}" for a in ages], "c": ["*"] * 18}
    ).write_csv(hierarchies / "h_age.csv", separator=";", include_header=False)
    pl.DataFrame({"a": ["F", "M"], "b": ["*", "*"]}).write_csv(
        hierarchies / "h_sex.csv", separator=";", include_header=False
    )
    pl.DataFrame(
        {
            "a": ["north-1", "north-2", "south-1", "south-2"],
            "b": ["north", "north", "south", "south"],
            "c": ["*"] * 4,
        }
    ).write_csv(hierarchies / "h_area.csv", separator=";", include_header=False)
    return path


def _assert_no_identifiers(text: str) -> None:
    for value in NAMES + NHS:
        assert value not in text


def test_risk_prints_every_measure_without_raw_rows(app, people):
    result = runner.invoke(
        app, ["risk", str(people), "--qi", "age,sex,area", "--sensitive", "need"]
    )
    assert result.exit_code == 0, result.output
    for label in ("k-anonymity", "l-diversity (distinct)", "t-closeness", "δ-disclosure",
                  "β-likeness", "prosecutor", "journalist", "marketer", "sample uniques",
                  "Riskiest classes"):  # fmt: skip
        assert label in result.output
    _assert_no_identifiers(result.output)
    assert "need-neglect" not in result.output  # sensitive values are never listed


def test_risk_json_matches_the_library(app, people):
    result = runner.invoke(
        app, ["risk", str(people), "--qi", "age,sex,area", "--sensitive", "need", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    frame = pl.read_csv(people)
    assert report["k_anonymity"] == pycanon.k_anonymity(frame.to_pandas(), ["age", "sex", "area"])
    assert report["records"] == 400
    assert {"l_diversity_distinct", "t_closeness", "riskiest_classes"} <= set(report)
    _assert_no_identifiers(result.output)


def test_risk_reports_bad_input_as_an_error(app, people):
    result = runner.invoke(app, ["risk", str(people), "--qi", "age,missing_column"])
    assert result.exit_code == 2
    assert "missing_column" in result.output


def test_anonymise_writes_output_and_report_without_identifiers(app, people, tmp_path, caplog):
    out = tmp_path / "out" / "anon.csv"
    with caplog.at_level(logging.DEBUG):
        result = runner.invoke(
            app,
            [
                "anonymise", str(people), "--qi", "age,sex,area",
                "--hierarchies", str(people.parent / "hier"),
                "--k", "10", "--l", "2", "--sensitive", "need", "--t", "0.5",
                "--suppression", "0.02", "--out", str(out),
            ],
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    report_path = out.with_name("anon.csv.report.json")
    report = json.loads(report_path.read_text())
    assert report["output"]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert report["settings"]["k"] == 10 and report["settings"]["t"] == 0.5
    assert set(report["transformation"]) == {"age", "sex", "area"}
    assert report["measures_before"]["k_anonymity"] < 10 <= report["measures_after"]["k_anonymity"]
    assert "riskiest_classes" not in report["measures_before"]
    assert report["columns_dropped"] == ["name", "nhs_number"]
    assert report["suppressed"] <= report["settings"]["suppression_limit_records"]
    assert {"loss", "loss_metric", "discernibility"} <= set(report["information_loss"])
    written = pl.read_csv(out, schema_overrides={"age": pl.String})
    assert written.columns == ["age", "sex", "area", "need"]
    assert pycanon.k_anonymity(written.to_pandas(), ["age", "sex", "area"]) >= 10
    assert pycanon.l_diversity(written.to_pandas(), ["age", "sex", "area"], ["need"]) >= 2
    for text in (report_path.read_text(), result.output, caplog.text, out.read_text()):
        _assert_no_identifiers(text)


def test_anonymise_without_a_solution_explains_and_fails(app, people, tmp_path):
    result = runner.invoke(
        app,
        [
            "anonymise", str(people), "--qi", "age,sex,area",
            "--hierarchies", str(people.parent / "hier"), "--k", "1000",
            "--out", str(tmp_path / "never.csv"),
        ],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "no transformation meets the privacy models" in result.output
    assert not (tmp_path / "never.csv").exists()


@pytest.mark.skipif(not ADULT.exists(), reason="Adult benchmark data not present")
def test_anonymise_adult_reaches_arx_optimum(app, tmp_path):
    out = tmp_path / "adult.csv"
    result = runner.invoke(
        app,
        [
            "anonymise", str(ADULT / "adult.csv"), "--qi", ",".join(ADULT_QI),
            "--hierarchies", str(ADULT), "--k", "5", "--suppression", "0.02", "--out", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(out.with_name("adult.csv.report.json").read_text())
    assert report["transformation_vector"] == [0, 3, 0, 2, 2, 1, 1, 2, 0]
    assert abs(report["information_loss"]["loss"] - 0.313713) < 5e-7
    written = pl.read_csv(out, separator=";", infer_schema=False)
    assert written.height == 30162 - 506
    assert pycanon.k_anonymity(written.to_pandas(), ADULT_QI) >= 5
