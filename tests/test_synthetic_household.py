"""Household evidence added to the early-years, NEET, DWP, health, adult social care and
youth justice extracts (synthetic/household.py), measured against the truth."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pipelines.contracts import get_contract
from synthetic import household as H
from synthetic.generator import generate_county
from tests.synth_fixtures import read_extract


def _near(value: float, target: float, tol: float) -> None:
    assert abs(value - target) <= tol, f"{value:.4f} not within {tol} of {target}"


def _with_truth(folder: Path, name: str) -> pl.DataFrame:
    truth = pl.read_csv(folder / "truth" / "records.csv", infer_schema=False)
    rid = get_contract(name).record_id
    return (
        read_extract(folder, name)
        .rename({rid: "record_id"})
        .join(
            truth.filter(pl.col("source") == name).select("record_id", "person_id", "family_id"),
            on="record_id",
        )
    )


@pytest.mark.parametrize("name", sorted(H.HOUSEHOLD_EVIDENCE))
def test_the_address_is_one_the_household_lived_at(county_20k, name):
    added = list(H.HOUSEHOLD_EVIDENCE[name])
    assert read_extract(county_20k, name).columns[-len(added) :] == added
    df = _with_truth(county_20k, name)
    p = H.ADDRESS_MISSING
    _near(
        df["address_line1"].null_count() / df.height,
        p,
        max(0.01, 4 * (p * (1 - p) / df.height) ** 0.5),
    )
    hist = pl.read_csv(county_20k / "truth" / "address_history.csv", infer_schema=False)
    lived = hist.select("family_id", pl.col("address_line1").str.to_uppercase().alias("a"))
    given = df.drop_nulls("address_line1").select(
        "family_id", pl.col("address_line1").str.to_uppercase().alias("a")
    )
    # Every first line given is an address the person's household lived at.
    assert given.join(lived, on=["family_id", "a"], how="anti").is_empty()
    if "postcode" in H.HOUSEHOLD_EVIDENCE[name]:
        assert df["postcode"].null_count() / df.height < 0.05
        tidy = df["postcode"].drop_nulls().str.to_uppercase().str.replace_all(" ", "")
        assert set(tidy) <= set(hist["postcode"].str.replace_all(" ", ""))


def test_checked_early_years_claims_name_an_adult_of_the_childs_household(county_20k):
    ey = _with_truth(county_20k, "early_years")
    checked = ey["funding_type"].is_in(list(H.CHECKED_CLAIMS))
    # The universal 15 hours checks no parent: no claimant on those rows.
    assert ey.filter(~checked)["claimant_surname"].null_count() == int((~checked).sum())
    claims = ey.filter(checked)
    assert claims["claimant_surname"].null_count() / claims.height < 0.01
    _near(
        claims["claimant_ni_number"].null_count() / claims.height,
        H.CLAIMANT_NI_MISSING,
        0.03,
    )
    _near(claims["claimant_dob"].null_count() / claims.height, H.CLAIMANT_DOB_MISSING, 0.02)
    people = pl.read_csv(county_20k / "truth" / "people.csv", infer_schema=False)
    by_ni = claims.drop_nulls("claimant_ni_number").join(
        people.select(
            pl.col("ni_number").alias("claimant_ni_number"),
            pl.col("family_id").alias("claimant_family"),
            "role",
        ),
        on="claimant_ni_number",
        how="left",
    )
    # A claimant's NI number is the household adult's, or mistyped (matches nobody).
    found = by_ni.drop_nulls("claimant_family")
    assert found.height / by_ni.height > 0.95
    assert (found["claimant_family"] == found["family_id"]).all()
    assert set(found["role"]) == {"ADULT"}


def test_the_other_extracts_are_unchanged_by_the_household_evidence(tmp_path, monkeypatch):
    evidence = dict(H.HOUSEHOLD_EVIDENCE)
    with_it = tmp_path / "with"
    generate_county(1500, 5, with_it)
    monkeypatch.setattr(H, "HOUSEHOLD_EVIDENCE", {})
    without = tmp_path / "without"
    generate_county(1500, 5, without)
    for f in sorted(without.rglob("*.csv")):
        rel = f.relative_to(without)
        a, b = pl.read_csv(f, infer_schema=False), pl.read_csv(with_it / rel, infer_schema=False)
        # The same rows and columns, and only the household evidence added.
        assert b.select(a.columns).equals(a), rel
        name = rel.stem
        assert set(b.columns) - set(a.columns) == set(evidence.get(name, ())), rel
