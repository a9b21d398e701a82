"""The national evaluation share: two files that keep identifiers and attributes apart,
a share key that joins them and nothing else, objectors left out, each file encrypted for
its own recipient, and a manifest whose hashes match."""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pyrage
import pytest
from pyrage import x25519
from typer.testing import CliRunner

from anonymise.policy import default_policy
from anonymise.pseudonymise import MasterKey, pseudonymise_series
from pipelines.derive import ZoneBFrames, need_outcomes
from pipelines.run import run_pipeline
from pipelines.share import (
    ATTRIBUTE_FIELDS,
    IDENTIFIER_FIELDS,
    ShareError,
    build_share,
    financial_year_bounds,
    load_layout,
    parse_layout,
    share_key,
    zone_b_ids,
)
from pipelines.share_io import ShareRequest, list_shares, make_share
from pipelines.store import Store
from synthetic.generator import generate_county

KEY = MasterKey(b"s" * 32, "environment")
SDC = bytes.fromhex("cd" * 32)
LAYOUT = load_layout("supporting-families")


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("raw")
    generate_county(4000, 13, raw)
    w = tmp_path_factory.mktemp("share") / "work"
    run_pipeline(
        raw, w, KEY, as_at=date(2026, 11, 21), accept_unmatched_objections="all", keep_zone_a=True
    )
    return w


@pytest.fixture(scope="module")
def zone(work):
    persons = pl.read_parquet(work / "zone_b" / "persons.parquet")
    events = {p.stem: pl.read_parquet(p) for p in (work / "zone_b" / "events").glob("*.parquet")}
    linked = pl.read_parquet(work / "zone_a" / "linked_records.parquet")
    outcomes = need_outcomes(ZoneBFrames(persons, events, date(2026, 11, 21)))
    return linked, persons, events, outcomes


def _busiest_year(events) -> str:
    eh = events["early_help"]
    y = eh.select(
        pl.when(pl.col("referral_date").dt.month() >= 4)
        .then(pl.col("referral_date").dt.year())
        .otherwise(pl.col("referral_date").dt.year() - 1)
        .alias("y")
    )["y"].mode()[0]
    return f"{y}/{(y + 1) % 100:02d}"


def _build(zone, share_id="shr-0123456789ab", excluded=None):
    linked, persons, events, outcomes = zone
    return build_share(
        linked,
        persons,
        events["early_help"],
        outcomes,
        key=KEY,
        share_id=share_id,
        period=_busiest_year(events),
        layout=LAYOUT,
        excluded=excluded
        if excluded is not None
        else persons.filter(pl.col("objected"))["person_id"],
    )


def test_identifiers_file_holds_identifiers_only_and_attributes_none(zone):
    linked, *_ = zone
    f = _build(zone)
    assert f.people > 50 and f.families > 20
    id_names = {c.name for c in LAYOUT.identifiers}
    attr_names = {c.name for c in LAYOUT.attributes}
    assert set(f.identifiers.columns) == id_names and set(f.attributes.columns) == attr_names
    # The only column both carry is the share key.
    assert id_names & attr_names == {"SHARE_KEY"}
    # No identifying value anywhere in the attributes file.
    text = f.attributes.write_csv()
    for col in ("nhs_number", "ni_number", "surname", "postcode"):
        values = set(linked[col].drop_nulls().unique().to_list())
        found = [v for v in values if len(v) > 3 and v in text]
        assert not found, f"{col} values in the attributes file: {found[:3]}"
    # And the identifiers file carries real identifiers (it is the linker's file).
    assert f.identifiers["NHS_NUMBER"].str.len_chars().max() == 10
    assert (f.identifiers["SURNAME"] != "").mean() > 0.95


def test_the_share_key_joins_the_two_files_and_nothing_else(zone):
    linked, persons, *_ = zone
    a = _build(zone, "shr-0123456789ab")
    b = _build(zone, "shr-ba9876543210")
    keys_a_id, keys_a_attr = set(a.identifiers["SHARE_KEY"]), set(a.attributes["SHARE_KEY"])
    assert keys_a_attr == keys_a_id  # every analysed person can be linked, and only they
    # Another share of the same people has unrelated keys.
    assert not keys_a_id & set(b.identifiers["SHARE_KEY"])
    # A research project's pseudonyms (keyed by its project id, even one spelled like the
    # share id) never collide with share keys, nor with zone B's own.
    ids = persons["person_id"]
    for project in ("prj-0123456789", "shr-0123456789ab", "evaluation-share"):
        extract_keys = set(pseudonymise_series(ids, KEY.project_key(project), prefix="S").to_list())
        assert not keys_a_id & extract_keys
    assert not keys_a_id & set(ids.to_list())
    # The same share id always gives the same keys (reproducible for the recipients).
    assert _build(zone, "shr-0123456789ab").identifiers.equals(a.identifiers)


def test_objectors_and_requested_exclusions_are_in_neither_file(zone):
    linked, persons, events, _ = zone
    base = _build(zone, excluded=pl.Series([], dtype=pl.String))
    skey = share_key(KEY, "shr-0123456789ab")
    start, end = financial_year_bounds(_busiest_year(events))
    in_scope = (
        events["early_help"]
        .filter(
            (pl.col("referral_date") <= end)
            & (pl.col("closure_date").is_null() | (pl.col("closure_date") >= start))
            & ~pl.col("person_id").is_in(persons.filter(pl.col("objected"))["person_id"].to_list())
        )["person_id"]
        .unique()
        .sort()
    )
    chosen = in_scope.head(25)
    f = _build(zone, excluded=chosen)
    assert f.excluded_people == 25
    assert f.people == base.people - 25
    gone = set(pseudonymise_series(chosen, skey, prefix="S").to_list())
    assert gone <= set(base.identifiers["SHARE_KEY"])
    assert not gone & set(f.identifiers["SHARE_KEY"]) and not gone & set(f.attributes["SHARE_KEY"])
    # The objections register's own people are excluded by default.
    objectors = persons.filter(pl.col("objected"))["person_id"]
    default = _build(zone)
    assert not set(pseudonymise_series(objectors, skey, prefix="S").to_list()) & set(
        default.identifiers["SHARE_KEY"]
    )


def test_layout_refuses_fields_in_the_wrong_file():
    raw = {
        "share": {"programme": "x", "title": "X", "lawful_basis": "DEA 2017", "version": 1},
        "identifiers": {
            "columns": [{"name": "K", "field": "share_key"}, {"name": "N", "field": "needs_count"}]
        },
        "attributes": {
            "columns": [
                {"name": "K", "field": "share_key"},
                {"name": "NHS", "field": "nhs_number"},
                {"name": "A", "field": "role"},
                {"name": "A", "field": "age_at_start"},
                {"name": "Z", "field": "favourite_colour"},
                {"name": "R", "field": "role", "format": "%Y"},
            ]
        },
        "extra": {},
    }
    with pytest.raises(ShareError) as e:
        parse_layout(raw)
    text = "\n".join(e.value.problems)
    assert "'needs_count' belongs in the attributes file" in text
    assert "'nhs_number' identifies a person and may never be in the attributes file" in text
    assert "repeats column name(s) ['A']" in text
    assert "unknown field 'favourite_colour'" in text
    assert "`format` applies only to date fields" in text
    assert "unknown section [extra]" in text
    assert not set(IDENTIFIER_FIELDS) & set(ATTRIBUTE_FIELDS) - {"share_key"}


def _recipients(tmp_path):
    ids, attrs = x25519.Identity.generate(), x25519.Identity.generate()
    return ids, attrs


def _share_project(store: Store, *, named=("ig.officer",), kind=None) -> str:
    from anonymise.projects import ProjectKind, ProjectSpec
    from pipelines.project_register import ProjectRegister

    kind = kind or ProjectKind.EVALUATION_SHARE
    research = kind is ProjectKind.RESEARCH
    spec = ProjectSpec(
        title="Supporting Families national impact study",
        purpose="Quarterly identifiers and attributes for the national impact study.",
        lawful_basis="Digital Economy Act 2017, s.35",
        variables=("age", "sex") if research else ("supporting-families",),
        researchers=tuple(named),
        approver="caldicott.guardian",
        approved_on=date.today(),
        expires_on=date.today() + timedelta(days=365),
        kind=kind,
    )
    return ProjectRegister(store).add(spec, actor="caldicott.guardian").project_id


def test_make_share_encrypts_for_each_recipient_and_the_manifest_hashes_match(work, zone, tmp_path):
    _, _, events, _ = zone
    ident_id, attr_id = _recipients(tmp_path)
    store = Store(f"sqlite:///{tmp_path / 's.sqlite'}")
    project = _share_project(store)
    out = tmp_path / "out"
    req = ShareRequest(
        programme="supporting-families",
        period=_busiest_year(events),
        reason="National impact study, quarterly return",
        requester="ig.officer",
        identifiers_recipient=str(ident_id.to_public()),
        attributes_recipient=str(attr_id.to_public()),
        expires_on=date.today() + timedelta(days=90),
        project_id=project,
    )
    man = make_share(
        work, out, req, key=KEY, sdc_secret=SDC, policy=default_policy(), layout=LAYOUT, store=store
    )
    files = {f["role"]: f for f in man["files"]}
    for role, f in files.items():
        data = (out / f["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f["sha256"]
        assert ((out / f["file"]).stat().st_mode & 0o777) == 0o600
        assert b"SHARE_KEY" not in data  # never in clear on disk
    ident = pyrage.decrypt((out / files["identifiers"]["file"]).read_bytes(), [ident_id])
    attrs = pyrage.decrypt((out / files["attributes"]["file"]).read_bytes(), [attr_id])
    assert pl.read_csv(ident, infer_schema=False).height == files["identifiers"]["rows"]
    assert pl.read_csv(attrs, infer_schema=False).height == files["attributes"]["rows"]
    # Each file opens only with its own recipient's key.
    with pytest.raises(pyrage.DecryptError):
        pyrage.decrypt((out / files["identifiers"]["file"]).read_bytes(), [attr_id])
    with pytest.raises(pyrage.DecryptError):
        pyrage.decrypt((out / files["attributes"]["file"]).read_bytes(), [ident_id])
    saved = json.loads((out / f"{man['share_id']}.manifest.json").read_text())
    assert saved == man
    assert saved["created_by"] == "ig.officer" and saved["lawful_basis"].startswith(
        "Digital Economy Act"
    )
    assert (
        saved["layout"] == "supporting-families@1"
        and saved["disclosure_policy"] == default_policy().ref
    )
    excluded = saved["people_excluded_on_objection"]
    assert excluded == "c" or excluded.isdigit()
    assert saved["project_id"] == project
    # Registered and audited, with hashes, never contents.
    listed = list_shares(store)
    assert [s["share_id"] for s in listed] == [man["share_id"]]
    audit = store.read_audit(action="evaluation_share")
    assert audit.height == 1 and files["identifiers"]["sha256"] in audit["detail"][0]
    ident_text = ident.decode()
    surname = pl.read_csv(ident, infer_schema=False)["SURNAME"][0]
    assert surname in ident_text and surname not in audit["detail"][0]


def test_refusals_are_clear_and_audited(work, tmp_path):
    ident_id, _ = _recipients(tmp_path)
    store = Store(f"sqlite:///{tmp_path / 's.sqlite'}")
    same = str(ident_id.to_public())
    req = ShareRequest(
        "supporting-families", "2024/25", "short", "", same, same, date.today(), "prj-0000000000"
    )
    with pytest.raises(ShareError) as e:
        make_share(
            work,
            work / "inside",
            req,
            key=KEY,
            sdc_secret=SDC,
            policy=default_policy(),
            layout=LAYOUT,
            store=store,
        )
    text = "\n".join(e.value.problems)
    for bit in (
        "--reason",
        "--requester",
        "different recipients",
        "--expires",
        "inside the pipeline's work folder",
        "no approved project with that id",
    ):
        assert bit in text
    assert not (work / "inside").exists()
    assert store.read_audit(action="evaluation_share_refused").height == 1
    bad = ShareRequest(
        "supporting-families",
        "2024/25",
        "a good reason here",
        "me",
        "age1nope",
        same,
        date.today() + timedelta(1),
        _share_project(store, named=("me",)),
    )
    with pytest.raises(ShareError, match="age public key"):
        make_share(
            work,
            tmp_path / "o",
            bad,
            key=KEY,
            sdc_secret=SDC,
            policy=default_policy(),
            layout=LAYOUT,
            store=store,
        )
    with pytest.raises(ShareError, match="financial year"):
        _ = build_share(
            pl.DataFrame(),
            pl.DataFrame(),
            pl.DataFrame(),
            pl.DataFrame(),
            key=KEY,
            share_id="shr-0123456789ab",
            period="2024",
            layout=LAYOUT,
            excluded=pl.Series([], dtype=pl.String),
        )


def test_the_register_governs_shares(work, tmp_path):
    """Only a live evaluation share project, for a person named on it, for its programme;
    a research project can neither make a share nor is a share project usable for
    research extracts."""
    from anonymise.projects import ProjectKind, refusals
    from pipelines.project_register import ProjectRegister

    ident_id, attr_id = _recipients(tmp_path)
    store = Store(f"sqlite:///{tmp_path / 'r.sqlite'}")
    share_p = _share_project(store)
    research_p = _share_project(store, kind=ProjectKind.RESEARCH)

    def attempt(project: str, requester: str = "ig.officer") -> list[str]:
        req = ShareRequest(
            "supporting-families", "2024/25", "a good reason here", requester,
            str(ident_id.to_public()), str(attr_id.to_public()),
            date.today() + timedelta(days=30), project,
        )  # fmt: skip
        with pytest.raises(ShareError) as e:
            make_share(
                work, tmp_path / "o", req, key=KEY, sdc_secret=SDC, policy=default_policy(),
                layout=LAYOUT, store=store,
            )  # fmt: skip
        return e.value.problems

    assert any("is a research project" in p for p in attempt(research_p))
    assert any("is not named on project" in p for p in attempt(share_p, "someone.else"))
    reg = ProjectRegister(store)
    reg.close(share_p, actor="caldicott.guardian", reason="study ended", today=date.today())
    assert any("is closed" in p for p in attempt(share_p))
    assert store.read_audit(action="evaluation_share_refused").height == 3
    # The research door refuses a share project.
    live_share = reg.require(_share_project(store))
    assert refusals(live_share, "ig.officer", ["age"], date.today()) == [
        f"project {live_share.project_id} is an evaluation share project, not a research project"
    ]


def test_cli_makes_a_share_in_one_command(work, tmp_path, monkeypatch):
    from portal.cli import app

    monkeypatch.setenv("PORTAL_PSEUDONYM_KEY", ("73" * 32))
    monkeypatch.setenv("PORTAL_SDC_SECRET", "cd" * 32)
    ident_key, attr_key = tmp_path / "ons.key", tmp_path / "analysts.key"
    runner = CliRunner()
    pubs = []
    for k in (ident_key, attr_key):
        res = runner.invoke(app, ["share", "keygen", "--out", str(k)])
        assert res.exit_code == 0, res.output
        pubs.append(res.output.split("public key: ")[1].strip())
    store = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    res = runner.invoke(
        app,
        [
            "projects", "add", "--title", "SF national impact study",
            "--purpose", "Identifiers and attributes for the national impact study.",
            "--lawful-basis", "Digital Economy Act 2017 s.35", "--variables", "supporting-families",
            "--researchers", "ig", "--approver", "cg", "--evaluation-share",
            "--expires", (date.today() + timedelta(days=365)).isoformat(), "--store", store,
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    project = res.output.split("Registered project ")[1].split(":")[0]
    res = runner.invoke(
        app,
        [
            "share",
            "evaluation",
            "--period",
            "2024/25",
            "--out",
            str(tmp_path / "shares"),
            "--identifiers-recipient",
            pubs[0],
            "--attributes-recipient",
            pubs[1],
            "--reason",
            "Supporting Families national impact study",
            "--requester",
            "ig",
            "--project",
            project,
            "--work",
            str(work),
            "--store",
            store,
        ],
    )
    assert res.exit_code == 0, res.output
    assert "people excluded on objection" in res.output
    assert len(list((tmp_path / "shares").glob("*.csv.age"))) == 2
    res = runner.invoke(app, ["share", "list", "--store", store, "--json"])
    assert res.exit_code == 0, res.output
    listed = json.loads(res.output)
    assert [m["programme"] for m in listed] == ["supporting-families"]
    assert runner.invoke(app, ["share", "list", "--store", store]).exit_code == 0
    res = runner.invoke(
        app,
        [
            "share",
            "evaluation",
            "--period",
            "2024/25",
            "--out",
            str(tmp_path / "x"),
            "--work",
            str(work),
            "--store",
            store,
        ],
    )
    assert res.exit_code == 2 and "--identifiers-recipient" in res.output


def test_zone_b_ids_match_the_pipeline(zone):
    linked, persons, *_ = zone
    ids = zone_b_ids(linked, KEY)
    assert set(ids["person_id"]) == set(persons["person_id"])
