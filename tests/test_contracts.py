"""Every extract the generator writes matches its contract, column for column."""

import polars as pl
import pytest

from pipelines.contracts import CONTRACTS, Kind, Role, all_contracts, get_contract
from tests.synth_fixtures import parse_date, read_extract

EXPECTED_SOURCES = {
    "early_help", "front_door", "social_care", "school_census", "early_years", "police",
    "youth_justice", "dwp", "adult_social_care", "housing", "neet", "health", "objections",
}  # fmt: skip


def test_thirteen_sources_each_with_one_record_key():
    assert set(CONTRACTS) == EXPECTED_SOURCES
    for c in all_contracts():
        assert c.record_id in c.column_names
        assert len(set(c.column_names)) == len(c.column_names), c.name


def test_identifiers_are_those_the_real_systems_carry():
    assert "upn" in get_contract("school_census").column_names
    assert "ni_number" in get_contract("dwp").column_names
    for name in ("health", "adult_social_care", "social_care"):
        assert "nhs_number" in get_contract(name).column_names
    # Health carries nothing but the NHS number to identify a person.
    assert get_contract("health").identifiers() == ("nhs_number",)
    for name in ("early_help", "front_door", "police", "housing"):
        cols = get_contract(name).column_names
        assert {"forename", "surname", "dob", "postcode"} <= set(cols)
    for c in all_contracts():
        for col in c.every_column:
            if col.kind in (Kind.NAME, Kind.NHS_NUMBER, Kind.NI_NUMBER, Kind.UPN, Kind.POSTCODE):
                assert col.role is Role.DIRECT_IDENTIFIER, (c.name, col.name)


def test_unknown_source_is_a_clear_error():
    with pytest.raises(KeyError, match="unknown source 'schools'"):
        get_contract("schools")


@pytest.mark.parametrize("name", sorted(EXPECTED_SOURCES))
def test_generated_extract_matches_contract(county_20k, name):
    from synthetic.household import HOUSEHOLD_EVIDENCE
    from synthetic.render import WRITES_OPTIONAL_COLUMNS

    contract = get_contract(name)
    df = read_extract(county_20k, name)
    # The school census also carries its optional pupil address and contacts; other
    # sources the household evidence their systems hold (synthetic/household.py).
    writes_optional = name in WRITES_OPTIONAL_COLUMNS or name in HOUSEHOLD_EVIDENCE
    written = contract.every_column if writes_optional else contract.columns
    assert tuple(df.columns) == tuple(c.name for c in written)
    assert df.height > 0
    assert df[contract.record_id].n_unique() == df.height
    for col in written:
        values = df[col.name]
        if col.required and col.kind is not Kind.NHS_NUMBER:
            assert values.null_count() == 0, f"{name}.{col.name} has blanks but is required"
        present = values.drop_nulls()
        if col.kind is Kind.CODE or col.kind is Kind.FLAG:
            allowed = set(col.codes) if col.codes else {"Y", "N"}
            assert set(present.unique()) <= allowed, f"{name}.{col.name}"
        elif col.kind is Kind.CODES:
            codes = set(present.str.split(";").explode().unique())
            assert codes <= set(col.codes), f"{name}.{col.name}"
        elif col.kind is Kind.DATE:
            for v in present.unique().to_list():
                parse_date(v, contract)  # raises if no declared layout fits
        elif col.kind is Kind.INT:
            assert present.cast(pl.Int64, strict=False).null_count() == 0


def test_truth_never_enters_the_extracts(county_20k):
    people = pl.read_csv(county_20k / "truth" / "people.csv", infer_schema=False)
    person_ids = set(people["person_id"].to_list())
    family_ids = set(
        pl.read_csv(county_20k / "truth" / "families.csv", infer_schema=False)["family_id"]
    )
    for name in EXPECTED_SOURCES:
        df = read_extract(county_20k, name)
        assert not {"person_id", "family_id"} & set(df.columns)
        for col in df.columns:
            vals = set(df[col].drop_nulls().unique().to_list())
            assert not vals & person_ids, f"{name}.{col} carries truth person ids"
            assert not vals & family_ids, f"{name}.{col} carries truth family ids"


def test_every_record_has_a_true_person_and_family(county_20k):
    truth = pl.read_csv(county_20k / "truth" / "records.csv", infer_schema=False)
    for name in EXPECTED_SOURCES:
        df = read_extract(county_20k, name)
        t = truth.filter(pl.col("source") == name)
        assert t.height == df.height
        assert set(t["record_id"]) == set(df[get_contract(name).record_id])
        assert t["person_id"].null_count() == 0 and t["family_id"].null_count() == 0
