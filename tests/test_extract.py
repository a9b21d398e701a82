"""Research extracts: k and l checked independently with pycanon, objectors left out,
pseudonyms per project, refusals with reasons, and a motivated-intruder test."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest
from pycanon import anonymity

from anonymise.catalogue import CATALOGUE, REQUESTABLE
from anonymise.extract import (
    ExtractInvalid,
    ExtractRefused,
    ExtractRequest,
    build_extract,
    hierarchies_for,
    load_extract_policy,
)
from anonymise.projects import Project, ProjectSpec
from anonymise.pseudonymise import MasterKey, pseudonymise_series
from pipelines.run import run_pipeline
from pipelines.zone_b import ZONE_B_PROJECT, person_anchors
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


def _project(pid="prj-00000000aa", family=False, researchers=("Dr Test",)):
    spec = ProjectSpec(
        title="Study A",
        purpose="Outcomes of Early Help for families in the county",
        lawful_basis="UK GDPR 6(1)(e)",
        variables=REQUESTABLE if family else tuple(CATALOGUE),
        researchers=researchers,
        approver="approver",
        approved_on=date(2026, 1, 1),
        expires_on=date(2099, 1, 1),
        family_analysis=family,
    )
    return Project(pid, spec)


PROJECT = _project()


def _req(variables, **kw):
    return ExtractRequest(PROJECT.project_id, "", "Dr Test", tuple(variables), **kw)


def _build(table, geo, req, project=PROJECT, **kw):
    ex = build_extract(
        table, geo, req, project=project, key=KEY, policy=POLICY, data_as_at=str(AS_AT), **kw
    )
    # Every extract, re-checked with pycanon on its released quasi-identifiers.
    assert _pycanon_k(ex.data, ex.certificate["quasi_identifiers"]) >= ex.certificate["policy"]["k"]
    return ex


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
        ["age", "sex", "lsoa", "ethnicity", "cin_category_latest", "absence_pct_latest"],
        {"sensitive": "cin_category_latest", "l": 2},
    ),
    (
        ["age", "lsoa", "police_incidents", "eh_needs_latest"],
        {"sensitive": "eh_needs_latest", "l": 2, "k": 10},
    ),
]


@pytest.mark.parametrize(("variables", "kw"), REQUESTS)
def test_extract_meets_k_and_l_checked_with_pycanon(world, variables, kw):
    _, table, geo = world
    ex = _build(table, geo, _req(variables, **kw))
    qis = ex.certificate["quasi_identifiers"]
    # Every variable someone outside the council could know is a quasi-identifier.
    assert set(qis) == {v for v in variables if CATALOGUE[v].known_by}
    k = kw.get("k", POLICY.k)
    assert _pycanon_k(ex.data, qis) >= k
    if "sensitive" in kw:
        assert _pycanon_l(ex.data, qis, kw["sensitive"]) >= kw["l"]
    records = ex.certificate["records"]
    eligible = records["in_research_table"] - records["objectors_excluded"]
    assert records["suppressed"] <= POLICY.suppression_limit * eligible
    assert records["released"] == ex.data.height == eligible - records["suppressed"]
    assert set(ex.data.columns) == {"person_id", *variables}


def test_objectors_are_left_out(world):
    _, table, geo = world
    ex = _build(table, geo, _req(["age", "sex"]))
    objectors = table.filter(pl.col("objected"))
    assert objectors.height > 0
    their_pseudonyms = pseudonymise_series(
        objectors["person_id"], KEY.project_key(PROJECT.project_id), prefix="P"
    )
    assert not set(their_pseudonyms) & set(ex.data["person_id"])
    assert ex.certificate["records"]["objectors_excluded"] == objectors.height


def test_pseudonyms_are_per_project(world):
    _, table, geo = world
    fam = _project(family=True)
    a1 = _build(table, geo, _req(["age", "sex", "family_id"]), project=fam)
    a2 = _build(table, geo, _req(["age", "sex", "family_id"]), project=fam)
    other = _project("prj-00000000bb", family=True)
    b = _build(
        table, geo, ExtractRequest(other.project_id, "", "Dr Test", ("age", "sex", "family_id")),
        project=other,
    )  # fmt: skip
    assert a1.data["person_id"].to_list() == a2.data["person_id"].to_list()
    assert not set(a1.data["person_id"]) & set(b.data["person_id"])
    assert not set(a1.data["family_id"].drop_nulls()) & set(b.data["family_id"].drop_nulls())
    # Nor can a project pseudonym be matched to the zone B pseudonym.
    assert not set(a1.data["person_id"]) & set(table["person_id"])


def test_impossible_extract_is_refused_with_reasons(world):
    _, table, geo = world
    with pytest.raises(ExtractRefused) as e:
        _build(table, geo, _req(["age", "sex"], k=100_000))
    assert e.value.reasons and "suppress" in " ".join(e.value.reasons)


def test_refusal_names_a_coarser_choice_that_passes(world):
    _, table, geo = world
    # A yes/no variable can never be 3-diverse: refused, and k-anonymity alone would pass.
    req = _req(["age", "sex", "lsoa", "cp_plan_ever"], sensitive="cp_plan_ever", l=3, k=10)
    with pytest.raises(ExtractRefused) as e:
        _build(table, geo, req)
    assert any("drop l-diversity on 'cp_plan_ever'" in s for s in e.value.suggestions)
    # Too many detailed quasi-identifiers for k=50: leaving one out is suggested.
    req = _req(["age", "sex", "lsoa", "ethnicity"], k=50)
    try:
        _build(table, geo, req)
    except ExtractRefused as e2:
        assert e2.suggestions


@pytest.mark.parametrize(
    ("req", "error", "message"),
    [
        (ExtractRequest("", "", "Dr Test", ("age",)), ExtractInvalid, "choose a project"),
        (
            ExtractRequest(PROJECT.project_id, "", "Dr Test", ()),
            ExtractInvalid,
            "at least one variable",
        ),
        (_req(["age"], k=2), ExtractInvalid, "below the policy's floor"),
        (_req(["age", "contacts"], sensitive="contacts"), ExtractInvalid, "quasi-identifier"),
        (_req(["age", "assessments"], sensitive="assessments"), ExtractInvalid, "not a sensitive"),
        (_req(["age", "nhs_number"]), ExtractRefused, "not approved"),
        (
            ExtractRequest(PROJECT.project_id, "", "Dr Other", ("age",)),
            ExtractRefused,
            "not a named researcher",
        ),
        (_req(["age", "family_id"]), ExtractRefused, "family"),
        (_req(["assessments"]), ExtractRefused, "no quasi-identifier"),
    ],
)
def test_bad_requests_are_invalid_or_refused_clearly(world, req, error, message):
    _, table, geo = world
    with pytest.raises(error, match=message):
        _build(table, geo, req)


def test_every_column_goes_out_through_its_treatment(world):
    _, table, geo = world
    variables = ["age", "sex", "first_eh_referral_month", "absence_pct_latest", "police_incidents",
                 "eh_needs_latest", "cp_plan_ever"]  # fmt: skip
    ex = _build(table, geo, _req(variables))
    data = ex.data
    # Dates leave as quarters or coarser, never a month; counts banded; decimals banded.
    assert not data["first_eh_referral_month"].str.contains(r"^\d{4}-\d{2}$").any()
    assert set(data["police_incidents"].unique()) <= {
        "0",
        "1",
        "2",
        "3-5",
        "6-10",
        "11+",
        "1-2",
        "3+",
        "1+",
        "*",
    }
    assert not data["absence_pct_latest"].str.contains(r"^\d+\.\d$").any()
    # Free text never: only known need codes, 'other' or 'not recorded'.
    from registry.codes import NEEDS

    tokens = set(data["eh_needs_latest"].str.split(";").explode().unique().to_list())
    assert tokens <= {*NEEDS, "other", "not recorded", "*"}
    cols = {c["variable"]: c for c in ex.certificate["columns"]}
    assert cols["absence_pct_latest"]["role"] == "quasi_identifier"
    assert "school" in " ".join(cols["absence_pct_latest"]["known_by"])
    assert cols["cp_plan_ever"]["role"] == "sensitive" and cols["cp_plan_ever"]["known_by"] == []
    assert set(ex.dictionary["variable"]) == {"person_id", *variables}
    assert ex.dictionary["released_as"].str.len_chars().min() > 0
    # A column generalised away entirely is said plainly.
    for q in ex.certificate["withheld"]:
        assert "withheld" in cols[q]["treatment"]


def test_motivated_intruder(world):
    """An intruder holds name, DOB, postcode and sex (and ethnicity) for a sample of real
    people, generalises them as the certificate says, and links to the extract."""
    d, table, geo = world
    variables = ["age", "sex", "ethnicity", "lsoa", "eh_episodes", "csc_referrals"]
    ex = _build(table, geo, _req(variables, k=10))
    # What the intruder knows: the demographics (the other QIs only make it harder).
    qis = [
        q for q in ex.certificate["quasi_identifiers"] if q in ("age", "sex", "ethnicity", "lsoa")
    ]
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
        pseudonymise_series(true_of["zb"], KEY.project_key(PROJECT.project_id), prefix="P").alias(
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
