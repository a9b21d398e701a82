"""The school's parent/carer contacts (synthetic/contacts.py), measured against the truth:
who they name, where they say those people live, and the noise they carry."""

from __future__ import annotations

import polars as pl
import pytest

from pipelines.contracts import SCHOOL_CONTACT_RELATIONSHIPS, get_contract
from synthetic import contacts as C
from tests.synth_fixtures import read_extract


def _near(value: float, target: float, tol: float) -> None:
    assert abs(value - target) <= tol, f"{value:.4f} not within {tol} of {target}"


@pytest.fixture(scope="module")
def school(county_20k) -> pl.DataFrame:
    """School census rows with the pupil's true person and family."""
    truth = pl.read_csv(county_20k / "truth" / "records.csv", infer_schema=False)
    df = read_extract(county_20k, "school_census")
    return df.rename({"census_record_id": "record_id"}).join(
        truth.filter(pl.col("source") == "school_census").select("record_id", "family_id"),
        on="record_id",
    )


def test_the_extract_carries_every_optional_school_column(county_20k):
    df = read_extract(county_20k, "school_census")
    assert [c.name for c in get_contract("school_census").every_column] == df.columns


def test_contacts_are_mostly_there_and_phones_sometimes_missing(school):
    has1 = school["contact1_surname"].is_not_null()
    _near(1 - has1.mean(), C.NO_CONTACTS, 0.01)
    phones = school.filter(has1)["contact1_phone"]
    _near(phones.null_count() / len(phones), C.PHONE_MISSING, 0.015)
    # Written as people write them: spaces, +44, brackets.
    present = phones.drop_nulls()
    _near(1 - present.str.contains(r"^\d{11}$").mean(), C.PHONE_FORMAT, 0.02)
    rel = pl.concat([school["contact1_relationship"], school["contact2_relationship"]])
    assert set(rel.drop_nulls().unique()) <= set(SCHOOL_CONTACT_RELATIONSHIPS)


def test_contact_one_is_an_adult_of_the_household_at_an_address_it_lived_at(county_20k, school):
    people = pl.read_csv(county_20k / "truth" / "people.csv", infer_schema=False)
    hist = pl.read_csv(county_20k / "truth" / "address_history.csv", infer_schema=False)
    adults = people.filter(pl.col("role") == "ADULT").select(
        "family_id", pl.col("surname").str.to_uppercase().alias("s")
    )
    c1 = school.filter(pl.col("contact1_surname").is_not_null())
    named = c1.with_columns(pl.col("contact1_surname").str.to_uppercase().alias("s")).join(
        adults, on=["family_id", "s"], how="semi"
    )
    # Typos and the pupil's surname written for a step-parent account for the rest.
    assert named.height / c1.height > 0.9
    addr = c1.select(
        "family_id", pl.col("contact1_address_line1").alias("address_line1")
    ).join(hist.select("family_id", "address_line1"), on=["family_id", "address_line1"], how="semi")
    assert addr.height == c1.height, "contact 1 lives (or lived) at the family's address"
    # Some contacts were not updated when the family moved.
    stale = c1.filter(pl.col("contact1_address_line1") != pl.col("address_line1")).height
    assert 0 < stale / c1.height < C.CONTACT_ADDRESS_OUT_OF_DATE + 0.15


def test_some_second_contacts_live_elsewhere(county_20k, school):
    """A separated parent or a grandparent: family, but another household."""
    hist = pl.read_csv(county_20k / "truth" / "address_history.csv", infer_schema=False)
    c2 = school.filter(pl.col("contact2_surname").is_not_null())
    elsewhere = c2.join(
        hist.select("family_id", pl.col("address_line1").alias("contact2_address_line1")),
        on=["family_id", "contact2_address_line1"],
        how="anti",
    )
    share = elsewhere.height / c2.height
    assert 0.03 < share < 0.25, share
    assert set(elsewhere["contact2_relationship"].unique()) <= {"PAR", "REL"}
