"""A council's own extracts by configuration: the mapping file and `portal sources check`.

The worked example (docs/examples/ehm_mapping.toml) is tested on an Early Help export
made from the synthetic county's own: renamed columns, UK dates, the system's own code
labels, its own file name. Mapped, it must ingest exactly as the original does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from pipelines.contracts import all_contracts
from pipelines.ingest import SourceFileError, ingest_all
from pipelines.mapping import MappingError, load_mapping
from pipelines.sources_check import check_sources
from portal.cli import app

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "ehm_mapping.toml"
AS_AT = date(2026, 3, 31)


def _as_ehm_export(original: Path, out: Path) -> None:
    """The synthetic early_help.csv as a council's EHM would export it."""
    m = load_mapping(EXAMPLE).sources["early_help"]
    df = pl.read_csv(original, infer_schema=False)
    dates = ("dob", "referral_date", "assessment_date", "plan_start", "closure_date")
    df = df.with_columns(
        pl.col(c).str.to_date("%Y-%m-%d", strict=False).dt.strftime("%d/%m/%Y") for c in dates
    )
    # One date with a time, as some exports write them (the mapping's second layout).
    df = df.with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.col("referral_date") + " 09:30")
        .otherwise(pl.col("referral_date"))
        .alias("referral_date")
    )
    for col, table in m.codes.items():
        back = {code: local for local, code in table.items()}
        df = df.with_columns(pl.col(col).replace(back))
    df.rename(m.columns).write_csv(out / "EHM_Export_2026-03-31.csv")


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from synthetic.generator import generate_county

    base = tmp_path_factory.mktemp("sources")
    original = base / "original"
    generate_county(1500, 5, original)
    council = base / "council"
    shutil.copytree(original, council, ignore=shutil.ignore_patterns("truth", "early_help.csv"))
    _as_ehm_export(original / "early_help.csv", council)
    return original, council


def test_example_mapping_ingests_the_export_as_the_original(folders: tuple[Path, Path]) -> None:
    original, council = folders
    mapping = load_mapping(EXAMPLE)
    contracts = list(all_contracts())
    a = ingest_all(original, as_at=AS_AT, sources=contracts)["early_help"]
    b = ingest_all(council, as_at=AS_AT, sources=contracts, mapping=mapping)["early_help"]
    assert b.file.name == "EHM_Export_2026-03-31.csv"
    assert b.rows_in == a.rows_in and b.quarantined.height == a.quarantined.height
    assert b.accepted.equals(a.accepted)
    # Without the mapping the same folder cannot be read: the file is not where, nor what,
    # the contract expects.
    with pytest.raises(SourceFileError, match="no extract for Early Help"):
        ingest_all(council, as_at=AS_AT, sources=contracts)


def test_a_mapping_file_reports_every_problem_at_once(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        """
[[source]]
contract = "early_help"
file = "EHM*.csv"
date_format = "%Y"
[source.columns]
forname = "First Name"
surname = "Surname"
dob = "Surname"
[source.codes.sex]
"Female" = "W"
[source.codes.surname]
"X" = "Y"

[[source]]
contract = "tax_returns"
file = "x.csv"
"""
    )
    with pytest.raises(MappingError) as e:
        load_mapping(bad)
    msg = str(e.value)
    for expected in (
        "'forname' is not a column of early_help",
        "maps column 'Surname' to more than one contract column",
        "date_format '%Y' does not read a day, month and year",
        "[codes.sex] maps 'Female' to 'W', not one of early_help's codes (F, M, U)",
        "[codes.surname] but 'surname' is not a coded column",
        "contract 'tax_returns' is not a source contract",
    ):
        assert expected in msg, expected
    not_toml = tmp_path / "x.toml"
    not_toml.write_text("[[source]\n")
    with pytest.raises(MappingError, match="not a valid TOML file"):
        load_mapping(not_toml)


def test_a_mapped_file_that_is_missing_or_ambiguous_is_a_file_problem(
    folders: tuple[Path, Path], tmp_path: Path
) -> None:
    _, council = folders
    folder = tmp_path / "two"
    shutil.copytree(council, folder)
    shutil.copy(folder / "EHM_Export_2026-03-31.csv", folder / "EHM_Export_copy.csv")
    report = check_sources(folder, as_at=AS_AT, mapping=load_mapping(EXAMPLE))
    assert any("2 files match 'EHM_Export_*.csv'" in p for p in report.file_problems)


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
    }


def test_sources_check_cli_reports_everything_and_writes_nothing(
    folders: tuple[Path, Path], tmp_path: Path
) -> None:
    _, council = folders
    ok = CliRunner().invoke(
        app, ["sources", "check", "--raw", str(council), "--mapping", str(EXAMPLE)]
    )
    assert ok.exit_code == 0, ok.output
    assert "early_help:" in ok.output and "0 file-level problem(s)" in ok.output

    folder = tmp_path / "broken"
    shutil.copytree(council, folder)
    (folder / "police.csv").unlink()
    text = (folder / "housing.csv").read_text().replace(",", ";")
    (folder / "housing.csv").write_text(text)
    # A row-level problem in a file that can be read: a date that is not a date.
    ehm = folder / "EHM_Export_2026-03-31.csv"
    lines = ehm.read_text().splitlines()
    head = lines[0].split(",")
    row = lines[1].split(",")
    row[head.index("Date of Birth")] = "31/02/2015"
    lines[1] = ",".join(row)
    ehm.write_text("\n".join(lines) + "\n")
    # And a statutory return whose year's rules are not implemented.
    (folder / "returns" / "ssda903" / "2019").mkdir()
    before = _snapshot(folder)
    out = CliRunner().invoke(
        app, ["sources", "check", "--raw", str(folder), "--mapping", str(EXAMPLE), "--as-at",
              "2026-03-31"],
    )  # fmt: skip
    assert out.exit_code == 1
    text = out.output.replace("\n", " ")
    assert "police" in text and "no extract for" in text
    assert "columns are separated by semicolons" in text
    assert f"{ehm}:2: bad_date:dob" in out.output
    assert "2018 to 2019; the rules of that collection year are not implemented" in text
    assert "3 file-level problem(s)" in text
    assert _snapshot(folder) == before, "checking must write nothing"


def test_sources_check_names_dfe_rules_in_words(tmp_path: Path) -> None:
    from tests.test_returns import folder_903

    raw = tmp_path / "raw"
    d = folder_903(raw / "returns", 2024, episodes={"RNE": "Q"})
    assert d.exists()
    report = check_sources(raw, as_at=AS_AT)
    lines = "\n".join(report.lines())
    assert "DfE rule 143: The reason for new episode code is not a valid code." in lines
    # The contracts' own extracts are missing here: each is one file-level problem.
    assert len(report.file_problems) == len(list(all_contracts()))


def test_portal_run_takes_the_mapping_and_refuses_a_bad_one(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[source]]\ncontract = "early_help"\nfile = "x.csv"\n[source.columns]\nnope = "A"\n'
    )
    res = CliRunner().invoke(
        app, ["run", "--raw", str(tmp_path), "--mapping", str(bad),
              "--work", str(tmp_path / "work")],
    )  # fmt: skip
    assert res.exit_code == 1
    assert "'nope' is not a column of early_help" in res.output
    assert not (tmp_path / "work").exists()


# ------------------------------------------ end to end: the council's folder, the CLI ---


def _portal(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`portal ARGS` as a whole process, as a council's scheduler would start it."""
    return subprocess.run(
        [sys.executable, "-m", "portal.cli", *args],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=900,
    )  # fmt: skip


def _council_env() -> dict[str, str]:
    """Production mode: the keys come from the environment, never from the repo; the
    store's schema is made by `portal db upgrade`, as the owner runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env |= {
        "PYTHONPATH": str(ROOT),
        "PORTAL_PSEUDONYM_KEY": "5a" * 32,
        "PORTAL_SDC_SECRET": "3c" * 32,
        "COLUMNS": "200",
    }
    return env


def test_portal_run_with_the_mapping_publishes_a_council_export(
    folders: tuple[Path, Path], tmp_path: Path
) -> None:
    original, council_copy = folders
    # The council's folder as it has it: its own EHM export, the other extracts and the
    # reference data, and no manifest (extract.json) or truth: so the data date is given.
    raw = tmp_path / "council"
    shutil.copytree(council_copy, raw, ignore=shutil.ignore_patterns("extract.json"))
    assert not (raw / "early_help.csv").exists() and not (raw / "truth").exists()
    env = _council_env()
    store = f"sqlite:///{tmp_path / 'store' / 'portal.sqlite'}"
    (tmp_path / "store").mkdir()
    up = _portal("db", "upgrade", "--store", store, env=env)
    assert up.returncode == 0, up.stdout + up.stderr

    # Checked first, as the README advises: nothing stops the run.
    check = _portal("sources", "check", "--raw", str(raw), "--mapping", str(EXAMPLE),
                    "--as-at", "2026-03-31", env=env)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert "0 file-level problem(s)" in check.stdout

    work = tmp_path / "work"
    run = _portal(
        "run", "--raw", str(raw), "--work", str(work), "--store", store, "--as-at", "2026-03-31",
        "--mapping", str(EXAMPLE), "--accept-unmatched-objections", "all", env=env,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = run.stdout
    assert "Published routine release" in out
    # The mapped export was read under its own name, whole: its row appears in the ingest
    # table with the same counts as the synthetic original it was made from.
    expected = ingest_all(original, as_at=AS_AT, sources=list(all_contracts()))["early_help"]
    row = next(line for line in out.splitlines() if line.strip("│ ").startswith("early_help "))
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells[1:] == [f"{expected.rows_in:,}", f"{expected.accepted.height:,}",
                         f"{expected.quarantined.height:,}"], row  # fmt: skip

    # The mapped columns arrived in zone B: the export's labels ("Stepped Up to CSC",
    # "Self Referral") became the contract's codes, its UK dates real dates.
    eh = pl.read_parquet(work / "zone_b" / "events" / "early_help.parquet")
    assert eh.height == expected.accepted.height
    closure = set(eh["closure_reason"].drop_nulls())
    assert {"STEP_UP_CSC", "OUTCOMES_MET"} <= closure
    assert closure <= {"OUTCOMES_MET", "STEP_UP_CSC", "DISENGAGED", "MOVED_AWAY",
                       "UNIVERSAL_SERVICES", "OTHER"}  # fmt: skip
    assert "SELF" in set(eh["referral_source"]) and "Self Referral" not in set(
        eh["referral_source"]
    )
    assert set(eh["stepped_down_from_csc"].drop_nulls()) == {"Y", "N"}
    assert eh["referral_date"].dtype == pl.Date and eh["referral_date"].null_count() == 0
    # Zone B holds no identifier the export carried.
    assert not {"forename", "surname", "dob", "postcode", "nhs_number"} & set(eh.columns)


def test_sources_check_process_reports_every_problem_at_once(
    folders: tuple[Path, Path], tmp_path: Path
) -> None:
    _, council = folders
    raw = tmp_path / "council"
    shutil.copytree(council, raw, ignore=shutil.ignore_patterns("extract.json"))
    (raw / "police.csv").unlink()
    (raw / "housing.csv").write_text((raw / "housing.csv").read_text().replace(",", ";"))
    ehm = raw / "EHM_Export_2026-03-31.csv"
    df = pl.read_csv(ehm, infer_schema=False)
    df.with_columns(
        pl.when(pl.int_range(pl.len()) == 2).then(pl.lit("31/02/2015"))
        .otherwise(pl.col("Date of Birth")).alias("Date of Birth")
    ).write_csv(ehm)  # fmt: skip
    # A missing episode long before the child was ever looked after (DfE rule 581), for a
    # child of the year's return born before it: made from the header, not from an existing
    # missing row, as a small county's year may have none.
    year = raw / "returns" / "ssda903" / "2026"
    missing = year / "missing.csv"
    m = pl.read_csv(missing, infer_schema=False)
    child = (
        pl.read_csv(year / "header.csv", infer_schema=False)
        .filter(pl.col("DOB").str.to_date("%d/%m/%Y") < date(2011, 1, 1))
        .select("CHILD", "DOB").head(1)
    )  # fmt: skip
    assert child.height == 1, "the 2026 return has a child born before 2011"
    bad = child.with_columns(MISSING=pl.lit("M"), MIS_START=pl.lit("01/01/2012"),
                             MIS_END=pl.lit("02/01/2012")).select(m.columns)  # fmt: skip
    pl.concat([m, bad]).write_csv(missing)
    env = _council_env()
    res = _portal("sources", "check", "--raw", str(raw), "--mapping", str(EXAMPLE),
                  "--as-at", "2026-03-31", env=env)  # fmt: skip
    assert res.returncode == 1, res.stdout + res.stderr
    text = res.stdout.replace("\n", " ")
    # Both file-level problems, and each quarantined row with its file, line and reason.
    assert "2 file-level problem(s)" in text and "no extract for" in text
    assert "columns are separated by semicolons" in text
    assert f"{ehm}:4: bad_date:dob" in res.stdout
    assert (f"{missing}:{m.height + 2}: DfE rule 581: Child is missing but has not yet started "
            "to be looked after.") in res.stdout  # fmt: skip

    # A mapping file with two problems: both named, nothing read.
    bad = tmp_path / "bad.toml"
    bad.write_text('[[source]]\ncontract = "early_help"\nfile = "EHM_*.csv"\n'
                   '[source.columns]\nnope = "A"\n[source.codes.sex]\n"Girl" = "G"\n')  # fmt: skip
    res = _portal("sources", "check", "--raw", str(raw), "--mapping", str(bad), env=env)
    assert res.returncode == 1
    text = res.stdout.replace("\n", " ")
    assert "2 problem(s) in the mapping file" in text and "'nope' is not a column" in text
