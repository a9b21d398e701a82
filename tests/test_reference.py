"""Reference data beside the extracts: ONS population estimates, the extract manifest and
the release's "data as at" (the date of the extracts, never the day the pipeline ran)."""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from pipelines.reference import (
    ReferenceDataError,
    data_as_at,
    extract_as_at,
    latest_dense_date,
    load_population,
    load_reference,
    parse_population,
)
from pipelines.store import Store
from portal.cli import app
from synthetic.generator import generate_county

SDC = "cd" * 32


@pytest.fixture(scope="module")
def county(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("county2k")
    generate_county(2000, 5, d)
    return d


# --- population estimates -----------------------------------------------------------------


def _ons(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema=["ladcode21", "laname21", "country", "sex", "age", "population_2020"],
        orient="row",
    ).cast(pl.Utf8)


def test_reads_the_ons_layout_with_either_sex_coding():
    raw = _ons(
        [
            ("E06000051", "Shropshire", "E", "1", "0", "1,402"),
            ("E06000051", "Shropshire", "E", "2", "17", "1610"),
            ("E06000051", "Shropshire", "E", "M", "90", "900"),
            ("E06000051", "Shropshire", "E", "F", "5", "0"),
        ]
    )
    df = parse_population(raw, file="mye.csv")
    assert df.sort("age").select("area_code", "sex", "age", "mid_year", "population").rows() == [
        ("E06000051", "Male", 0, 2020, 1402),
        ("E06000051", "Female", 17, 2020, 1610),
        ("E06000051", "Male", 90, 2020, 900),
    ]  # rows of 0 carry no one
    assert df["lsoa_code"].null_count() == df.height  # a county file: no LSOA


def test_bad_rows_are_reported_together_naming_file_row_and_value():
    raw = _ons(
        [
            ("E1", "A", "E", "X", "0", "10"),
            ("E1", "A", "E", "1", "101", "10"),
            ("E1", "A", "E", "2", "3", "-4"),
        ]
    )
    with pytest.raises(ReferenceDataError) as e:
        parse_population(raw, file="mye.csv")
    msg = str(e.value)
    assert "mye.csv, row 2: sex 'X'" in msg
    assert "mye.csv, row 3: age '101'" in msg
    assert "mye.csv, row 4: population_2020 '-4'" in msg


def test_missing_columns_are_named():
    with pytest.raises(ReferenceDataError, match="missing column 'age'.*\n.*no population_YYYY"):
        parse_population(pl.DataFrame({"ladcode21": ["E1"], "sex": ["1"]}), file="x.csv")


def test_the_synthetic_county_ships_estimates_of_its_own_people(county):
    pop = load_population(county)
    people = pl.read_csv(county / "truth" / "people.csv", try_parse_dates=True)
    mid = date(2023, 6, 30)
    alive = people.filter(pl.col("dob") <= mid)
    est = pop.filter(pl.col("mid_year") == 2023)
    assert est["population"].sum() == alive.height
    children = alive.filter(pl.col("dob") > date(2005, 6, 30)).height
    assert abs(est.filter(pl.col("age") < 18)["population"].sum() - children) <= 2
    # Every estimate has a ward and a locality from the postcode lookup.
    assert est.filter(pl.col("locality") == "Not known").height == 0
    assert sorted(pop["mid_year"].unique().to_list()) == [2021, 2022, 2023, 2024, 2025]


def test_a_missing_population_file_stops_the_run_with_a_clear_message(county, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(county, raw)
    (raw / "reference" / "population_estimates.csv").unlink()
    with pytest.raises(ReferenceDataError, match="population_estimates.csv: not found"):
        load_reference(raw)


# --- the data date ------------------------------------------------------------------------


def test_a_declared_extract_date_wins():
    got = data_as_at(
        declared=date(2026, 3, 31),
        latest_events={"a": date(2026, 5, 1)},
        run_date=date(2026, 12, 1),
    )
    assert got == date(2026, 3, 31)


def test_otherwise_the_latest_event_date_never_the_run_date():
    latest = {"a": date(2026, 3, 29), "b": date(2026, 3, 31), "c": None}
    assert data_as_at(declared=None, latest_events=latest, run_date=date(2026, 12, 1)) == date(
        2026, 3, 31
    )
    # Dates after the run are errors in the data, not the data date.
    latest["d"] = date(2027, 1, 1)
    assert data_as_at(declared=None, latest_events=latest, run_date=date(2026, 12, 1)) == date(
        2026, 3, 31
    )
    assert data_as_at(declared=None, latest_events={}, run_date=date(2026, 12, 1)) == date(
        2026, 12, 1
    )


def test_one_mistyped_future_date_is_not_the_latest_event():
    daily = [date(2026, 1, 1) + timedelta(days=i) for i in range(90)]  # to 31 March
    typo = date(2026, 11, 3)  # 3 November for 11 March, day and month swapped
    dates = pl.Series(daily + [typo])
    assert latest_dense_date(dates, not_after=date(2026, 12, 1)) == date(2026, 3, 31)
    assert latest_dense_date(pl.Series([typo]), not_after=date(2026, 12, 1)) is None


def test_extract_date_of_a_county_folder(county, tmp_path):
    assert extract_as_at(county, run_date=date(2026, 12, 1)) == date(2026, 3, 31)
    # Without the manifest: the latest event date in the extracts.
    raw = tmp_path / "raw"
    shutil.copytree(county, raw)
    (raw / "extract.json").unlink()
    got = extract_as_at(raw, run_date=date(2026, 12, 1))
    assert date(2026, 3, 1) <= got <= date(2026, 3, 31)


def test_a_malformed_manifest_is_named(county, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(county, raw)
    (raw / "extract.json").write_text(json.dumps({"extract_date": "31/03/2026"}))
    with pytest.raises(ReferenceDataError, match="extract.json: expected"):
        extract_as_at(raw)


def test_portal_run_dates_the_release_by_its_extracts(county, tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_PSEUDONYM_KEY", "k" * 64)
    monkeypatch.setenv("PORTAL_SDC_SECRET", SDC)
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    res = CliRunner().invoke(
        app,
        [
            "run",
            "--raw",
            str(county),
            "--work",
            str(tmp_path / "work"),
            "--store",
            url,
            "--accept-unmatched-objections",
            "all",
        ],
    )
    assert res.exit_code == 0, res.output
    release = Store(url).latest_release()
    assert release is not None and release.data_as_at == date(2026, 3, 31)
