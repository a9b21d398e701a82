"""Family linkage from the statutory returns and family quality by source."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from pipelines.contracts import get_contract
from pipelines.ingest import IngestResult, phone_expr, validate
from pipelines.link import (
    CLAIMANT_SCHEMA,
    CONTACT_SCHEMA,
    FAMILY_ONLY_ADDRESS,
    claimant_edges,
    contact_edges,
    early_years_claimants,
    family_edges,
    family_edges_by_rule,
    mother_child_edges,
    school_contacts,
)
from pipelines.quality import family_quality_by_source


def _records(rows: list[dict]) -> pl.DataFrame:
    cols = {"unique_id": pl.Utf8, "source": pl.Utf8, "person_key": pl.Int64, "dob": pl.Date,
            "surname": pl.Utf8, "postcode": pl.Utf8, "mc_dob": pl.Utf8, "event_date": pl.Date,
            "address_line1": pl.Utf8, "ehm_family_ref": pl.Utf8, "episode_id": pl.Utf8}  # fmt: skip
    return pl.DataFrame([{c: r.get(c) for c in cols} for r in rows], schema=cols)


BABY = date(2024, 2, 3)


def test_a_looked_after_mother_links_to_her_one_child() -> None:
    recs = _records([
        # The mother: a 903 header row (no name) and a social care row with her postcode.
        {"unique_id": "h", "source": "ssda903_header", "person_key": 1, "mc_dob": "2024-02-03"},
        {"unique_id": "s", "source": "social_care", "person_key": 1, "postcode": "XM1 1AA",
         "surname": "ROSE"},
        # Her baby, born on MC_DOB, under another surname at her postcode.
        {"unique_id": "b", "source": "health", "person_key": 2, "dob": BABY,
         "postcode": "XM1 1AA", "surname": "HALE"},
        # Another baby born the same day elsewhere: not hers.
        {"unique_id": "o", "source": "health", "person_key": 3, "dob": BABY,
         "postcode": "XM9 9ZZ", "surname": "STONE"},
    ])  # fmt: skip
    edges = mother_child_edges(recs)
    assert edges.rows() == [(1, 2)]
    assert (1, 2) in family_edges(recs).select("a", "b").rows()


def test_two_candidate_children_are_ambiguous_and_not_linked() -> None:
    recs = _records([
        {"unique_id": "h", "source": "ssda903_header", "person_key": 1, "mc_dob": "2024-02-03",
         "surname": "ROSE", "postcode": "XM1 1AA"},
        {"unique_id": "b", "source": "health", "person_key": 2, "dob": BABY, "surname": "ROSE"},
        {"unique_id": "c", "source": "health", "person_key": 3, "dob": BABY,
         "postcode": "XM1 1AA"},
    ])  # fmt: skip
    assert mother_child_edges(recs).is_empty()


def test_family_quality_by_source() -> None:
    records = pl.DataFrame(
        {
            "unique_id": ["a1", "a2", "b1", "c1", "c2"],
            "source": ["early_help", "early_help", "school_census", "school_census", "police"],
            "person_key": [1, 2, 3, 4, 5],
            "family_key": [10, 10, 30, 40, 40],
        }
    )
    truth = pl.DataFrame(
        {
            "unique_id": ["a1", "a2", "b1", "c1", "c2"],
            "person_id": ["P1", "P2", "P3", "P4", "P5"],
            # 1, 2, 3 one family (3 split off); 4 and 5 two families (merged).
            "family_id": ["F1", "F1", "F1", "F4", "F5"],
        }
    )
    q = {r["source"]: r for r in family_quality_by_source(records, truth).to_dicts()}
    # Early Help: true pairs (1,2) found, (1,3), (2,3) missed; its one predicted pair right.
    assert q["early_help"]["true_pairs"] == 3 and abs(q["early_help"]["recall"] - 1 / 3) < 1e-9
    assert q["early_help"]["precision"] == 1.0
    # School census: (1,3), (2,3) missed; predicted (4,5) wrong.
    assert q["school_census"]["recall"] == 0.0 and q["school_census"]["precision"] == 0.0
    assert q["police"]["true_pairs"] is None or q["police"]["true_pairs"] == 0


# ------------------------------------------------------------ school contacts ---


def _contact_records(rows: list[dict]) -> pl.DataFrame:
    cols = {"unique_id": pl.Utf8, "source": pl.Utf8, "person_key": pl.Int64, "dob": pl.Date,
            "forename": pl.Utf8, "surname": pl.Utf8, "postcode": pl.Utf8, "mc_dob": pl.Utf8,
            "event_date": pl.Date, "address_line1": pl.Utf8, "ehm_family_ref": pl.Utf8,
            "episode_id": pl.Utf8}  # fmt: skip
    return pl.DataFrame([{c: r.get(c) for c in cols} for r in rows], schema=cols)


def _school_extract(contacts: list[dict]) -> dict[str, IngestResult]:
    """A school census extract (contract columns plus the optional contact columns),
    validated as ingest would."""
    contract = get_contract("school_census")
    rows = []
    for i, c in enumerate(contacts):
        row = {col.name: None for col in contract.every_column}
        row.update(census_record_id=f"SC{i}", forename="AVA", surname="ROSE", dob="2014-05-01",
                   sex="F", postcode="XM1 1AA", address_line1="1 High Street",
                   academic_year="2023/24", school_urn="100001", ncyear="4", fsm_eligible="N",
                   sen_provision="N", sessions_possible="320", sessions_missed=str(i),
                   suspensions="0", permanent_exclusion="N")  # fmt: skip
        row.update(c)
        rows.append(row)
    raw = pl.DataFrame(rows, schema={c.name: pl.Utf8 for c in contract.every_column})
    return {"school_census": validate(raw, contract, file=Path("school_census.csv"),
                                      as_at=date(2026, 11, 21))}  # fmt: skip


def test_phone_numbers_are_read_in_national_form() -> None:
    raw = ["01234 567890", "+44 (0)7700 900123", "0044 7700-900123", "12345", "07700.900.123"]
    got = pl.DataFrame({"p": raw}).select(phone_expr("p"))["p"].to_list()
    assert got == ["01234567890", "07700900123", "07700900123", None, "07700900123"]


def test_a_plus_44_phone_is_not_a_formula_but_a_formula_still_is() -> None:
    res = _school_extract([
        {"contact1_forename": "Lucy", "contact1_surname": "Rose", "contact1_phone": "+44 7700 900123"},
        {"contact1_forename": "Lucy", "contact1_surname": "Rose", "contact1_phone": "+cmd|' /C calc'!A0"},
        {"contact1_forename": "Lucy", "contact1_surname": "Rose", "contact1_phone": "not a number"},
    ])["school_census"]  # fmt: skip
    assert res.accepted["contact1_phone"].to_list() == ["07700900123", None]
    assert res.quarantined["reasons"].to_list() == ["formula_like_cell:contact1_phone"]
    assert res.accepted["dq_flags"].to_list()[1] == ["invalid_phone:contact1_phone"]


def test_contacts_say_whether_they_live_with_the_pupil() -> None:
    res = _school_extract([
        # At the pupil's address (spacing and case differ), at another, and one with no
        # first line but the pupil's postcode.
        {"contact1_forename": "Lucy", "contact1_surname": "Rose",
         "contact1_address_line1": "1  HIGH street", "contact1_postcode": "xm1 1aa",
         "contact2_forename": "Dan", "contact2_surname": "Rose",
         "contact2_address_line1": "9 Far Lane", "contact2_postcode": "XM9 9ZZ"},
        {"contact1_forename": "Lucy", "contact1_surname": "Rose", "contact1_postcode": "XM1 1AA"},
    ])  # fmt: skip
    c = school_contacts(res).sort("unique_id", "contact")
    assert c.select("unique_id", "contact", "forename", "lives_with_pupil").rows() == [
        ("school_census:SC0", 1, "LUCY", True),
        ("school_census:SC0", 2, "DAN", False),
        ("school_census:SC1", 1, "LUCY", True),
    ]
    # An extract without contacts gives none (a council's school file may not carry them).
    assert school_contacts({}).is_empty()


D = date(2024, 1, 15)


def _contact(uid: str, k: int, **kw: object) -> dict:
    base = {"unique_id": uid, "contact": k, "relationship": "PAR", "lives_with_pupil": True}
    return {**base, **kw}


def _contacts(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame([{c: r.get(c) for c in CONTACT_SCHEMA} for r in rows],
                        schema=CONTACT_SCHEMA)  # fmt: skip


def test_a_contact_living_with_the_pupil_links_the_adult_named() -> None:
    recs = _contact_records([
        {"unique_id": "sc", "source": "school_census", "person_key": 1, "event_date": D,
         "forename": "AVA", "surname": "ROSE", "dob": date(2014, 5, 1),
         "address_line1": "1 HIGH STREET", "postcode": "XM1 1AA"},
        # Her mother, recorded by the police at the address under the same name.
        {"unique_id": "po", "source": "police", "person_key": 2, "event_date": date(2023, 3, 1),
         "forename": "LUCY", "surname": "HALE", "dob": date(1985, 1, 1),
         "address_line1": "1 High Street", "postcode": "XM1 1AA"},
        # Her father, who lives elsewhere, recorded at his own address.
        {"unique_id": "pf", "source": "police", "person_key": 3, "event_date": date(2023, 3, 1),
         "forename": "DAN", "surname": "ROSE", "dob": date(1983, 1, 1),
         "address_line1": "9 FAR LANE", "postcode": "XM9 9ZZ"},
        # Her step-father, known to DWP by postcode only.
        {"unique_id": "dw", "source": "dwp", "person_key": 4, "event_date": date(2022, 6, 1),
         "forename": "TOM", "surname": "KEMP", "dob": date(1980, 1, 1), "postcode": "XM1 1AA"},
    ])  # fmt: skip
    contacts = _contacts([
        _contact("sc", 1, forename="LIZ", surname="HALE", address_line1="1 High Street",
                 postcode="XM1 1AA"),
        _contact("sc", 2, forename="DANIEL", surname="ROSE", address_line1="9 Far Lane",
                 postcode="XM9 9ZZ", lives_with_pupil=False),
        _contact("sc", 3, forename="THOMAS", surname="KEMP", address_line1="1 High Street",
                 postcode="XM1 1AA", relationship="STP"),
    ])  # fmt: skip
    by_rule = contact_edges(recs, contacts)
    assert by_rule["school_contact_at_address"].rows() == [(1, 2)]  # initial and surname
    assert by_rule["school_contact_at_postcode"].sort("b").rows() == [(1, 2), (1, 4)]
    linked = {tuple(r) for r in family_edges(recs, contacts).rows()}
    # The father living elsewhere is family, but another household: never linked.
    assert (1, 3) not in linked and (1, 2) in linked and (1, 4) in linked


def test_a_contact_matching_two_people_at_the_postcode_links_neither() -> None:
    recs = _contact_records([
        {"unique_id": "sc", "person_key": 1, "event_date": D, "surname": "ROSE",
         "address_line1": "1 HIGH STREET", "postcode": "XM1 1AA"},
        {"unique_id": "d1", "person_key": 2, "event_date": D, "forename": "LUCY",
         "surname": "SMITH", "dob": date(1985, 1, 1), "postcode": "XM1 1AA"},
        {"unique_id": "d2", "person_key": 3, "event_date": D, "forename": "LAURA",
         "surname": "SMITH", "dob": date(1990, 1, 1), "postcode": "XM1 1AA"},
    ])  # fmt: skip
    contacts = _contacts([_contact("sc", 1, forename="LUCY", surname="SMITH", postcode="XM1 1AA")])
    assert contact_edges(recs, contacts)["school_contact_at_postcode"].is_empty()


def test_a_contact_not_updated_since_the_family_moved_still_counts() -> None:
    recs = _contact_records([
        # The pupil now, and at the old address two years ago.
        {"unique_id": "s2", "person_key": 1, "event_date": D, "surname": "ROSE",
         "address_line1": "5 NEW ROAD", "postcode": "XM2 2BB"},
        {"unique_id": "s1", "person_key": 1, "event_date": date(2022, 1, 15), "surname": "ROSE",
         "address_line1": "1 HIGH STREET", "postcode": "XM1 1AA"},
        {"unique_id": "po", "person_key": 2, "event_date": date(2022, 5, 1), "forename": "LUCY",
         "surname": "ROSE", "dob": date(1985, 1, 1), "address_line1": "1 HIGH STREET",
         "postcode": "XM1 1AA"},
    ])  # fmt: skip
    contacts = _contacts([_contact("s2", 1, forename="LUCY", surname="ROSE",
                                   address_line1="1 High Street", postcode="XM1 1AA",
                                   lives_with_pupil=False)])  # fmt: skip
    assert contact_edges(recs, contacts)["school_contact_at_address"].rows() == [(1, 2)]


def test_pupils_whose_contacts_share_a_phone_and_surname_are_one_family() -> None:
    recs = _contact_records(
        [
            {"unique_id": "a", "person_key": 1, "event_date": D},
            {"unique_id": "b", "person_key": 2, "event_date": D},
            {"unique_id": "c", "person_key": 3, "event_date": D},
        ]
    )
    contacts = _contacts([
        _contact("a", 1, forename="LUCY", surname="ROSE", phone="04123456789"),
        _contact("b", 1, forename="LUCY", surname="ROSE", phone="04123456789"),
        # The same number under another name: a number since given to someone else.
        _contact("c", 1, forename="JO", surname="BLAKE", phone="04123456789"),
    ])  # fmt: skip
    assert contact_edges(recs, contacts)["school_contact_phone"].rows() == [(1, 2)]


def test_surname_and_postcode_speaks_only_where_an_address_is_missing() -> None:
    recs = _contact_records([
        # Two Smith households in one postcode, both with addresses: not one family.
        {"unique_id": "a", "person_key": 1, "event_date": D, "surname": "SMITH",
         "postcode": "XM1 1AA", "address_line1": "1 HIGH STREET"},
        {"unique_id": "b", "person_key": 2, "event_date": D, "surname": "SMITH",
         "postcode": "XM1 1AA", "address_line1": "7 HIGH STREET"},
        # A Smith with only a postcode cannot say which of them is hers.
        {"unique_id": "c", "person_key": 3, "event_date": D, "surname": "SMITH",
         "postcode": "XM1 1AA"},
        # A Jones with only a postcode, and the one Jones household there: linked.
        {"unique_id": "d", "person_key": 4, "event_date": D, "surname": "JONES",
         "postcode": "XM1 1AA"},
        {"unique_id": "e", "person_key": 5, "event_date": D, "surname": "JONES",
         "postcode": "XM1 1AA", "address_line1": "3 HIGH STREET"},
    ])  # fmt: skip
    rule = family_edges_by_rule(recs)["surname_and_postcode"]
    assert rule.rows() == [(4, 5)]


# ------------------------------------------------------- early-years claimants ---


def _people(rows: list[dict]) -> pl.DataFrame:
    extra = {"forename": pl.Utf8, "ni_number": pl.Utf8}
    return _records(rows).with_columns(
        pl.Series(c, [r.get(c) for r in rows], dtype=t) for c, t in extra.items()
    )


def _claims(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame([{c: r.get(c) for c in CLAIMANT_SCHEMA} for r in rows],
                        schema=CLAIMANT_SCHEMA)  # fmt: skip


MUM = date(1990, 5, 6)


def test_a_claimant_is_found_by_ni_number_or_the_one_person_with_her_name_and_dob() -> None:
    recs = _people([
        {"unique_id": "early_years:1", "person_key": 1, "forename": "AVA", "surname": "ROSE"},
        {"unique_id": "early_years:2", "person_key": 2, "forename": "LEO", "surname": "HALE"},
        # Ava's mother, known to DWP by NI number under another surname.
        {"unique_id": "dwp:1", "person_key": 10, "forename": "KAYE", "surname": "STONE",
         "dob": MUM, "ni_number": "AB123456C"},
        # Leo's father, known to the police only by name and date of birth.
        {"unique_id": "police:1", "person_key": 20, "forename": "DANIEL", "surname": "HALE",
         "dob": MUM},
    ])  # fmt: skip
    claims = _claims([
        {"unique_id": "early_years:1", "claimant_surname": "STONE", "claimant_forename": "KAY",
         "claimant_ni_number": "AB123456C"},
        # A nickname on the claim: the initial still agrees.
        {"unique_id": "early_years:2", "claimant_surname": "HALE", "claimant_forename": "DAN",
         "claimant_dob": MUM},
    ])  # fmt: skip
    assert sorted(claimant_edges(recs, claims).rows()) == [(1, 10), (2, 20)]
    assert {(1, 10), (2, 20)} <= set(family_edges(recs, claimants=claims).rows())


def test_a_claimant_two_people_could_be_names_nobody() -> None:
    recs = _people([
        {"unique_id": "early_years:1", "person_key": 1, "forename": "AVA", "surname": "ROSE"},
        {"unique_id": "police:1", "person_key": 20, "forename": "DAN", "surname": "HALE",
         "dob": MUM},
        {"unique_id": "housing:1", "person_key": 30, "forename": "DEAN", "surname": "HALE",
         "dob": MUM},
    ])  # fmt: skip
    claims = _claims([{"unique_id": "early_years:1", "claimant_surname": "HALE",
                       "claimant_forename": "DAN", "claimant_dob": MUM}])  # fmt: skip
    assert claimant_edges(recs, claims).is_empty()


def test_claimants_are_read_from_the_early_years_extract_and_standardised() -> None:
    contract = get_contract("early_years")
    base = {"ey_record_id": "EY1", "forename": "Ava", "surname": "Rose", "dob": "2021-01-02",
            "sex": "F", "postcode": "XM1 1AA", "term": "2023-AUT", "funding_type": "2YO",
            "funded_hours": "15", "daf": "N", "sen_support": "N", "provider_urn": "EY1"}  # fmt: skip
    raw = pl.DataFrame([
        {**base, "claimant_forename": "kaye", "claimant_surname": " Stone ",
         "claimant_dob": "1990-05-06", "claimant_ni_number": "ab 12 34 56 c"},
        # A claim with no claimant (the universal entitlement checks no parent).
        {**base, "ey_record_id": "EY2", "funding_type": "3-4YO_UNIVERSAL"},
    ])  # fmt: skip
    res = validate(raw, contract, file=Path("early_years.csv"), as_at=date(2026, 1, 1))
    assert res.quarantined.is_empty()
    c = early_years_claimants({"early_years": res})
    assert c.rows() == [("early_years:EY1", "KAYE", "STONE", MUM, "AB123456C")]
    # An extract without the columns gives no claimants (a council's file may lack them).
    plain = validate(raw.select(contract.column_names), contract,
                     file=Path("early_years.csv"), as_at=date(2026, 1, 1))  # fmt: skip
    assert early_years_claimants({"early_years": plain}).is_empty()


def test_an_address_a_source_carries_only_for_families_links_households_not_persons() -> None:
    # The health extract's GP address joins a patient known to health only by NHS number
    # to the household recorded at that address by another source...
    recs = _records([
        {"unique_id": "health:1", "source": "health", "person_key": 1,
         "address_line1": "1 High Street", "postcode": "XM1 1AA",
         "event_date": date(2024, 3, 1)},
        {"unique_id": "housing:1", "source": "housing", "person_key": 2, "surname": "ROSE",
         "address_line1": "1 HIGH STREET", "postcode": "XM1 1AA",
         "event_date": date(2023, 9, 1)},
    ])  # fmt: skip
    assert family_edges_by_rule(recs)["same_address"].rows() == [(1, 2)]
    # ...but the optional address columns are never scored for persons.
    for source in ("health", "adult_social_care", "youth_justice"):
        assert source in FAMILY_ONLY_ADDRESS["postcode"]
    for source in ("early_years", "neet", "dwp", "school_census"):
        assert source in FAMILY_ONLY_ADDRESS["address_line1"]
        assert source not in FAMILY_ONLY_ADDRESS["postcode"]  # their postcode is scored


def test_household_evidence_never_reaches_zone_b() -> None:
    from anonymise.pseudonymise import MasterKey
    from pipelines.link import person_records, without_family_only_address
    from pipelines.zone_b import build_zone_b

    row = {"forename": "Ava", "surname": "Rose", "dob": "2021-01-02", "sex": "F",
           "postcode": "XM1 1AA", "term": "2023-AUT", "funding_type": "2YO",
           "funded_hours": "15", "daf": "N", "sen_support": "N", "provider_urn": "EY1",
           "address_line1": "7 Quarry Lane", "claimant_forename": "Kaye",
           "claimant_surname": "Stone", "claimant_dob": "1990-05-06",
           "claimant_ni_number": "AB123456C"}  # fmt: skip
    ey = validate(pl.DataFrame([{"ey_record_id": "EY1", **row}]), get_contract("early_years"),
                  file=Path("early_years.csv"), as_at=date(2026, 1, 1))  # fmt: skip
    health = validate(
        pl.DataFrame([{"health_record_id": "H1", "nhs_number": "9434765919",
                       "contact_date": "2024-01-01", "service": "CAMHS",
                       "address_line1": "7 Quarry Lane", "postcode": "XM7 7QQ"}]),
        get_contract("health"), file=Path("health.csv"), as_at=date(2026, 1, 1),
    )  # fmt: skip
    school = validate(
        pl.DataFrame([{"census_record_id": "S1", "upn": None, "forename": "Ava", "surname": "Rose",
                       "dob": "2021-01-02", "sex": "F", "postcode": "XM1 1AA",
                       "ethnicity": "WBRI", "academic_year": "2025/26", "school_urn": "1",
                       "ncyear": "0", "fsm_eligible": "N", "sen_provision": "N",
                       "sessions_possible": "10", "sessions_missed": "0", "suspensions": "0",
                       "permanent_exclusion": "N"}]).cast(pl.Utf8),
        get_contract("school_census"), file=Path("school_census.csv"), as_at=date(2026, 1, 1),
    )  # fmt: skip
    results = {"early_years": ey, "health": health, "school_census": school}
    linked = without_family_only_address(
        person_records(results).with_columns(
            pl.lit(1, pl.Int64).alias("person_key"), pl.lit(1, pl.Int64).alias("family_key")
        )
    )
    # The linked records keep no address a source carries only for families.
    assert linked["address_line1"].null_count() == 3
    assert linked.filter(pl.col("source") == "health")["postcode"].to_list() == [None]
    zb = build_zone_b(linked, results, MasterKey(b"z" * 32, "environment"), None)
    secrets = {"7 QUARRY LANE", "XM7 7QQ", "KAYE", "STONE", "AB123456C", "1990-05-06"}
    for name, df in {"persons": zb.persons, **zb.events}.items():
        added = {c.name for c in get_contract("early_years").optional_columns}
        assert not added & set(df.columns), name
        for col in df.columns:
            values = {str(v).upper() for v in df[col].cast(pl.Utf8).drop_nulls().to_list()}
            assert not values & secrets, (name, col)
