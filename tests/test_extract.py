"""Research extracts: k and l checked independently with pycanon, objectors left out,
pseudonyms per project, refusals with reasons, and a motivated-intruder test."""

from __future__ import annotations

import hashlib
import json
from datetime import date

import numpy as np
import polars as pl
import pytest
from pycanon import anonymity
from typer.testing import CliRunner

from anonymise.extract import (
    ExtractRefused,
    ExtractRequest,
    build_extract,
    hierarchies_for,
    load_extract_policy,
)
from anonymise.pseudonymise import MasterKey, pseudonymise_series
from pipelines.run import run_pipeline
from pipelines.store import Store
from pipelines.zone_b import ZONE_B_PROJECT, person_anchors
from portal.cli import app
from synthetic.generator import generate_county

AS_AT = date(2026, 11, 21)
KEY = MasterKey(b"x" * 32, "environment")
POLICY = load_extract_policy()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("extract")
    generate_county(6000, 17, d / "raw")
    run_pipeline(d / "raw", d / "work", KEY, as_at=AS_AT, accept_unmatched_objections="all",
                 keep_zone_a=True)  # fmt: skip
    table = pl.read_parquet(d / "work" / "zone_b" / "research_table.parquet")
    geo = pl.read_parquet(d / "work" / "zone_b" / "geography.parquet")
    return d, table, geo


def _req(variables, **kw):
    return ExtractRequest(
        "study-a", "Outcomes of Early Help for families", "Dr Test", tuple(variables), **kw
    )


def _pycanon_k(df: pl.DataFrame, qis: list[str]) -> int:
    pdf = df.select(qis).to_pandas().reset_index(drop=True)
    return anonymity.k_anonymity(pdf, qis)


def _pycanon_l(df: pl.DataFrame, qis: list[str], sensitive: str) -> int:
    pdf = df.select(*qis, sensitive).to_pandas().reset_index(drop=True)
    return anonymity.l_diversity(pdf, qis, [sensitive])


REQUESTS = [
    (["age", "sex", "lsoa", "eh_episodes", "contacts"], {}),
    (["age", "sex", "ethnicity", "csc_referrals", "fsm_ever"], {"k": 20}),
    (
        ["age", "sex", "lsoa", "ethnicity", "sen_latest", "absence_pct_latest"],
        {"sensitive": "sen_latest", "l": 2},
    ),
    (
        ["age", "lsoa", "police_incidents", "domestic_abuse_incidents"],
        {"sensitive": "domestic_abuse_incidents", "l": 2, "k": 10},
    ),
]


@pytest.mark.parametrize(("variables", "kw"), REQUESTS)
def test_extract_meets_k_and_l_checked_with_pycanon(world, variables, kw):
    _, table, geo = world
    ex = build_extract(
        table, geo, _req(variables, **kw), key=KEY, policy=POLICY, data_as_at=str(AS_AT)
    )
    qis = ex.certificate["quasi_identifiers"]
    k = kw.get("k", POLICY.k)
    assert _pycanon_k(ex.data, qis) >= k
    if "sensitive" in kw:
        assert _pycanon_l(ex.data, qis, kw["sensitive"]) >= kw["l"]
    records = ex.certificate["records"]
    eligible = records["in_research_table"] - records["objectors_excluded"]
    assert records["suppressed"] <= POLICY.suppression_limit * eligible
    assert records["released"] == ex.data.height == eligible - records["suppressed"]
    assert set(ex.data.columns) == {"person_id", "family_id", *variables}


def test_objectors_are_left_out(world):
    _, table, geo = world
    ex = build_extract(
        table, geo, _req(["age", "sex"]), key=KEY, policy=POLICY, data_as_at=str(AS_AT)
    )
    objectors = table.filter(pl.col("objected"))
    assert objectors.height > 0
    their_pseudonyms = pseudonymise_series(
        objectors["person_id"], KEY.project_key("study-a"), prefix="P"
    )
    assert not set(their_pseudonyms) & set(ex.data["person_id"])
    assert ex.certificate["records"]["objectors_excluded"] == objectors.height


def test_pseudonyms_are_per_project(world):
    _, table, geo = world
    a1 = build_extract(table, geo, _req(["age", "sex"]), key=KEY, policy=POLICY, data_as_at="x")
    a2 = build_extract(table, geo, _req(["age", "sex"]), key=KEY, policy=POLICY, data_as_at="x")
    b = build_extract(
        table,
        geo,
        ExtractRequest("study-b", "Another project entirely", "Dr B", ("age", "sex")),
        key=KEY,
        policy=POLICY,
        data_as_at="x",
    )
    assert a1.data["person_id"].to_list() == a2.data["person_id"].to_list()
    assert not set(a1.data["person_id"]) & set(b.data["person_id"])
    assert not set(a1.data["family_id"]) & set(b.data["family_id"])
    # Nor can a project pseudonym be matched to the zone B pseudonym.
    assert not set(a1.data["person_id"]) & set(table["person_id"])


def test_impossible_extract_is_refused_with_reasons(world):
    _, table, geo = world
    with pytest.raises(ExtractRefused) as e:
        build_extract(
            table, geo, _req(["age", "sex"], k=100_000), key=KEY, policy=POLICY, data_as_at="x"
        )
    assert e.value.reasons and "suppress" in " ".join(e.value.reasons)


def test_refusal_names_a_coarser_choice_that_passes(world):
    _, table, geo = world
    # A yes/no variable can never be 3-diverse: refused, and k-anonymity alone would pass.
    req = _req(["age", "sex", "lsoa", "cp_plan_ever"], sensitive="cp_plan_ever", l=3, k=10)
    with pytest.raises(ExtractRefused) as e:
        build_extract(table, geo, req, key=KEY, policy=POLICY, data_as_at="x")
    assert any("drop l-diversity on 'cp_plan_ever'" in s for s in e.value.suggestions)
    # Too many detailed quasi-identifiers for k=50: leaving one out is suggested.
    req = _req(["age", "sex", "lsoa", "ethnicity"], k=50)
    try:
        build_extract(table, geo, req, key=KEY, policy=POLICY, data_as_at="x")
    except ExtractRefused as e2:
        assert e2.suggestions


@pytest.mark.parametrize(
    ("req", "message"),
    [
        (ExtractRequest("p", "short", "Dr", ("age",)), "purpose"),
        (
            ExtractRequest("p", "A long enough purpose", "Dr", ("age", "nhs_number")),
            "unknown variable 'nhs_number'",
        ),
        (
            ExtractRequest("p", "A long enough purpose", "Dr", ("age",), k=2),
            "below the policy's floor",
        ),
        (
            ExtractRequest(
                "p", "A long enough purpose", "Dr", ("age", "contacts"), sensitive="contacts"
            ),
            "not a sensitive variable",
        ),
        (ExtractRequest("p", "A long enough purpose", "Dr", ("contacts",)), "no quasi-identifier"),
    ],
)
def test_bad_requests_are_refused_clearly(world, req, message):
    _, table, geo = world
    with pytest.raises(ExtractRefused, match=message):
        build_extract(table, geo, req, key=KEY, policy=POLICY, data_as_at="x")


def test_motivated_intruder(world):
    """An intruder holds name, DOB, postcode and sex (and ethnicity) for a sample of real
    people, generalises them as the certificate says, and links to the extract."""
    d, table, geo = world
    variables = ["age", "sex", "ethnicity", "lsoa", "eh_episodes", "csc_referrals"]
    ex = build_extract(
        table, geo, _req(variables, k=10), key=KEY, policy=POLICY, data_as_at=str(AS_AT)
    )
    qis = ex.certificate["quasi_identifiers"]
    levels = ex.certificate["transformation_levels"]
    hier = hierarchies_for(table, geo)

    # Zone A knowledge: the truth of who each extract row is.
    linked = pl.read_parquet(d / "work" / "zone_a" / "linked_records.parquet")
    truth = pl.read_csv(d / "raw" / "truth" / "records.csv", infer_schema=False).select(
        pl.concat_str("source", pl.lit(":"), "record_id").alias("unique_id"), "person_id"
    )
    anchors = person_anchors(linked)
    zkey = KEY.project_key(ZONE_B_PROJECT)
    anchors = anchors.with_columns(
        pseudonymise_series(anchors["anchor"], zkey, prefix="p").alias("zb")
    )
    true_of = (
        linked.join(truth, on="unique_id")
        .group_by("person_key", "person_id")
        .len()
        .sort("len", descending=True)
        .unique("person_key", keep="first")
        .join(anchors.select("person_key", "zb"), on="person_key")
    )
    true_of = true_of.with_columns(
        pseudonymise_series(true_of["zb"], KEY.project_key("study-a"), prefix="P").alias(
            "extract_id"
        )
    ).select("extract_id", pl.col("person_id").alias("true_person"))

    # The intruder's file: public-register facts about 600 real people (zone A truth).
    people = pl.read_csv(d / "raw" / "truth" / "people.csv", infer_schema=False)
    lookup = pl.read_csv(d / "raw" / "reference" / "postcode_lookup.csv", infer_schema=False)
    hist = pl.read_csv(d / "raw" / "truth" / "address_history.csv", infer_schema=False).sort(
        "moved_in"
    )
    latest_pc = hist.group_by("family_id").agg(pl.col("postcode").last())
    known = people.filter(pl.col("person_id").is_in(true_of["true_person"].implode()))
    rng = np.random.default_rng(0)
    sample = known[rng.choice(known.height, size=min(600, known.height), replace=False)]
    intruder = (
        sample.join(latest_pc, on="family_id", how="left")
        .join(
            lookup.select("postcode", pl.col("lsoa_code").alias("lsoa")), on="postcode", how="left"
        )
        .with_columns(
            ((pl.lit(AS_AT) - pl.col("dob").str.to_date()).dt.total_days() / 365.25)
            .floor()
            .cast(pl.Int64)
            .clip(0, 99)
            .cast(pl.Utf8)
            .alias("age"),
            pl.col("lsoa").fill_null("Not known"),
        )
        .select("person_id", *qis)
    )
    # Generalise the intruder's values exactly as the certificate says the extract was.
    gen = intruder
    for q in qis:
        h = hier[q]
        mapping = h.table.select(pl.col("l0").alias(q), pl.col(f"l{levels[q]}").alias(f"g_{q}"))
        gen = gen.join(mapping, on=q, how="left")
    gen = gen.select("person_id", *[pl.col(f"g_{q}").alias(q) for q in qis])
    released = ex.data.select("person_id", *qis).rename({"person_id": "extract_id"})
    matches = gen.join(released, on=qis, how="inner")
    sizes = matches.group_by("person_id").len()
    unique = sizes.filter(pl.col("len") == 1)
    correct_unique = (
        matches.join(unique.select("person_id"), on="person_id")
        .join(true_of, on="extract_id")
        .filter(pl.col("true_person") == pl.col("person_id"))
    )
    rate = correct_unique.height / intruder.height
    # A guess at random inside the matched class: expected success is 1/|class|.
    expected_guess = sizes.select((1 / pl.col("len")).sum()).item() / intruder.height
    k = 10
    print(
        f"intruder: {intruder.height} targets, unique correct matches {rate:.4f}, random-guess success {expected_guess:.4f}"
    )
    assert rate <= 1 / k
    assert expected_guess <= 1 / k


def test_cli_extract_writes_files_certificate_and_audit(world, tmp_path, monkeypatch):
    d, _, _ = world
    monkeypatch.setenv("PORTAL_PSEUDONYM_KEY", (b"x" * 32).hex())
    store = f"sqlite:///{tmp_path / 'store.sqlite'}"
    out = tmp_path / "out" / "study.csv"
    res = CliRunner().invoke(app, [
        "extract", "--project", "study-a", "--purpose", "Outcomes of Early Help for families",
        "--variables", "age,sex,lsoa,eh_episodes", "--out", str(out), "--work", str(d / "work"),
        "--store", store, "--requester", "dr-test",
    ])  # fmt: skip
    assert res.exit_code == 0, res.output
    cert = json.loads((tmp_path / "out" / "study.certificate.json").read_text())
    assert cert["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert (tmp_path / "out" / "study.dictionary.csv").exists()
    assert "RELEASE CERTIFICATE" in (tmp_path / "out" / "study.certificate.txt").read_text()
    audit = Store(store).read_audit(action="extract")
    rows = audit.to_dicts() if isinstance(audit, pl.DataFrame) else list(audit)
    assert rows and rows[-1]["actor"] == "dr-test"
    # Nothing in the certificate or the audit is a key or a zone B pseudonym.
    text = json.dumps(cert) + json.dumps(rows, default=str)
    assert (b"x" * 32).hex() not in text


def test_cli_extract_refusal_exits_nonzero_and_is_audited(world, tmp_path, monkeypatch):
    d, _, _ = world
    monkeypatch.setenv("PORTAL_PSEUDONYM_KEY", (b"x" * 32).hex())
    store = f"sqlite:///{tmp_path / 'store.sqlite'}"
    res = CliRunner().invoke(app, [
        "extract", "--project", "p", "--purpose", "A long enough purpose", "--variables", "age,sex",
        "--k", "100000", "--out", str(tmp_path / "x.csv"), "--work", str(d / "work"), "--store", store,
    ])  # fmt: skip
    assert res.exit_code == 1
    assert "extract refused" in res.output
    assert not (tmp_path / "x.csv").exists()
    audit = Store(store).read_audit(action="extract_refused")
    assert (audit.height if isinstance(audit, pl.DataFrame) else len(list(audit))) == 1


def test_cli_check_output(tmp_path):
    ok = tmp_path / "ok.csv"
    ok.write_text("locality,n\nA,12\nB,40\nC,0\n")
    res = CliRunner().invoke(app, ["check-output", str(ok)])
    assert res.exit_code == 0 and "PASS" in res.output
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "locality,n,total,top1,top2\nA,12,1000,950,20\nB,4,100,30,20\nC,30,1000,500,460\nD,50,1000,100,90\n"
    )
    res = CliRunner().invoke(
        app, ["check-output", str(bad), "--total", "total", "--top1", "top1", "--top2", "top2"]
    )
    assert res.exit_code == 1
    out = res.output
    assert "row 2: dominance" in out  # A: top two are 97% of the total
    assert "row 3: threshold" in out  # B: 4 records
    # C: remainder 40 < 10% of 500 (with two contributors, a p% failure is always also a
    # dominance failure at k=90%).
    assert "row 4: dominance (2,90%); p-ratio (10%)" in out
    assert "row 5" not in out  # D passes everything
    res = CliRunner().invoke(app, ["check-output", str(bad), "--count", "nope"])
    assert res.exit_code == 2 and "no column 'nope'" in res.output
