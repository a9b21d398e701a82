"""Objections are never lost: every imperfect register row is used, matched on any usable
identifier, scoped as documented, and anything that cannot be applied stops publication."""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from anonymise.pseudonymise import MasterKey
from pipelines.contracts import get_contract
from pipelines.identifiers import is_valid_nhs_number
from pipelines.ingest import validate_objections
from pipelines.objections import ObjectionError
from pipelines.run import run_pipeline
from pipelines.store import Store
from pipelines.zone_b import person_pseudonyms
from portal.cli import app
from synthetic.generator import generate_county

AS_AT = date(2026, 3, 31)
RUN_DATE = date(2026, 6, 30)
KEY = MasterKey(b"o" * 32, "environment")
SDC = b"q" * 32
OBJ = get_contract("objections")


# --- the register, row by row (no pipeline) -------------------------------------------------------


def _rows(*rows: dict[str, str | None]) -> pl.DataFrame:
    cols = [c.name for c in OBJ.every_column]
    return pl.DataFrame(
        [{c: r.get(c) for c in cols} for r in rows], schema={c: pl.Utf8 for c in cols}
    )


def _validate(*rows: dict[str, str | None]):
    return validate_objections(_rows(*rows), OBJ, file=Path("objections.csv"), run_date=RUN_DATE)


BASE = {
    "objection_id": "OBJ1",
    "forename": "Amy",
    "surname": "Shaw",
    "dob": "2014-05-06",
    "sex": "F",
    "postcode": "XM1 2AB",
    "nhs_number": "9434765919",
    "date_received": "2026-01-10",
    "scope": "PLANNING_AND_RESEARCH",
}


def test_bad_date_of_birth_with_a_valid_nhs_number_is_used():
    res = _validate({**BASE, "dob": "2014-02-30"})
    assert res.quarantined.height == 0
    row = res.accepted.row(0, named=True)
    assert row["dob"] is None and row["nhs_number"] == "9434765919"
    assert "bad_date:dob" in row["dq_flags"]


def test_received_after_the_as_at_date_is_not_an_impossible_date():
    after_as_at = (AS_AT + timedelta(days=40)).isoformat()
    res = _validate({**BASE, "date_received": after_as_at})
    row = res.accepted.row(0, named=True)
    assert row["date_received"] == AS_AT + timedelta(days=40)
    assert row["dq_flags"] == []
    # After today it is a warning, and still applied.
    future = _validate({**BASE, "date_received": "2027-01-01"}).accepted.row(0, named=True)
    assert "future_date:date_received" in future["dq_flags"]


def test_lower_case_and_padded_fields_are_standardised():
    res = _validate(
        {
            "objection_id": " OBJ2 ",
            "forename": "  amy ",
            "surname": "shaw",
            "dob": "2014-05-06",
            "postcode": "xm12ab",
            "nhs_number": " 943 476 5919 ",
            "ni_number": " ab 12 34 56 c ",
            "date_received": "2026-01-10",
            "scope": " planning and research ",
        }
    )
    row = res.accepted.row(0, named=True)
    assert (row["forename"], row["surname"]) == ("AMY", "SHAW")
    assert row["postcode"] == "XM1 2AB" and row["nhs_number"] == "9434765919"
    assert row["ni_number"] == "AB123456C"
    assert row["scope"] == "PLANNING_AND_RESEARCH" and row["dq_flags"] == []


def test_unreadable_scope_is_read_as_the_wider_one():
    row = _validate({**BASE, "scope": "some research"}).accepted.row(0, named=True)
    assert row["scope"] == "PLANNING_AND_RESEARCH"
    assert "bad_code:scope" in row["dq_flags"]


def test_only_a_row_with_no_usable_identifier_is_quarantined():
    res = _validate(
        {**BASE, "objection_id": "OBJ3", "nhs_number": "1234567890", "dob": "not a date"},
        {"objection_id": "OBJ4", "forename": "Amy", "nhs_number": None, "date_received": "x"},
        {**BASE, "objection_id": None},
    )
    assert res.accepted["record_id"].to_list() == ["line-4"]  # no reference: its line
    assert res.quarantined["line"].to_list() == [2, 3]
    reasons = res.quarantined["reasons"].to_list()
    assert all(r.startswith("no_usable_identifier") for r in reasons)
    assert "invalid_nhs_number" in reasons[0] and "bad_date:dob" in reasons[0]


# --- the whole pipeline on a small county -----------------------------------------------------------


def _valid_unused_nhs(taken: set[str]) -> str:
    for n in range(900000000, 900010000):
        for check in range(10):
            v = f"{n}{check}"
            if is_valid_nhs_number(v) and v not in taken:
                return v
    raise AssertionError("no NHS number found")


@pytest.fixture(scope="module")
def county(tmp_path_factory) -> dict:
    """A 3,000-person county whose register holds one row for each imperfection."""
    d = tmp_path_factory.mktemp("objections")
    raw = d / "raw"
    generate_county(3000, 21, raw)
    truth = pl.read_csv(raw / "truth" / "records.csv", infer_schema=False)
    people = pl.read_csv(raw / "truth" / "people.csv", infer_schema=False)
    hist = pl.read_csv(raw / "truth" / "address_history.csv", infer_schema=False)
    postcode = dict(
        hist.sort("moved_in").group_by("family_id").agg(pl.col("postcode").last()).iter_rows()
    )
    sc = pl.read_csv(raw / "social_care.csv", infer_schema=False)
    lcs = dict(
        truth.filter(pl.col("source") == "social_care")
        .join(
            sc.select(pl.col("csc_record_id").alias("record_id"), "lcs_person_id"), on="record_id"
        )
        .select("person_id", "lcs_person_id")
        .unique("person_id")
        .iter_rows()
    )

    def with_records(source: str) -> list[str]:
        ids = truth.filter(pl.col("source") == source)["person_id"].unique().sort().to_list()
        return [p for p in ids if p in set(people.filter(pl.col("nhs_number") != "")["person_id"])]

    chosen: dict[str, str] = {}
    used: set[str] = set()

    def pick(source: str, role: str) -> str:
        for p in with_records(source):
            if p not in used:
                used.add(p)
                chosen[role] = p
                return p
        raise AssertionError(source)

    for role, source in (
        ("bad_dob", "social_care"), ("after_as_at", "front_door"), ("padded", "early_help"),
        ("research_only", "early_help"), ("ambiguous_nhs", "front_door"),
        ("ambiguous_lcs", "social_care"),
    ):  # fmt: skip
        pick(source, role)
    info = {r["person_id"]: r for r in people.iter_rows(named=True)}

    def row(role: str, **over: str | None) -> dict[str, str | None]:
        p = info[chosen[role]]
        base = {
            "objection_id": f"OBJ-{role}",
            "forename": p["forename"],
            "surname": p["surname"],
            "dob": p["dob"],
            "sex": p["sex"],
            "address_line1": None,
            "postcode": postcode.get(p["family_id"]),
            "nhs_number": p["nhs_number"],
            "date_received": "2025-11-01",
            "scope": "PLANNING_AND_RESEARCH",
            "ni_number": None,
            "upn": None,
            "lcs_person_id": None,
        }
        return {**base, **over}

    amb = info[chosen["ambiguous_nhs"]]
    nhs = info[chosen["padded"]]["nhs_number"]
    rows = [
        row("bad_dob", dob="2015-02-30", forename="Someone", surname="Else"),
        row("after_as_at", date_received=(AS_AT + timedelta(days=45)).isoformat()),
        row(
            "padded",
            forename=f"  {info[chosen['padded']]['forename'].lower()} ",
            surname=info[chosen["padded"]]["surname"].lower(),
            nhs_number=f" {nhs[:3]} {nhs[3:6]} {nhs[6:]} ",
            postcode=(postcode.get(info[chosen["padded"]]["family_id"]) or "").lower().replace(" ", ""),
            scope=" planning_and_research ",
        ),
        row("research_only", scope="ALL_RESEARCH"),
        {
            **row("ambiguous_lcs"),
            "objection_id": "OBJ-ambiguous",
            "forename": None, "surname": None, "dob": None, "postcode": None,
            "nhs_number": amb["nhs_number"],
            "lcs_person_id": lcs[chosen["ambiguous_lcs"]].lower(),
        },
        {
            "objection_id": "OBJ-nobody", "forename": "Nobody", "surname": "Atall",
            "dob": "1999-09-09", "sex": "F", "address_line1": None, "postcode": "XM9 9ZZ",
            "nhs_number": _valid_unused_nhs(set(people["nhs_number"].to_list())),
            "date_received": "2025-12-01", "scope": "PLANNING_AND_RESEARCH",
            "ni_number": None, "upn": None, "lcs_person_id": None,
        },
    ]  # fmt: skip
    cols = [c.name for c in OBJ.every_column]
    pl.DataFrame(rows, schema={c: pl.Utf8 for c in cols}).write_csv(raw / "objections.csv")
    return {"dir": d, "raw": raw, "chosen": chosen, "truth": truth}


def _zone_b_ids(work: Path, truth: pl.DataFrame, truth_ids: dict[str, str]) -> dict[str, list[str]]:
    """Each chosen truth person's zone B pseudonyms (through the kept zone A linked records;
    a person the linkage split has more than one)."""
    linked = pl.read_parquet(work / "zone_a" / "linked_records.parquet")
    ids = person_pseudonyms(linked, KEY)
    rec = truth.select(
        pl.concat_str("source", pl.lit(":"), "record_id").alias("unique_id"), "person_id"
    )
    keyed = (
        linked.select("unique_id", "person_key")
        .join(rec, on="unique_id")
        .join(ids, on="person_key", suffix="_zb")
    )
    out = {}
    for role, pid in truth_ids.items():
        out[role] = keyed.filter(pl.col("person_id") == pid)["person_id_zb"].unique().to_list()
        assert out[role], role
    return out


def _run(county: dict, name: str, store: Store | None = None, **kw):
    return run_pipeline(
        county["raw"], county["dir"] / name, KEY, as_at=AS_AT, run_date=RUN_DATE,
        store=store, sdc_secret=SDC if store else None, keep_zone_a=True, **kw,
    )  # fmt: skip


def test_unmatched_and_ambiguous_objections_stop_publication(county):
    store = Store(f"sqlite:///{county['dir'] / 'refused.sqlite'}")
    with pytest.raises(ObjectionError) as err:
        _run(county, "refused", store)
    text = str(err.value)
    print("\n" + text)
    assert "2 objection(s) cannot be applied; nothing was published" in text
    assert "objections.csv, line 7 (OBJ-nobody): matches nobody in the data" in text
    assert (
        "line 6 (OBJ-ambiguous): matches 2 different people (on lcs_person_id, nhs_number)" in text
    )
    assert "--accept-unmatched-objections" in text
    assert store.latest_release() is None
    assert not (county["dir"] / "refused").exists()
    refused = store.read_audit(action="objections_refused")
    assert json.loads(refused["detail"][0])["unmatched"] == 1


def test_every_imperfect_row_is_applied_with_its_scope(county):
    store = Store(f"sqlite:///{county['dir'] / 'store.sqlite'}")
    result = _run(
        county, "work", store, accept_unmatched_objections=["OBJ-nobody", "OBJ-ambiguous"]
    )
    rows = {r["reference"]: r for r in result.objections.rows.iter_rows(named=True)}
    print(
        "\n"
        + "\n".join(
            f"{k}: {v['status']} on {v['matched_on']} {v['warnings']}" for k, v in rows.items()
        )
    )
    assert rows["OBJ-bad_dob"]["status"] == "matched"
    assert rows["OBJ-bad_dob"]["matched_on"] == ["nhs_number"]
    assert "bad_date:dob" in rows["OBJ-bad_dob"]["warnings"]
    assert rows["OBJ-after_as_at"]["status"] == "matched"
    assert rows["OBJ-after_as_at"]["warnings"] == []
    assert rows["OBJ-padded"]["status"] == "matched"
    assert "nhs_number" in rows["OBJ-padded"]["matched_on"]
    assert rows["OBJ-ambiguous"]["status"] == "ambiguous" and rows["OBJ-ambiguous"]["acknowledged"]
    assert rows["OBJ-nobody"]["status"] == "unmatched" and rows["OBJ-nobody"]["acknowledged"]
    counts = result.objections.counts
    assert counts["received"] == 6 and counts["matched"] == 4
    # Applied: five people out of statistics (the ambiguous row applies to both people it
    # matched), and the research-only objector out of research extracts only.
    assert counts["people_excluded_from_statistics"] == 6 - 1
    assert counts["people_excluded_from_research"] == 6
    work = county["dir"] / "work"
    zb = _zone_b_ids(work, county["truth"], county["chosen"])
    persons = pl.read_parquet(work / "zone_b" / "persons.parquet")
    flags = {r["person_id"]: r for r in persons.iter_rows(named=True)}
    for role in ("bad_dob", "after_as_at", "padded", "ambiguous_nhs", "ambiguous_lcs"):
        assert any(flags[p]["objected_statistics"] for p in zb[role]), role
        assert any(flags[p]["objected"] for p in zb[role]), role
    (research_only,) = [p for p in zb["research_only"] if flags[p]["objected"]]
    assert not flags[research_only]["objected_statistics"]
    # The research table keeps `objected` = left out of research extracts.
    table = pl.read_parquet(work / "zone_b" / "research_table.parquet")
    assert table.filter(pl.col("person_id") == research_only)["objected"].to_list() == [True]
    # Statistics still count the research-only objector (their Early Help episode).
    eh = pl.read_parquet(work / "zone_b" / "events" / "early_help.parquet")
    assert eh.filter(pl.col("person_id") == research_only).height > 0
    ack = store.read_audit(action="objections_acknowledged")
    detail = json.loads(ack["detail"][0])
    assert detail["unmatched"] == ["OBJ-nobody"] and detail["ambiguous"] == ["OBJ-ambiguous"]
    # The run reports received, matched and applied.
    summary = json.loads((work / "run.json").read_text())
    assert summary["objections"]["received"] == 6
    assert summary["objections"]["people_excluded_from_statistics"] == 5

    # Acknowledgements are kept: the next run proceeds without naming them again.
    again = _run(county, "work2", store)
    assert again.release_id is not None
    assert again.objections.counts["acknowledged"] == 2


def test_a_row_without_any_usable_identifier_cannot_be_acknowledged(county, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(county["raw"], raw)
    reg = pl.read_csv(raw / "objections.csv", infer_schema=False)
    bad = reg.head(1).with_columns(
        pl.lit("OBJ-blank").alias("objection_id"),
        *(pl.lit(None, pl.Utf8).alias(c) for c in ("dob", "nhs_number", "lcs_person_id")),
    )
    pl.concat([reg, bad]).write_csv(raw / "objections.csv")
    with pytest.raises(ObjectionError, match=r"line 8 \(OBJ-blank\): no usable identifier"):
        run_pipeline(raw, tmp_path / "w", KEY, as_at=AS_AT, run_date=RUN_DATE,
                     accept_unmatched_objections="all")  # fmt: skip


def test_cli_reports_objections_and_takes_an_acknowledgement(county, tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_PSEUDONYM_KEY", "ab" * 32)
    monkeypatch.setenv("PORTAL_SDC_SECRET", "cd" * 32)
    monkeypatch.setenv("COLUMNS", "400")  # one report line per line
    args = ["run", "--raw", str(county["raw"]), "--work", str(tmp_path / "w"),
            "--as-at", AS_AT.isoformat(), "--store", f"sqlite:///{tmp_path / 's.sqlite'}"]  # fmt: skip
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 3
    assert "OBJ-nobody" in refused.output and "matches nobody" in refused.output
    ok = CliRunner().invoke(
        app, [*args, "--accept-unmatched-objections", "OBJ-nobody,OBJ-ambiguous"]
    )
    assert ok.exit_code == 0, ok.output
    assert (
        "Objections: 6 received, 4 matched, 1 matching nobody and 1 matching several" in ok.output
    )
    assert (
        "applied to 6 people (research extracts), 5 of them also left out of statistics"
        in ok.output
    )
    assert "bad_date:dob 1" in ok.output
