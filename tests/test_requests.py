"""Erasure and restriction requests: kept as keyed tokens only, applied by every run,
audited at every step, and nothing personal in the store or the audit log."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from anonymise.pseudonymise import MasterKey
from pipelines import requests as reqs
from pipelines.run import run_pipeline
from pipelines.store import Store, audit_log, subject_requests
from pipelines.zone_b import person_pseudonyms
from portal.cli import app
from synthetic.generator import generate_county

KEY = MasterKey(b"e" * 32, "environment")
KEY_HEX = "65" * 32  # the same key, as $PORTAL_PSEUDONYM_KEY
AS_AT = date(2026, 3, 31)


def test_identifiers_are_normalised_like_records_and_checked():
    ids = reqs.normalise_identifiers(
        nhs_number=" 943 476 5919 ", ni_number="ab 12 34 56 c", lcs_person_id=" lcs0000123 ",
        forename=" zoë ", surname="o'neill", dob="2015-03-04", postcode="xm12ab",
    )  # fmt: skip
    assert ids == {
        "nhs_number": "9434765919",
        "ni_number": "AB123456C",
        "lcs_person_id": "LCS0000123",
        "name_dob_postcode": "ZOE|O'NEILL|2015-03-04|XM1 2AB",
    }
    with pytest.raises(reqs.RequestError) as err:
        reqs.normalise_identifiers(nhs_number="1234567890", forename="Zoe", dob="2015-13-01")
    problems = " / ".join(err.value.problems)
    assert "NHS number is not valid" in problems and "YYYY-MM-DD" in problems
    assert "missing: postcode, surname" in problems
    assert "1234567890" not in problems  # a problem never echoes the value
    with pytest.raises(reqs.RequestError, match="at least one identifier"):
        reqs.normalise_identifiers()


def test_tokens_are_keyed_and_kind_tagged():
    a = reqs.tokens_for(KEY, {"nhs_number": "9434765919"})
    b = reqs.tokens_for(MasterKey(b"f" * 32, "environment"), {"nhs_number": "9434765919"})
    assert a != b and "9434765919" not in a["nhs_number"]
    assert (
        reqs.tokens_for(KEY, {"upn": "X"})["upn"]
        != reqs.tokens_for(KEY, {"ni_number": "X"})["ni_number"]
    )


def test_requests_are_kept_as_tokens_listed_counted_and_lifted(db_url):
    store = Store(db_url)
    ids = reqs.normalise_identifiers(nhs_number="9434765919")
    erase = reqs.add_request(store, KEY, "erasure", ids, received_on=date(2026, 4, 1), actor="a")
    restrict = reqs.add_request(
        store, KEY, "restriction", {"upn": "A123456789012"}, received_on=date(2026, 4, 2),
        actor="a",
    )  # fmt: skip
    listed = reqs.list_requests(store)
    assert listed["request_id"].to_list() == [restrict, erase] or set(listed["request_id"]) == {
        restrict,
        erase,
    }
    assert "tokens" not in listed.columns
    assert reqs.request_counts(store)["erasure_active"] == 1
    assert reqs.request_counts(store)["active_not_yet_applied"] == 2
    with store.engine.connect() as conn:
        stored = json.dumps([dict(r) for r in conn.execute(sa.select(subject_requests)).mappings()],
                            default=str)  # fmt: skip
    assert "9434765919" not in stored and "A123456789012" not in stored
    with pytest.raises(reqs.RequestError, match="erasures cannot be lifted"):
        reqs.lift_request(store, erase, actor="a")
    reqs.lift_request(store, restrict, actor="a")
    assert reqs.request_counts(store)["restriction_lifted"] == 1
    actions = store.read_audit()["action"].to_list()
    assert actions.count("request_added") == 2 and "request_lifted" in actions
    store.dispose()


@pytest.fixture(scope="module")
def county(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("requests")
    generate_county(3000, 21, d / "raw")
    return {"dir": d, "raw": d / "raw"}


def _truth_person(raw: Path, source: str, n: int = 0) -> dict:
    truth = pl.read_csv(raw / "truth" / "records.csv", infer_schema=False)
    people = pl.read_csv(raw / "truth" / "people.csv", infer_schema=False)
    ids = truth.filter(pl.col("source") == source)["person_id"].unique().sort()
    row = people.filter(pl.col("person_id").is_in(ids.implode()) & (pl.col("nhs_number") != ""))
    return row.row(n, named=True)


def _latest_postcode(raw: Path, family_id: str) -> str:
    hist = pl.read_csv(raw / "truth" / "address_history.csv", infer_schema=False)
    return str(hist.filter(pl.col("family_id") == family_id).sort("moved_in")["postcode"][-1])


def _findable_by_name(raw: Path, source: str, *, other_than: str) -> tuple[dict, str]:
    """A person of `source` (after the first, as before) that a restriction by name, date
    of birth and current postcode finds: some extract holds a record with their name and
    date of birth at their household's latest postcode. Whether one does is incidental to
    the draw (the records may all predate a move), so the test chooses such a person."""
    frames = [
        pl.read_csv(f, infer_schema=False).select("forename", "surname", "dob", "postcode")
        for f in sorted(raw.glob("*.csv"))
        if {"forename", "surname", "dob", "postcode"} <= set(pl.read_csv(f, n_rows=0).columns)
    ]
    held = {
        (r[0].upper(), r[1].upper(), r[2], r[3].replace(" ", "").upper())
        for r in pl.concat(frames).drop_nulls().iter_rows()
    }
    for n in range(1, 200):
        person = _truth_person(raw, source, n)
        if person["person_id"] == other_than:
            continue
        postcode = _latest_postcode(raw, person["family_id"])
        key = (person["forename"].upper(), person["surname"].upper(), person["dob"])
        if (*key, postcode.replace(" ", "").upper()) in held:
            return person, postcode
    raise AssertionError(f"no {source} person is held at their latest postcode")


def _zone_b_id(work: Path, raw: Path, truth_id: str) -> set[str]:
    linked = pl.read_parquet(work / "zone_a" / "linked_records.parquet")
    truth = pl.read_csv(raw / "truth" / "records.csv", infer_schema=False).select(
        pl.concat_str("source", pl.lit(":"), "record_id").alias("unique_id"), "person_id"
    )
    keys = linked.join(truth, on="unique_id").filter(pl.col("person_id") == truth_id)
    ids = person_pseudonyms(linked, KEY).join(keys.select("person_key").unique(), on="person_key")
    return set(ids["person_id"])


def test_erasure_and_restriction_end_to_end(county, monkeypatch):
    raw, d = county["raw"], county["dir"]
    url = f"sqlite:///{d / 'store.sqlite'}"
    store = Store(url)
    run = lambda name: run_pipeline(  # noqa: E731
        raw, d / name, KEY, as_at=AS_AT, store=store, sdc_secret=b"g" * 32,
        accept_unmatched_objections="all", keep_zone_a=True,
    )  # fmt: skip
    before = run("before")
    erased = _truth_person(raw, "social_care")
    restricted, postcode = _findable_by_name(raw, "early_help", other_than=erased["person_id"])
    erased_ids = _zone_b_id(d / "before", raw, erased["person_id"])
    restricted_ids = _zone_b_id(d / "before", raw, restricted["person_id"])
    persons = pl.read_parquet(d / "before" / "zone_b" / "persons.parquet")
    assert erased_ids <= set(persons["person_id"]) and restricted_ids <= set(persons["person_id"])

    monkeypatch.setenv("PORTAL_PSEUDONYM_KEY", KEY_HEX)
    monkeypatch.setenv("COLUMNS", "300")
    res = CliRunner().invoke(
        app, ["requests", "add", "--type", "erasure", "--nhs-number", erased["nhs_number"],
              "--received", "2026-04-01", "--store", url],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(
        app, ["requests", "add", "--type", "restriction", "--forename", restricted["forename"],
              "--surname", restricted["surname"], "--dob", restricted["dob"],
              "--postcode", postcode, "--store", url],
    )  # fmt: skip
    assert res.exit_code == 0, res.output

    after = run("after")
    assert after.requests is not None
    counts = after.requests.counts()
    print(f"\nrequests applied: {counts}")
    assert counts["erasure_requests"] == 1 and counts["restriction_requests"] == 1
    assert counts["requests_matching_nobody"] == 0
    persons = pl.read_parquet(d / "after" / "zone_b" / "persons.parquet")
    assert not (erased_ids | restricted_ids) & set(persons["person_id"])
    for f in (d / "after" / "zone_b" / "events").glob("*.parquet"):
        ev = pl.read_parquet(f)
        assert not ev.filter(pl.col("person_id").is_in(list(erased_ids | restricted_ids))).height
    table = pl.read_parquet(d / "after" / "zone_b" / "research_table.parquet")
    assert not table.filter(pl.col("person_id").is_in(list(erased_ids | restricted_ids))).height
    assert before.zone_b is not None and after.zone_b is not None
    assert after.zone_b.persons.height == before.zone_b.persons.height - len(
        erased_ids | restricted_ids
    )
    # Published history is not touched by a routine release: the ledger carries it.
    assert after.published is not None and after.published.plan.kind == "routine"
    assert after.published.diff.gone > 0  # their units wait for a revision...
    assert after.published.diff.carried >= after.published.diff.gone  # ...published as before
    listed = CliRunner().invoke(app, ["requests", "list", "--store", url])
    assert listed.exit_code == 0 and "erasure" in listed.output and "not yet" not in listed.output

    # A lifted restriction: the person is processed again.
    restriction_id = reqs.list_requests(store).filter(pl.col("type") == "restriction")[
        "request_id"
    ][0]
    assert (
        CliRunner().invoke(app, ["requests", "lift", restriction_id, "--store", url]).exit_code == 0
    )
    again = run("again")
    persons = pl.read_parquet(d / "again" / "zone_b" / "persons.parquet")
    assert restricted_ids <= set(persons["person_id"])
    assert not erased_ids & set(persons["person_id"])
    assert again.requests is not None and again.requests.counts()["active_requests"] == 1

    # Nothing personal in the store's request register or the audit log.
    # Every NHS, NI and pupil number in the county, and the names, dates of birth and
    # postcode typed into the two requests.
    people = pl.read_csv(raw / "truth" / "people.csv", infer_schema=False)
    personal = {
        str(v).upper()
        for c in ("nhs_number", "ni_number", "upn")
        for v in people[c].to_list()
        if v and len(str(v)) > 3
    }
    personal |= {
        str(p[c]).upper() for p in (erased, restricted) for c in ("forename", "surname", "dob")
    }
    personal |= {postcode.upper(), postcode.replace(" ", "").upper()}
    with store.engine.connect() as conn:
        texts = [json.dumps(dict(r), default=str).upper()
                 for t in (audit_log, subject_requests)
                 for r in conn.execute(sa.select(t)).mappings()]  # fmt: skip
    leaks = {p for p in personal for t in texts if p in t}
    assert not leaks, sorted(leaks)[:5]
    actions = set(store.read_audit()["action"])
    assert {"request_added", "requests_applied", "request_lifted", "release_written"} <= actions
    store.dispose()
