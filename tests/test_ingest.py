"""Ingest: every kind of bad file stops the run with one clear message; every
kind of bad row is quarantined with a machine-readable reason; nothing is lost."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from pipelines.contracts import all_contracts, get_contract
from pipelines.ingest import (
    SourceFileError,
    ingest_all,
    quarantine_report,
    read_raw,
    standardise_name,
    validate,
)

AS_AT = date(2026, 11, 21)


@pytest.fixture()
def raw(county_20k, tmp_path) -> Path:
    """A private copy of the county's extracts that a test may damage."""
    d = tmp_path / "raw"
    shutil.copytree(county_20k, d, ignore=shutil.ignore_patterns("truth"))
    return d


def _validate(name: str, rows: list[dict[str, str | None]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    c = get_contract(name)
    df = pl.DataFrame(
        [{k: r.get(k) for k in c.column_names} for r in rows],
        schema={k: pl.Utf8 for k in c.column_names},
    )
    res = validate(df, c, file=Path(f"{name}.csv"), as_at=AS_AT)
    assert res.accepted.height + res.quarantined.height == len(rows)
    return res.accepted, res.quarantined


GOOD_FD = {
    "contact_id": "FD1",
    "forename": "Zoë",
    "surname": "o'neill ",
    "dob": "2015-03-04",
    "sex": "F",
    "address_line1": "1 High Street",
    "postcode": "xm1  2ab",
    "contact_date": "2024-05-06",
    "contact_source": "SCHOOL",
    "decision": "NFA",
}


def test_good_row_is_standardised():
    acc, q = _validate("front_door", [GOOD_FD])
    assert q.height == 0
    row = acc.row(0, named=True)
    assert row["forename"] == "ZOE"  # diacritics removed, upper case
    assert row["surname"] == "O'NEILL"
    assert row["postcode"] == "XM1 2AB"
    assert row["dob"] == date(2015, 3, 4)
    assert row["record_id"] == "FD1"


def test_mixed_date_layouts_are_understood():
    r = dict(GOOD_FD, contact_date="06/05/2024")
    acc, q = _validate("front_door", [r])
    assert q.height == 0 and acc["contact_date"][0] == date(2024, 5, 6)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"dob": "not a date"}, "bad_date:dob"),
        ({"dob": "1850-01-01"}, "impossible_date:dob"),
        ({"contact_date": "2031-01-01"}, "impossible_date:contact_date"),
        ({"dob": "2025-01-01", "contact_date": "2024-01-01"}, "impossible_date:dob_after_event"),
        ({"forename": None}, "missing_required:forename"),
        ({"decision": "MAYBE"}, "bad_code:decision"),
        ({"forename": '=HYPERLINK("http://x.example","click")'}, "formula_like_cell:forename"),
        ({"address_line1": "@SUM(A1:A9)"}, "formula_like_cell:address_line1"),
        ({"contact_id": None}, "missing_required:contact_id"),
    ],
)
def test_bad_rows_are_quarantined_with_reasons(change, reason):
    bad = dict(GOOD_FD, contact_id="FD2")
    bad.update(change)
    acc, q = _validate("front_door", [GOOD_FD, bad])
    assert acc.height == 1 and acc["record_id"][0] == "FD1"
    assert q.height == 1
    assert reason in q["reasons"][0].split(";")
    assert q["line"][0] == 3  # header is line 1, first data row line 2


def test_wrong_types_in_integer_columns():
    c = get_contract("school_census")
    base = {k: "1" for k in c.column_names}
    base.update(
        census_record_id="SC1", upn=None, forename="A", surname="B", dob="2012-01-01", sex="M",
        postcode="XM1 2AB", ethnicity="WBRI", academic_year="2023/24", school_urn="100001",
        fsm_eligible="N", sen_provision="N", permanent_exclusion="N",
    )  # fmt: skip
    acc, q = _validate(
        "school_census",
        [
            base,
            dict(base, census_record_id="SC2", sessions_missed="lots"),
            dict(base, census_record_id="SC3", suspensions="-2"),
        ],
    )
    assert acc.height == 1
    assert q["reasons"].to_list() == ["bad_int:sessions_missed", "bad_int:suspensions"]


def test_invalid_nhs_number_is_blanked_when_other_identifiers_exist():
    c = get_contract("social_care")
    row = {k: None for k in c.column_names}
    row.update(
        csc_record_id="C1", lcs_person_id="LCS1", forename="A", surname="B", dob="2012-01-01", sex="M",
        nhs_number="943 476 5918", referral_date="2024-01-01", referral_source="GP", primary_need="N1",
    )  # fmt: skip
    acc, q = _validate("social_care", [row, dict(row, csc_record_id="C2", nhs_number="9434765919")])
    assert q.height == 0
    assert acc["nhs_number"].to_list() == [None, "9434765919"]
    assert acc["dq_flags"].to_list() == [["invalid_nhs_number"], []]


def test_invalid_nhs_number_quarantines_when_it_is_the_only_identifier():
    acc, q = _validate(
        "health",
        [
            {
                "health_record_id": "H1",
                "nhs_number": "9434765919",
                "contact_date": "2024-01-01",
                "service": "CAMHS",
            },
            {
                "health_record_id": "H2",
                "nhs_number": "9434765918",
                "contact_date": "2024-01-01",
                "service": "CAMHS",
            },
        ],
    )
    assert acc["record_id"].to_list() == ["H1"]
    assert q["reasons"].to_list() == ["invalid_nhs_number"]


def test_duplicate_rows_and_duplicate_keys():
    acc, q = _validate(
        "front_door",
        [GOOD_FD, dict(GOOD_FD, contact_id="FD2"), dict(GOOD_FD, forename="Other")],
    )
    # FD2 repeats FD1 in every column but its key; the third row reuses FD1's key.
    assert acc["record_id"].to_list() == ["FD1"]
    assert sorted(q["reasons"].to_list()) == ["duplicate_record_id", "duplicate_row"]


def test_names_standardise_consistently():
    assert standardise_name("  Łukasz   Wójcik-Smith ") == "LUKASZ WOJCIK-SMITH"
    assert standardise_name("José") == standardise_name("JOSE")
    assert standardise_name("123") is None


# ------------------------------------------------------------ file level ---


def _expect_file_error(raw: Path, fragment: str) -> None:
    with pytest.raises(SourceFileError) as e:
        ingest_all(raw, as_at=AS_AT)
    msg = str(e.value)
    assert fragment in msg, msg
    assert "nothing was written" in msg


def test_missing_file(raw):
    (raw / "police.csv").unlink()
    _expect_file_error(raw, "no extract for Police")


def test_empty_file(raw):
    (raw / "housing.csv").write_text("")
    _expect_file_error(raw, "housing.csv: the file is empty")


def test_header_only_file(raw):
    text = (raw / "housing.csv").read_text().splitlines()[0]
    (raw / "housing.csv").write_text(text + "\n")
    _expect_file_error(raw, "housing.csv: has a header but no data rows")


def test_missing_or_renamed_column(raw):
    df = pl.read_csv(raw / "dwp.csv", infer_schema=False).rename({"dob": "date_of_birth"})
    df.write_csv(raw / "dwp.csv")
    _expect_file_error(raw, "dwp.csv: missing column(s) 'dob'")
    with pytest.raises(SourceFileError, match="unexpected column.*'date_of_birth'.*renamed"):
        ingest_all(raw, as_at=AS_AT)


def test_wrong_delimiter(raw):
    df = pl.read_csv(raw / "neet.csv", infer_schema=False)
    df.write_csv(raw / "neet.csv", separator=";")
    _expect_file_error(raw, "neet.csv: columns are separated by semicolons, expected commas")


def test_non_utf8_bytes(raw):
    data = (raw / "early_years.csv").read_bytes()
    lines = data.split(b"\n")
    lines[5] = lines[5].replace(b",", b",Ren\xe9e ", 1)  # Windows-1252 e-acute
    (raw / "early_years.csv").write_bytes(b"\n".join(lines))
    _expect_file_error(raw, "early_years.csv: not valid UTF-8 at line 6 (byte 0xE9)")


def test_not_a_csv(raw):
    (raw / "youth_justice.csv").write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    _expect_file_error(raw, "youth_justice.csv: not a CSV file")


def test_spreadsheet_instead_of_csv(raw):
    (raw / "objections.csv").unlink()
    (raw / "objections.xlsx").write_bytes(b"PK\x03\x04")
    _expect_file_error(raw, "objections.xlsx: not a CSV or Parquet file")


def test_fake_parquet(raw):
    (raw / "health.csv").unlink()
    (raw / "health.parquet").write_text("hello")
    _expect_file_error(raw, "health.parquet: not a Parquet file")


def test_every_problem_is_reported_together(raw):
    (raw / "police.csv").unlink()
    (raw / "housing.csv").write_text("")
    with pytest.raises(SourceFileError, match="2 source file problems") as e:
        ingest_all(raw, as_at=AS_AT)
    assert "police" in str(e.value).lower() and "housing.csv" in str(e.value)


# ------------------------------------------------------------ whole county ---


def test_county_rows_in_equal_accepted_plus_quarantined(county_20k):
    # The contracts' extracts (the returns' own invariant is in tests/test_returns.py).
    results = ingest_all(county_20k, as_at=AS_AT, sources=all_contracts())
    assert len(results) == 13
    for name, r in results.items():
        raw = read_raw(r.file, get_contract(name))
        assert r.rows_in == raw.height
        assert r.accepted.height + r.quarantined.height == raw.height
        # No row is both accepted and quarantined, none is lost.
        ids = set(r.accepted["record_id"]) | set(r.quarantined[get_contract(name).record_id])
        assert len(ids) == raw[get_contract(name).record_id].n_unique()
    report = quarantine_report(results)
    assert report["rows"].sum() >= sum(r.quarantined.height for r in results.values())
    assert set(report["reason"]) >= {"duplicate_row", "invalid_nhs_number"}


def test_parquet_extracts_ingest_the_same(tmp_path):
    from synthetic.generator import generate_county

    generate_county(1500, 5, tmp_path / "csv")
    generate_county(1500, 5, tmp_path / "pq", fmt="parquet")
    a = ingest_all(tmp_path / "csv", as_at=AS_AT)
    b = ingest_all(tmp_path / "pq", as_at=AS_AT)
    for name in a:
        assert a[name].accepted.equals(b[name].accepted), name
