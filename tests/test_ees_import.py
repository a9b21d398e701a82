"""Comparator statistics in the EES format: good files load (on SQLite and PostgreSQL),
bad files are refused with every problem named by file, row and column, and nothing is
loaded when one file is bad."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from pipelines.comparators import check_files, coverage_warnings, load_files
from pipelines.ees import EesFileError, financial_year_of, read_pair
from pipelines.planning_config import load_planning
from pipelines.store import Store, audit_log
from pipelines.store_comparators import list_datasets, read_values
from portal.cli import app
from synthetic.comparators import DATASET, FOOTNOTES, build, shipped_file

HEADER = (
    "time_period,time_identifier,geographic_level,country_code,country_name,"
    "region_code,region_name,new_la_code,old_la_code,la_name,age_group,rate,percent\n"
)
GOOD_ROWS = (
    "2024,Reporting year,National,X92000001,England (fictional),,,,,,Total,500.5,20.1\n"
    "2024,Reporting year,Regional,X92000001,England (fictional),X12000001,Region A,,,,Total,480.0,19.0\n"
    "2024,Reporting year,Local authority,X92000001,England (fictional),X12000001,Region A,X10000002,X02,Place B,Total,470.2,c\n"
    "2024,Reporting year,Local authority,X92000001,England (fictional),X12000001,Region A,X10000002,X02,Place B,Under 1,z,x\n"
)  # fmt: skip
META = (
    "col_name,col_type,label,indicator_grouping,indicator_unit,indicator_dp,filter_hint,"
    "filter_grouping_column\n"
    "age_group,Filter,Age group,,,,Age on 31 March,\n"
    "rate,Indicator,Rate per 10000 children,,,1,,\n"
    "percent,Indicator,Percentage,,%,1,,\n"
)


def _write(d: Path, name: str, data: str, meta: str | None = META) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.csv").write_text(data, encoding="utf-8")
    if meta is not None:
        (d / f"{name}.meta.csv").write_text(meta, encoding="utf-8")
    return d / f"{name}.csv"


def test_the_shipped_fictional_file_is_what_the_generator_writes() -> None:
    data, meta, notes = build()
    shipped = shipped_file()
    assert shipped.read_text(encoding="utf-8") == data
    assert shipped.with_name(f"{DATASET}.meta.csv").read_text(encoding="utf-8") == meta
    assert shipped.with_name(f"{DATASET}.footnotes.csv").read_text(encoding="utf-8") == notes


def test_the_shipped_file_says_it_is_fictional_and_passes_the_rules() -> None:
    f = read_pair(shipped_file())
    names = set(f.data["country_name"]) | set(f.data["la_name"]) - {""}
    names |= set(f.data["region_name"]) - {""}
    assert names and all("fictional" in n.lower() for n in names), names
    assert all(c.startswith("X") for c in f.data["new_la_code"] if c)
    assert all("(fictional)" in label for label in f.meta["label"])
    assert "FICTIONAL" in FOOTNOTES[0]


def test_a_good_file_reads(tmp_path: Path) -> None:
    f = read_pair(_write(tmp_path, "good", HEADER + GOOD_ROWS))
    assert f.filters == ["age_group"] and f.indicators == ["rate", "percent"]


def test_a_bad_file_names_every_problem_at_once(tmp_path: Path) -> None:
    bad_rows = (
        GOOD_ROWS
        # line 6: a blank indicator cell, and a legacy symbol
        + "2024,Reporting year,Local authority,X92000001,England (fictional),X12000001,Region A,X10000003,X03,Place C,Total,,:\n"
        # line 7: a time period that is not a year; a level EES does not know
        + "24/25,Reporting year,County,X92000001,England (fictional),,,,,,Total,1.0,2.0\n"
        # line 8: a blank filter cell; a Regional row without its region code
        + "2024,Reporting year,Regional,X92000001,England (fictional),,Region B,,,,,1.0,2.0\n"
        # line 9: the same row as line 2
        + "2024,Reporting year,National,X92000001,England (fictional),,,,,,Total,500.5,20.1\n"
    )  # fmt: skip
    meta = META.replace("Percentage,,%", ",,percent")  # no label; a unit EES does not know
    with pytest.raises(EesFileError) as caught:
        read_pair(_write(tmp_path, "bad", HEADER + bad_rows, meta))
    text = {str(p) for p in caught.value.problems}
    expected = {
        "bad.csv, row 6, column 'rate': an indicator cell is blank",
        "bad.csv, row 6, column 'percent': a null or legacy symbol ('NA', 'NULL', ':', '-' ...); "
        "use a GSS symbol",
        "bad.csv, row 7, column 'time_period': time_period must be a number",
        "bad.csv, row 7, column 'geographic_level': not a geographic level EES accepts "
        "(e.g. National, Regional, Local authority)",
        "bad.csv, row 8, column 'age_group': a filter cell is blank",
        "bad.csv, row 8, column 'region_code': blank in a Regional row",
        "bad.meta.csv, row 4, column 'label': every filter and indicator needs a label",
        "bad.meta.csv, row 4, column 'indicator_unit': indicator_unit must be blank or one of "
        "%, pp, £, £m, numberstring",
    }
    assert expected <= text, sorted(text)
    dupes = [p for p in caught.value.problems if p.problem.startswith("duplicate row")]
    assert {p.row for p in dupes} == {2, 9}


def test_missing_columns_and_a_missing_meta_file(tmp_path: Path) -> None:
    with pytest.raises(EesFileError) as caught:
        read_pair(_write(tmp_path, "nometa", HEADER + GOOD_ROWS, meta=None))
    assert [str(p) for p in caught.value.problems] == [
        "nometa.csv: has no meta file: expected nometa.meta.csv beside it"
    ]
    no_level = HEADER.replace("geographic_level,", "") + "".join(
        ",".join(r.split(",")[:2] + r.split(",")[3:]) + "\n" for r in GOOD_ROWS.splitlines()
    )
    with pytest.raises(EesFileError) as caught:
        read_pair(_write(tmp_path, "nolevel", no_level))
    assert any(
        p.problem == "missing required column(s): geographic_level" for p in caught.value.problems
    )


def test_an_undescribed_column_and_a_filter_without_total(tmp_path: Path) -> None:
    data = HEADER.replace(",percent\n", ",percent,extra\n") + GOOD_ROWS.replace("\n", ",1\n")
    data = data.replace(",Total,", ",All ages,")
    with pytest.raises(EesFileError) as caught:
        read_pair(_write(tmp_path, "odd", data))
    text = {str(p) for p in caught.value.problems}
    assert (
        "odd.csv, column 'extra': is neither a time or geography column nor described in the meta file"
        in text
    )
    assert "odd.csv, column 'age_group': filter has no 'Total' value (its default)" in text


def test_problems_of_several_files_come_together(tmp_path: Path) -> None:
    good = _write(tmp_path, "good", HEADER + GOOD_ROWS)
    blank = _write(tmp_path, "blank", HEADER + GOOD_ROWS.replace("500.5", ""))
    mixed = _write(
        tmp_path,
        "mixed",
        HEADER
        + GOOD_ROWS.replace("2024,Reporting year,Regional", "202324,Financial year,Regional"),
    )
    with pytest.raises(EesFileError) as caught:
        check_files([good, blank, mixed])
    files = {p.file for p in caught.value.problems}
    assert files == {"blank.csv", "mixed.csv"}
    assert any("mixes time identifiers" in p.problem for p in caught.value.problems)


def test_financial_years_of_ees_periods() -> None:
    assert financial_year_of("Reporting year", "2025") == "2024/25"
    assert financial_year_of("Financial year", "202526") == "2025/26"
    assert financial_year_of("Academic year", "202425") is None


def test_load_replaces_a_data_set_whole_and_is_audited(db_url: str, tmp_path: Path) -> None:
    store = Store(db_url)
    try:
        path = _write(tmp_path, "good", HEADER + GOOD_ROWS)
        (tmp_path / "good.footnotes.csv").write_text("footnote\nMade up for a test.\n")
        first = load_files(store, [path], actor="tester")
        assert [d.rows for d in first] == [8]  # 4 rows x 2 indicators
        load_files(store, [path], actor="tester")  # again: replaces, never doubles
        [ds] = list_datasets(store)
        assert (ds.dataset, ds.rows, ds.footnotes) == ("good", 8, ["Made up for a test."])
        values = read_values(store, "percent", "good")
        assert values.height == 4
        la = values.filter(pl.col("geographic_level") == "Local authority").sort("filters")
        # Symbols are kept as symbols, numbers as numbers; the period as a financial year.
        assert la["symbol"].to_list() == ["c", "x"] and la["value"].to_list() == [None, None]
        assert set(values["financial_year"]) == {"2023/24"}
        with store.engine.connect() as conn:
            actions = [r.action for r in conn.execute(audit_log.select())]
        assert actions.count("comparators_loaded") == 2
    finally:
        store.dispose()


def test_cli_loads_nothing_when_a_file_is_bad(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    good = _write(tmp_path / "in", "good", HEADER + GOOD_ROWS)
    bad = _write(tmp_path / "in", "bad", HEADER + GOOD_ROWS.replace("480.0", "NA"))
    res = CliRunner().invoke(app, ["comparators", "load", str(good), str(bad), "--store", url])
    assert res.exit_code == 1, res.output
    assert "nothing was loaded" in res.output
    assert "bad.csv, row 3, column 'rate'" in res.output
    res = CliRunner().invoke(app, ["comparators", "list", "--store", url])
    assert "no comparator data loaded" in res.output


def test_cli_loads_the_demo_file_and_warns_what_comparisons_will_lack(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    res = CliRunner().invoke(app, ["comparators", "load", "--demo", "--store", url])
    assert res.exit_code == 0, res.output
    # The demo file covers the demo council's region, England and all ten neighbours.
    assert f"loaded {DATASET}" in res.output and "warning" not in res.output
    store = Store(url)
    try:
        assert [d.dataset for d in list_datasets(store)] == [DATASET]
    finally:
        store.dispose()
    res = CliRunner().invoke(app, ["comparators", "list", "--store", url])
    assert res.exit_code == 0 and "Comparator data sets" in res.output
    # A file with one authority only: loadable, with warnings saying what it lacks.
    only_las = _write(tmp_path / "in", "las_only", HEADER + GOOD_ROWS.splitlines(True)[2])
    warnings = coverage_warnings([read_pair(only_las)], load_planning())
    assert any("no National row for England (fictional)" in w for w in warnings), warnings
    assert any("no Regional row" in w for w in warnings)
    assert any(
        "9 of the 10 statistical neighbours have no Local authority rows" in w for w in warnings
    )
