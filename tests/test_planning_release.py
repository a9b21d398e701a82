"""Comparisons, Supporting Families claims, the quarterly return and EES open data, built
from a real release of a small synthetic county: every figure is the release layer's
protected figure, and the open data passes each EES data-file rule."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from anonymise import cellkey
from anonymise.policy import default_policy
from anonymise.pseudonymise import MasterKey
from anonymise.release import tabulate
from pipelines.benchmarking import standing
from pipelines.comparators import load_files
from pipelines.ees import GSS_SYMBOLS, REQUIRED_DATA_COLUMNS, read_pair, validate
from pipelines.planning_config import load_planning
from pipelines.run import run_pipeline
from pipelines.store import Store
from pipelines.store_comparators import list_datasets, read_values
from portal.cli import app
from portal.comparisons import comparisons_document
from portal.ees_export import ExportError, publish_ees
from portal.protected import Tables
from portal.supporting_families import (
    ReturnError,
    claims_document,
    load_return_layout,
    quarterly_return,
    return_csv,
)
from synthetic.comparators import shipped_file
from synthetic.generator import generate_county

SDC = "5d" * 32
AS_AT = date(2026, 11, 21)
POLICY = default_policy()
PTABLE = cellkey.ptable_for(POLICY.max_noise, POLICY.variance, bytes.fromhex(SDC))


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> dict:
    d = tmp_path_factory.mktemp("planning")
    generate_county(3000, 29, d / "raw")
    url = f"sqlite:///{d / 'store.sqlite'}"
    store = Store(url)
    run_pipeline(
        d / "raw", d / "work", MasterKey(b"p" * 32, "environment"), as_at=AS_AT, store=store,
        sdc_secret=bytes.fromhex(SDC), accept_unmatched_objections="all",
    )  # fmt: skip
    load_files(store, [shipped_file()], actor="test")
    info = store.latest_release()
    assert info is not None
    config = load_planning(measures=frozenset(store.read_meta(info.release_id)))
    yield {"url": url, "store": store, "info": info, "config": config, "dir": d}
    store.dispose()


def _tables(release: dict) -> Tables:
    return Tables(release["store"], POLICY, PTABLE, release["info"].release_id)


def _protected(release: dict, measure: str, by: tuple[str, ...], where=None):
    return tabulate(
        release["store"], measure, by=by, where=where, policy=POLICY, ptable=PTABLE,
        release_id=release["info"].release_id,
    )  # fmt: skip


# --- comparisons ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def comparisons(release: dict) -> dict:
    return comparisons_document(
        release["store"], _tables(release), release["config"], release_id=release["info"].release_id
    )


def test_every_mapped_measure_is_compared_and_the_rest_say_why(comparisons: dict, release) -> None:
    mapped = {c.measure for c in release["config"].comparisons}
    assert {c["measure"] for c in comparisons["compared"]} == mapped
    assert not comparisons["not_loaded"]
    reasons = {n["measure"]: n["reason"] for n in comparisons["not_compared"]}
    assert set(reasons) == set(release["store"].read_meta(release["info"].release_id)) - mapped
    assert "Early help has no national" in reasons["eh_referrals"]
    assert "Supporting Families" in reasons["sf_claims"]  # by the sf_ prefix rule
    assert all(reasons.values())


def test_our_figure_is_the_protected_one(comparisons: dict, release: dict) -> None:
    by_measure = {c["measure"]: c for c in comparisons["compared"]}
    # A measure compared by its own published rate: exactly the release layer's rate.
    c = by_measure["assessments_within_45_days"]
    table = _protected(release, "assessments_within_45_days", ("financial_year",))
    shown = dict(zip(table.data["financial_year"], table.data["rate"], strict=True))
    compared = [s for s in c["series"] if s["ours"] is not None]
    assert compared
    for s in compared:
        assert s["ours"]["shown"] == shown[s["period"]]
    # A count per 10,000 children: computed from two protected counts, never true ones.
    c = by_measure["cin_referrals"]
    num = _protected(release, "cin_referrals", ("financial_year",)).data
    den = _protected(release, "child_population", ("financial_year",)).data
    counts = dict(zip(num["financial_year"], num["count_value"], strict=True))
    pops = dict(zip(den["financial_year"], den["count_value"], strict=True))
    for s in c["series"]:
        if s["ours"] is None:
            continue
        n, p = counts[s["period"]], pops[s["period"]]
        if n is None or p is None:
            assert s["ours"] == {"value": None, "shown": "c"}
        else:
            assert s["ours"]["value"] == round(n / p * 10_000, 1)


def test_rank_and_band_are_taken_over_the_other_authorities_and_our_figure(
    comparisons: dict, release: dict
) -> None:
    c = next(c for c in comparisons["compared"] if c["measure"] == "assessments_within_45_days")
    latest = c["latest"]
    assert latest is not None and c["polarity"] == "High"
    values = read_values(release["store"], c["indicator"], c["dataset"])
    year = values.filter(
        (pl.col("financial_year") == latest["period"])
        & (pl.col("geographic_level") == "Local authority")
        & (pl.col("filters") == '{"age_group":"Total"}')
    )
    ours_code = release["config"].authority.new_la_code
    others = {
        r["area_code"]: r["value"]
        for r in year.iter_rows(named=True)
        if r["area_code"] != ours_code
    }
    expected = standing({**others, ours_code: latest["ours"]}, ours_code, "High")
    assert (latest["rank"], latest["of"], latest["band"]) == (
        expected.rank,
        expected.of,
        expected.band,
    )
    # The file's own figure for the council (its statutory return) is not one of those ranked.
    assert latest["of"] == sum(v is not None for v in others.values()) + 1
    # Neighbour average: the mean of the neighbours with a figure that year.
    row = next(s for s in c["series"] if s["period"] == latest["period"])
    got = [others[n] for n in release["config"].neighbours if others.get(n) is not None]
    assert row["neighbours"] == round(sum(got) / len(got), 1)
    assert row["neighbours_with_data"] == len(got)


def test_no_polarity_no_rank(comparisons: dict) -> None:
    c = next(c for c in comparisons["compared"] if c["measure"] == "cin_referrals")
    assert c["polarity"] == "-"
    if c["latest"] is not None:
        assert c["latest"]["rank"] is None and c["latest"]["band"] is None


# --- Supporting Families --------------------------------------------------------------------


def test_claims_by_year_are_the_protected_counts_and_progress_uses_the_target(release) -> None:
    doc = claims_document(
        _tables(release), release["config"], release_id=release["info"].release_id,
        data_as_at=AS_AT,
    )  # fmt: skip
    table = _protected(release, "sf_claims", ("financial_year",)).data
    shown = dict(zip(table["financial_year"], table["count"], strict=True))
    assert doc["years"]
    for y in doc["years"]:
        assert y["claims"]["count"]["shown"] == shown.get(y["period"], "0")
        target = release["config"].targets.get(y["period"])
        value = y["claims"]["count"]["value"]
        if target and value is not None:
            assert y["progress"] == round(value / target * 100, 1)
        elif target:
            assert y["progress_shown"] == "c"
        else:
            assert y["progress_shown"] == "x"
    assert [r["key"] for r in doc["rules"]][0] == "family_with_child"


def test_the_quarterly_return_is_filled_from_protected_quarterly_figures(release) -> None:
    store, info = release["store"], release["info"]
    layout = load_return_layout(measures=set(store.read_meta(info.release_id)))
    quarter = "2025/26 Q3"
    doc = quarterly_return(
        _tables(release), release["config"], layout, quarter=quarter,
        release_id=info.release_id, data_as_at=AS_AT,
    )  # fmt: skip
    lines = {r["line"]: r for r in doc["lines"]}
    q = _protected(release, "sf_families_worked_with", ("quarter",)).data
    by_q = dict(zip(q["quarter"], q["count"], strict=True))
    assert lines["A1"]["value"] == by_q.get(quarter, "0")
    # Year to date: the sum of the published quarters, or c when one of them is suppressed.
    parts = [by_q.get(f"2025/26 Q{i}", "0") for i in (1, 2, 3)]
    expected = "c" if "c" in parts else str(sum(int(p) for p in parts))
    assert lines["A2"]["value"] == expected
    assert lines["C4"]["value"] == str(release["config"].targets["2025/26"])
    assert [f"B{i}" for i in range(1, 11)] == [k for k in lines if k.startswith("B")]
    # Every value is a number or one GSS symbol.
    for r in doc["lines"]:
        assert r["value"] in GSS_SYMBOLS or r["value"].replace(".", "", 1).isdigit(), r
    rows = list(csv.reader(io.StringIO(return_csv(doc))))
    assert rows[0] == ["line", "section", "description", "value"]
    assert ["H3", "Return details", "Quarter", quarter] in rows
    assert len(rows) == 1 + 7 + len(doc["lines"])


def test_a_quarter_not_yet_ended_is_refused(release) -> None:
    layout = load_return_layout()
    for quarter, says in (("2026/27 Q3", "had not ended"), ("Q3", "not a financial quarter")):
        with pytest.raises(ReturnError, match=says):
            quarterly_return(
                _tables(release), release["config"], layout, quarter=quarter,
                release_id=release["info"].release_id, data_as_at=AS_AT,
            )  # fmt: skip


def test_the_ehm_extract_carries_a_lead_practitioner(release) -> None:
    ehm = next((release["dir"] / "raw").glob("*early*help*.csv"), None) or next(
        p for p in (release["dir"] / "raw").iterdir() if "ehm" in p.name.lower()
    )
    frame = pl.read_csv(ehm, infer_schema=False)
    assert "lead_practitioner" in frame.columns
    refs = frame["lead_practitioner"]
    assert refs.null_count() > 0 and refs.drop_nulls().str.contains(r"^LP\d{4}$").all()
    # One practitioner per episode, whoever in the family the row is about.
    per_episode = frame.group_by("episode_id").agg(pl.col("lead_practitioner").n_unique())
    assert per_episode["lead_practitioner"].max() == 1


# --- open data in EES format ----------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(release) -> dict:
    out = release["dir"] / "ees"
    files = publish_ees(
        release["store"], _tables(release), release["config"],
        release_id=release["info"].release_id, out=out,
    )  # fmt: skip
    return {"out": out, "files": files}


def test_every_published_measure_is_written_and_passes_the_ees_rules(exported, release) -> None:
    metas = release["store"].read_meta(release["info"].release_id)
    manifest = json.loads((exported["out"] / "manifest.json").read_text())
    written = {f.measure for f in exported["files"]}
    assert written | set(manifest["not_written"]) == set(metas)
    assert len(written) > 25 and "cin_referrals" in written
    # A measure is left out only when it has no complete financial year (EES refuses a
    # file without rows), and the guidance says so.
    guidance = (exported["out"] / "data-guidance.md").read_text()
    for name, why in manifest["not_written"].items():
        assert why == "no complete financial year yet" and f"(`{name}`)" in guidance
    for f in exported["files"]:
        read_pair(exported["out"] / f.data_file)  # raises with every problem if any


def _data(exported, name: str) -> pl.DataFrame:
    return pl.read_csv(exported["out"] / f"{name}.csv", infer_schema=False)


def test_rule_mandatory_columns(exported) -> None:
    for f in exported["files"]:
        cols = _data(exported, f.measure).columns
        assert cols[: len(REQUIRED_DATA_COLUMNS)] == list(REQUIRED_DATA_COLUMNS)
        assert {"new_la_code", "old_la_code", "la_name", "region_code", "region_name"} <= set(cols)
        # The council's own geography (localities, wards) is not open data in EES files.
        assert not {"locality", "ward", "lsoa"} & set(cols)


def test_rule_no_blank_cells(exported) -> None:
    for f in exported["files"]:
        frame = _data(exported, f.measure)
        blanks = frame.select(pl.all().is_null().sum()).row(0)
        assert sum(blanks) == 0, (f.measure, dict(zip(frame.columns, blanks, strict=True)))


def test_rule_one_symbol_per_suppressed_cell_matching_the_release_layer(exported, release) -> None:
    frame = _data(exported, "cin_referrals").filter(
        (pl.col("age_band") != "Total") & (pl.col("sex") == "Total")
    )
    table = _protected(release, "cin_referrals", ("financial_year", "age_band")).data
    shown = {
        (r["financial_year"][:4] + r["financial_year"][5:7], r["age_band"]): r["count"]
        for r in table.iter_rows(named=True)
    }
    assert frame.height > 0
    suppressed = 0
    for r in frame.iter_rows(named=True):
        assert r["number"] == shown[(r["time_period"], r["age_band"])]
        if not r["number"].isdigit():
            assert r["number"] in GSS_SYMBOLS  # exactly one symbol, nothing beside it
            suppressed += 1
    assert suppressed > 0  # the check saw suppressed cells


def test_rule_labels_and_units_in_the_meta_file(exported) -> None:
    meta = pl.read_csv(exported["out"] / "cin_rereferrals_12m.meta.csv", infer_schema=False)
    assert meta.filter(pl.col("label").is_null()).is_empty()
    units = dict(zip(meta["col_name"], meta["indicator_unit"].fill_null(""), strict=True))
    assert units["percent"] == "%" and units["number"] == ""
    dps = dict(zip(meta["col_name"], meta["indicator_dp"].fill_null(""), strict=True))
    assert dps["number"] == "0" and dps["percent"].isdigit()


def test_the_checks_catch_a_broken_file(exported) -> None:
    """The rule checks are not vacuous: blank a cell and give two symbols, and they fail."""
    frame = _data(exported, "cin_referrals")
    meta = pl.read_csv(exported["out"] / "cin_referrals.meta.csv", infer_schema=False)
    row = pl.int_range(pl.len())
    broken = frame.with_columns(
        pl.when(row == 0)
        .then(pl.lit(""))
        .when(row == 1)
        .then(pl.lit("c x"))
        .otherwise(pl.col("number"))
        .alias("number")
    )
    meta = meta.with_columns(pl.col(c).fill_null("") for c in meta.columns)
    problems = validate(broken.fill_null(""), meta, data_name="d.csv", meta_name="d.meta.csv")
    assert {(p.row, p.column) for p in problems} == {(2, "number"), (3, "number")}
    assert validate(frame.fill_null(""), meta, data_name="d.csv", meta_name="d.meta.csv") == []


def test_guidance_footnotes_and_manifest(exported, release) -> None:
    out = exported["out"]
    guidance = (out / "data-guidance.md").read_text()
    assert "Disclosure control" in guidance and release["info"].release_id in guidance
    assert all(f"### {f.data_file}" in guidance for f in exported["files"])
    notes = pl.read_csv(out / "footnotes.csv")
    assert set(notes["data_file"]) <= {f.data_file for f in exported["files"]}
    manifest = json.loads((out / "manifest.json").read_text())
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    with pytest.raises(ExportError, match="not empty"):
        publish_ees(
            release["store"], _tables(release), release["config"],
            release_id=release["info"].release_id, out=out,
        )  # fmt: skip


# --- the commands ---------------------------------------------------------------------------


def test_cli_sf_return_and_publish_ees(release, tmp_path: Path) -> None:
    env = {"PORTAL_SDC_SECRET": SDC}
    url = release["url"]
    res = CliRunner().invoke(
        app, ["sf-return", "--quarter", "2025/26 Q2", "--store", url, "--actor", "analyst"], env=env
    )
    assert res.exit_code == 0, res.output
    assert res.output.startswith("line,section,description,value\n")
    assert "H3,Return details,Quarter,2025/26 Q2" in res.output
    res = CliRunner().invoke(app, ["sf-return", "--quarter", "2030/31 Q1", "--store", url], env=env)
    assert res.exit_code == 1 and "had not ended" in res.output
    out = tmp_path / "open"
    res = CliRunner().invoke(app, ["publish-ees", "--out", str(out), "--store", url], env=env)
    assert res.exit_code == 0, res.output
    assert (out / "manifest.json").exists() and (out / "sf_claims.meta.csv").exists()
    assert [d.dataset for d in list_datasets(release["store"])]
