"""Determinism, the CLI, and whether the county is realistic enough to matter."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from portal.cli import app
from synthetic.generator import generate_county
from tests.synth_fixtures import read_extract


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_same_seed_gives_byte_identical_files(tmp_path, fmt):
    generate_county(3000, 11, tmp_path / "a", fmt=fmt)
    generate_county(3000, 11, tmp_path / "b", fmt=fmt)
    a, b = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    # 13 extracts, 5 truth files (incl. manifest), lookup, DBS response, population
    # estimates, extract manifest; the returns: 5 CIN census years, 5 years of ten 903 tables
    assert len(a) == 13 + 9 + 5 + 5 * 10
    assert a == b


def test_different_seed_gives_a_different_county(tmp_path):
    generate_county(3000, 1, tmp_path / "a")
    generate_county(3000, 2, tmp_path / "b")
    assert _digest(tmp_path / "a")["early_help.csv"] != _digest(tmp_path / "b")["early_help.csv"]


def test_cli_synth_writes_every_extract(tmp_path):
    out = tmp_path / "county"
    result = CliRunner().invoke(
        app, ["synth", "--people", "1500", "--seed", "3", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "total" in result.output
    assert len(list(out.glob("*.csv"))) == 13
    assert (out / "truth" / "records.csv").exists()


def test_cli_synth_parquet(tmp_path):
    out = tmp_path / "county"
    result = CliRunner().invoke(app, ["synth", "--people", "1500", "--out", str(out), "--parquet"])
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("*.parquet"))) == 13


def test_cli_synth_rejects_tiny_county(tmp_path):
    result = CliRunner().invoke(app, ["synth", "--people", "10", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "at least 200" in result.output


def test_people_count_close_to_request(county_20k):
    people = pl.read_csv(county_20k / "truth" / "people.csv", infer_schema=False)
    assert 19000 <= people.height <= 21000
    assert (people["born_in_window"] == "true").sum() > 200, "births happen in the window"
    children = people.filter(pl.col("role") == "CHILD").height / people.height
    assert 0.15 < children < 0.35


def test_event_rates_are_of_the_right_order(county_20k):
    people = pl.read_csv(county_20k / "truth" / "people.csv", infer_schema=False)
    truth = pl.read_csv(county_20k / "truth" / "records.csv", infer_schema=False)
    children = people.filter(pl.col("role") == "CHILD")
    n_children = children.height
    years = 5
    eh_children = (
        truth.filter(pl.col("source") == "early_help")
        .join(children, on="person_id", how="semi")["person_id"]
        .n_unique()
    )
    # Most children never meet Early Help; a few percent a year do.
    assert 0.005 < eh_children / n_children / years < 0.06
    referrals = truth.filter(
        (pl.col("source") == "social_care") & pl.col("duplicate_of").is_null()
    ).height
    per_10k = referrals / years / n_children * 10_000
    assert 250 < per_10k < 1200, per_10k  # England: about 540 per 10,000 a year


def test_police_involvement_is_concentrated_in_some_families(county_20k):
    truth = pl.read_csv(county_20k / "truth" / "records.csv", infer_schema=False)
    fams = pl.read_csv(county_20k / "truth" / "families.csv", infer_schema=False)
    per_family = (
        truth.filter(pl.col("source") == "police")
        .group_by("family_id")
        .len()
        .sort("len", descending=True)
    )
    top = per_family.head(max(1, fams.height // 20))["len"].sum()
    assert top / per_family["len"].sum() > 0.3, (
        "the top 5% of families hold a large share of incidents"
    )


def test_needs_are_correlated_like_the_outcome_headlines(county_20k):
    fams = pl.read_csv(county_20k / "truth" / "families.csv", infer_schema=False).filter(
        pl.col("complex") == "true"
    )
    assert fams.height > 100
    n = fams.with_columns(
        pl.col("needs").str.contains(x).alias(x)
        for x in ("DOMESTIC_ABUSE", "SUBSTANCE", "FINANCIAL", "HOUSING")
    )
    multi = (
        n.select(pl.sum_horizontal("DOMESTIC_ABUSE", "SUBSTANCE", "FINANCIAL", "HOUSING") >= 2)
        .to_series()
        .mean()
    )
    assert multi > 0.1, "many families have several needs at once"
    # Needs follow family risk: riskier families have more of them.
    counts = fams.with_columns(
        pl.col("needs").str.split(";").list.len().alias("k"), pl.col("risk").cast(pl.Float64)
    )
    assert counts.select(pl.corr("k", "risk")).item() > 0.1


def test_school_census_covers_school_age_children(county_20k):
    sc = read_extract(county_20k, "school_census")
    assert sc["academic_year"].n_unique() == 5
    assert sc["upn"].null_count() / sc.height < 0.05
