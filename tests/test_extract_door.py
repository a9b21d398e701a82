"""The extract door, the project register and ledger, safe settings and output checking.

Store-backed tests run on SQLite and, with PORTAL_TEST_PG_URL, on PostgreSQL too."""

from __future__ import annotations

import hashlib
import json
import stat
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from typer.testing import CliRunner

from anonymise.catalogue import CATALOGUE
from anonymise.extract import ExtractInvalid, ExtractRefused, ExtractRequest, request_extract
from anonymise.output_check import check_output
from anonymise.policy import default_policy
from anonymise.projects import ProjectError, ProjectSpec, approved_projects
from anonymise.pseudonymise import MasterKey
from pipelines.project_register import ProjectRegister
from pipelines.run import run_pipeline
from pipelines.store import Store
from portal.cli import app
from synthetic.generator import generate_county

KEY = MasterKey(b"x" * 32, "environment")
KEY_HEX = (b"x" * 32).hex()
TODAY = date.today()


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("door")
    generate_county(3000, 11, d / "raw")
    run_pipeline(
        d / "raw", d / "work", KEY, as_at=date(2026, 11, 21), accept_unmatched_objections="all"
    )
    return d / "work"


def _spec(**kw) -> ProjectSpec:
    base = dict(
        title="Early Help outcomes",
        purpose="How Early Help changes outcomes for children and families",
        lawful_basis="UK GDPR 6(1)(e) and 9(2)(j)",
        variables=("age", "sex", "lsoa", "eh_episodes", "cp_plan_ever"),
        researchers=("dr-a",),
        approver="caldicott",
        approved_on=TODAY - timedelta(days=30),
        expires_on=TODAY + timedelta(days=365),
    )
    return ProjectSpec(**(base | kw))


# --- the register ---------------------------------------------------------------------------


def test_register_gathers_every_problem(db_url):
    reg = ProjectRegister(Store(db_url))
    bad = _spec(
        title="x", purpose="short", variables=("age", "nhs_number", "family_id"), researchers=(),
        approver="", expires_on=TODAY - timedelta(days=60),
    )  # fmt: skip
    with pytest.raises(ProjectError) as e:
        reg.add(bad, actor="admin")
    text = " ".join(e.value.problems)
    for needle in (
        "title",
        "purpose",
        "nhs_number",
        "family_id needs",
        "researchers",
        "approver",
        "expiry",
    ):
        assert needle in text, needle
    assert reg.all() == []


def test_register_ids_are_generated_and_changes_audited(db_url):
    st = Store(db_url)
    reg = ProjectRegister(st)
    a = reg.add(_spec(), actor="admin")
    b = reg.add(_spec(), actor="admin")
    # Same title, two projects: ids come from the register and differ, so do the keys.
    assert a.project_id != b.project_id and a.project_id.startswith("prj-")
    assert KEY.project_key(a.project_id) != KEY.project_key(b.project_id)
    assert reg.get(a.project_id).spec == a.spec
    reg.close(a.project_id, actor="admin", reason="study finished", today=TODAY)
    assert not reg.get(a.project_id).is_live(TODAY)
    actions = st.read_audit()["action"].to_list()
    assert actions.count("project_added") == 2 and "project_closed" in actions
    # The page's picker: open, unexpired projects naming the researcher, and their variables.
    mine = approved_projects(reg.all(), "dr-a", TODAY)
    assert [p.project_id for p in mine] == [b.project_id]
    assert mine[0].variables == b.variables
    assert approved_projects(reg.all(), "dr-b", TODAY) == []
    assert approved_projects(reg.all(), "dr-a", b.expires_on + timedelta(days=1)) == []


# --- the door -----------------------------------------------------------------------------


def _door(st, work, project, variables, researcher="dr-a", **kw):
    files = request_extract(
        st, work, ExtractRequest(project, "", researcher, tuple(variables)),
        data_as_at="2026-11-21", via="test", key=KEY, **kw,
    )  # fmt: skip
    # Every extract, re-checked with pycanon on the union of its project's released QIs.
    assert _union_k(ProjectRegister(st), project) >= 10
    return files


def test_door_refuses_and_audits_each_unapproved_request(db_url, work):
    st = Store(db_url)
    reg = ProjectRegister(st)
    p = reg.add(_spec(), actor="admin")
    expired = reg.add(
        _spec(approved_on=TODAY - timedelta(days=400), expires_on=TODAY - timedelta(days=1)),
        actor="admin",
    )
    cases = [
        ("prj-0000000000", ["age", "sex"], "dr-a", "no approved project"),
        (p.project_id, ["age", "sex", "police_incidents"], "dr-a", "not approved for project"),
        (p.project_id, ["age", "sex"], "dr-z", "not a named researcher"),
        (expired.project_id, ["age", "sex"], "dr-a", "expired on"),
    ]
    for project, variables, who, reason in cases:
        with pytest.raises(ExtractRefused, match=reason):
            _door(st, work, project, variables, who)
    refused = st.read_audit(action="extract_refused")
    assert refused.height == len(cases)
    assert all(r in " ".join(refused["detail"]) for *_, r in cases)
    # An empty form is a validation error, and not audited.
    with pytest.raises(ExtractInvalid, match="choose a project"):
        _door(st, work, "", ["age"])
    with pytest.raises(ExtractInvalid, match="at least one variable"):
        _door(st, work, p.project_id, [])
    assert st.read_audit(action="extract_refused").height == len(cases)
    assert reg.ledger(p.project_id) == []


def test_door_records_ledger_and_audit_and_fixes_levels(db_url, work, tmp_path):
    st = Store(db_url)
    reg = ProjectRegister(st)
    p = reg.add(_spec(), actor="admin")
    out = tmp_path / "out" / "one.csv"
    one = _door(st, work, p.project_id, ["age", "sex", "cp_plan_ever"], out=out)
    two = _door(st, work, p.project_id, ["age", "lsoa", "eh_episodes"], data_name="two.csv")
    ledger = reg.ledger(p.project_id)
    assert [e.extract_no for e in ledger] == [1, 2]
    assert ledger[0].file_path == str(out.resolve()) and ledger[1].file_path is None
    assert ledger[0].sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    # The ledger holds project pseudonyms and released QI values only.
    assert set(ledger[0].frame.columns) == {"person_id", "age", "sex"}
    released = pl.read_csv(one.data, infer_schema=False)
    assert ledger[0].frame["person_id"].to_list() == released["person_id"].to_list()
    # age keeps the level it was first released at.
    assert ledger[1].levels["age"] == ledger[0].levels["age"]
    assert two.certificate["cumulative"]["earlier_extracts"] == 1
    assert two.certificate["cumulative"]["fixed_levels"]["age"] == ledger[0].levels["age"]
    audit = st.read_audit(action="extract")
    assert audit.height == 2
    assert KEY_HEX not in " ".join(audit["detail"]) + json.dumps(one.certificate)


def test_shared_variables_become_quasi_identifiers_across_projects(db_url, work):
    st = Store(db_url)
    reg = ProjectRegister(st)
    variables = ("age", "sex", "cp_plan_ever", "looked_after_ever")
    a = reg.add(_spec(variables=variables), actor="admin")
    b = reg.add(_spec(variables=variables), actor="admin")
    first = _door(st, work, a.project_id, variables)
    assert "cp_plan_ever" not in first.certificate["quasi_identifiers"]
    second = _door(st, work, b.project_id, variables)
    assert {"cp_plan_ever", "looked_after_ever"} <= set(second.certificate["quasi_identifiers"])
    shared = second.certificate["cumulative"]["shared_with_other_projects"]
    assert shared["cp_plan_ever"] == [a.project_id]


def test_safe_settings_for_out(db_url, work, tmp_path):
    st = Store(db_url)
    p = ProjectRegister(st).add(_spec(), actor="admin")
    out = tmp_path / "x.csv"
    _door(st, work, p.project_id, ["age", "sex"], out=out)
    for path in (out, tmp_path / "x.dictionary.csv", tmp_path / "x.certificate.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = out.read_bytes()
    with pytest.raises(ExtractRefused, match="without --force"):
        _door(st, work, p.project_id, ["age", "sex"], out=out)
    assert out.read_bytes() == before
    out.chmod(0o644)
    _door(st, work, p.project_id, ["age", "sex"], out=out, force=True)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    target = work / "zone_b" / "research_table.parquet"
    table = target.read_bytes()
    with pytest.raises(ExtractRefused, match="pipeline or data folder"):
        _door(st, work, p.project_id, ["age", "sex"], out=target.with_suffix(".csv"), force=True)
    assert target.read_bytes() == table
    assert "pipeline or data folder" in " ".join(st.read_audit(action="extract_refused")["detail"])


def test_expired_extracts_are_listed_and_audited(db_url, work, tmp_path):
    st = Store(db_url)
    reg = ProjectRegister(st)
    p = reg.add(_spec(), actor="admin")
    out = tmp_path / "e.csv"
    _door(st, work, p.project_id, ["age", "sex"], out=out)
    assert reg.expired_extracts(TODAY) == []
    reg.close(p.project_id, actor="admin", reason="finished", today=TODAY)
    due = reg.record_expiry(TODAY, actor="admin")
    assert [e.file_path for _, e in due] == [str(out.resolve())]
    assert reg.record_expiry(TODAY, actor="admin") == []  # recorded once
    assert st.read_audit(action="extract_expired").height == 1


# --- the CLI ------------------------------------------------------------------------------


def test_cli_projects_and_extract(work, tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_PSEUDONYM_KEY", KEY_HEX)
    store = f"sqlite:///{tmp_path / 'store.sqlite'}"
    run = CliRunner().invoke
    res = run(app, [
        "projects", "add", "--title", "Early Help outcomes",
        "--purpose", "How Early Help changes outcomes for children and families",
        "--lawful-basis", "UK GDPR 6(1)(e)", "--variables", "age,sex,lsoa,eh_episodes",
        "--researchers", "dr-a", "--approver", "caldicott",
        "--expires", str(TODAY + timedelta(days=90)), "--store", store,
    ])  # fmt: skip
    assert res.exit_code == 0, res.output
    pid = res.output.split("Registered project ")[1].split(":")[0]
    res = run(app, ["projects", "list", "--store", store])
    assert pid in res.output and "open" in res.output
    out = tmp_path / "study.csv"
    args = ["extract", "--project", pid, "--variables", "age,sex,lsoa,eh_episodes",
            "--out", str(out), "--work", str(work), "--store", store, "--requester", "dr-a"]  # fmt: skip
    res = run(app, args)
    assert res.exit_code == 0, res.output
    cert = json.loads((tmp_path / "study.certificate.json").read_text())
    assert cert["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert "RELEASE CERTIFICATE" in (tmp_path / "study.certificate.txt").read_text()
    res = run(app, args)
    assert res.exit_code == 1 and "--force" in res.output
    res = run(app, ["extract", "--project", pid, "--variables", "age,sex,police_incidents",
                    "--out", str(tmp_path / "b.csv"), "--work", str(work), "--store", store,
                    "--requester", "dr-a"])  # fmt: skip
    assert res.exit_code == 1 and "not approved" in res.output
    res = run(app, ["extract", "--project", pid, "--variables", "age", "--out",
                    str(tmp_path / "c.csv"), "--work", str(work), "--store", store,
                    "--requester", "someone-else"])  # fmt: skip
    assert res.exit_code == 1 and "not a named researcher" in res.output
    res = run(app, ["projects", "show", pid, "--store", store])
    assert "#1" in res.output and str(out.resolve()) in res.output
    res = run(app, ["projects", "close", pid, "--reason", "finished", "--store", store])
    assert res.exit_code == 0
    res = run(app, ["projects", "expired", "--store", store])
    assert str(out.resolve()) in res.output
    audit = Store(store).read_audit()
    assert {
        "project_added",
        "extract",
        "extract_refused",
        "project_closed",
        "extract_expired",
    } <= set(audit["action"])


# --- output checking --------------------------------------------------------------------------


def test_cli_check_output(tmp_path):
    ok = tmp_path / "ok.csv"
    ok.write_text("locality,n\nA,12\nB,40\nC,0\n")
    res = CliRunner().invoke(app, ["check-output", str(ok)])
    assert res.exit_code == 0 and "PASS" in res.output
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "locality,n,m,total,top1,top2\nA,12,20,1000,950,20\nB,4,30,100,30,20\n"
        "C,30,30,1000,500,460\nD,50,40,1000,100,90\nE,,30,100,10,9\nF,-2,30,100,10,9\n"
        "G,12.5,30,100,10,9\nH,20,3,100,10,9\n"
    )
    res = CliRunner().invoke(
        app,
        ["check-output", str(bad), "--count", "n,m", "--total", "total", "--top1", "top1",
         "--top2", "top2"],
    )  # fmt: skip
    assert res.exit_code == 1
    out = res.output
    assert "row 2: dominance" in out  # A: top two are 97% of the total
    assert "row 3: threshold (n<10)" in out  # B: 4 records
    assert "row 4: dominance (2,90%); p-ratio (10%)" in out
    assert "row 5" not in out  # D passes everything
    assert "row 6: n blank" in out
    assert "row 7: n negative" in out
    assert "row 8: n not a whole number" in out
    assert "row 9: threshold (m<10)" in out  # the second count column is checked too
    res = CliRunner().invoke(app, ["check-output", str(bad), "--count", "nope"])
    assert res.exit_code == 2 and "no column 'nope'" in res.output


@pytest.mark.parametrize("seed", range(6))
def test_output_check_agrees_with_acro(seed):
    """ACRO (the output checker of UK trusted research environments) as the oracle: on a
    table of sums from random microdata, both flag the same cells for threshold, dominance
    and the p% rule. ACRO also calls a zero cell disclosive; here a zero count is not a
    threshold failure (the policy's choice), so empty cells are left out of the comparison."""
    import logging

    from acro import ACRO

    logging.disable(logging.CRITICAL)
    rng = np.random.default_rng(seed)
    n = int(rng.integers(80, 400))
    df = pd.DataFrame({
        "a": rng.choice(list("vwxyz"), n, p=[0.4, 0.3, 0.15, 0.1, 0.05]),
        "b": rng.choice(list("pqr"), n, p=[0.6, 0.3, 0.1]),
        "v": rng.pareto(1.1, n) * 100 + 1,
    })  # fmt: skip
    acro = ACRO(suppress=False)
    acro.crosstab(df.a, df.b, values=df.v, aggfunc="sum")
    outcome = acro.results.get_index(-1).outcome
    logging.disable(logging.NOTSET)
    cells = (
        df.groupby(["a", "b"])["v"]
        .agg(n="size", total="sum", top1=lambda s: s.nlargest(1).sum(),
             top2=lambda s: s.nlargest(2).iloc[-1] if len(s) > 1 else 0.0)
        .reset_index()
    )  # fmt: skip
    report = check_output(
        pl.from_pandas(cells), policy=default_policy(), count="n", total="total", top1="top1",
        top2="top2",
    )  # fmt: skip
    names = {
        "threshold": "MinimumThresholdCheck",
        "dominance": "NKCheck",
        "p-ratio": "PPercentCheck",
    }
    compared = 0
    for row in report.cells.iter_rows(named=True):
        ours = {names[k] for k in names if k in row["checks_failed"]}
        theirs = {c.strip() for c in str(outcome.loc[row["a"], row["b"]]).split(";") if c.strip()}
        theirs -= {"ok"}
        assert ours == theirs, (row, theirs)
        compared += 1
    assert compared >= 10


# --- the cumulative check over time -----------------------------------------------------------


def _zone_b_copy(work: Path, dest: Path) -> Path:
    (dest / "zone_b").mkdir(parents=True)
    for name in ("research_table.parquet", "geography.parquet"):
        (dest / "zone_b" / name).write_bytes((work / "zone_b" / name).read_bytes())
    return dest


def _union_k(reg: ProjectRegister, project_id: str) -> int:
    """pycanon's k over everyone the project holds, on every released QI of every extract."""
    from pycanon import anonymity

    from anonymise.ledger import joined_view, population

    history = reg.history(project_id)
    view, cols = joined_view(population(history), history)
    return anonymity.k_anonymity(view.select(cols).to_pandas().reset_index(drop=True), cols)


def test_people_absent_from_a_later_extract_are_not_singled_out(work, tmp_path):
    """Objections recorded between two extracts: the people who objected are absent from the
    second; the builder holds back others with their earlier values so that none is alone."""
    st = Store(f"sqlite:///{tmp_path / 's.sqlite'}")
    reg = ProjectRegister(st)
    w = _zone_b_copy(work, tmp_path / "work")
    p = reg.add(_spec(), actor="admin")
    _door(st, w, p.project_id, ["age", "sex", "cp_plan_ever"])
    assert _union_k(reg, p.project_id) >= 10
    table_path = w / "zone_b" / "research_table.parquet"
    table = pl.read_parquet(table_path)
    chosen = table.filter(~pl.col("objected")).sample(5, seed=3)["person_id"]
    table.with_columns(
        pl.col("objected") | pl.col("person_id").is_in(chosen.implode())
    ).write_parquet(table_path)
    second = _door(st, w, p.project_id, ["age", "lsoa", "eh_episodes"])
    assert second.certificate["cumulative"]["held_back_for_absence"] > 0
    assert second.certificate["cumulative"]["k_over_everyone_the_project_holds"] >= 10
    assert _union_k(reg, p.project_id) >= 10


def test_family_links_across_extracts(work, tmp_path):
    st = Store(f"sqlite:///{tmp_path / 's.sqlite'}")
    reg = ProjectRegister(st)
    p = reg.add(
        _spec(variables=("age", "sex", "lsoa", "eh_episodes", "family_id"), family_analysis=True),
        actor="admin",
    )
    first = _door(st, work, p.project_id, ["age", "sex", "family_id"])
    data = pl.read_csv(first.data, infer_schema=False)
    linked = data.filter(pl.col("family_id").is_not_null())
    sig = linked.group_by("family_id").agg(
        pl.concat_str("age", "sex", separator="|").sort().str.join(";").alias("sig")
    )
    assert sig.group_by("sig").len()["len"].min() >= 10
    fam = first.certificate["family"]
    assert fam["families_unlinked"] > 0
    assert fam["records_unlinked"] == data["family_id"].null_count()
    assert "blank where" in first.dictionary.decode()
    # A later extract's new columns would single out families linked by the first: refused,
    # because removing a link now cannot hide a family linked before.
    with pytest.raises(ExtractRefused, match="linked by an earlier extract"):
        _door(st, work, p.project_id, ["lsoa", "eh_episodes"])
    assert _union_k(reg, p.project_id) >= 10


def test_many_outside_knowable_variables(work, tmp_path):
    st = Store(f"sqlite:///{tmp_path / 's.sqlite'}")
    knowable = [v for v, var in CATALOGUE.items() if var.known_by]
    assert len(knowable) > 16
    p = ProjectRegister(st).add(_spec(variables=tuple(knowable)), actor="admin")
    # 16 at once: too many to search whole (over 5 million transformations), so the
    # service-history ones start at their coarsest level short of withholding them.
    files = _door(st, work, p.project_id, knowable[:16])
    cert = files.certificate
    assert 0 < cert["search"]["lattice_size"] <= 5_000_000
    assert cert["achieved"]["k_anonymity"] >= 10
    assert set(cert["quasi_identifiers"]) == set(knowable[:16])
    # The rest later: what the project holds is fixed, so only the new ones are searched.
    later = _door(st, work, p.project_id, knowable[16:] + knowable[:2])
    assert later.certificate["cumulative"]["earlier_columns_joined"] == 16
    assert _union_k(ProjectRegister(st), p.project_id) >= 10
    # All of them at once in a new project: refused, with the reason and what to do.
    q = ProjectRegister(st).add(_spec(variables=tuple(knowable)), actor="admin")
    with pytest.raises(ExtractRefused, match="transformations") as e:
        _door(st, work, q.project_id, knowable)
    assert any("outside the council" in s for s in e.value.suggestions)
