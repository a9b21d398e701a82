"""Generalisation hierarchies as data: ARX files, built-in age/date/geography hierarchies."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anonymise.hierarchies import (
    Hierarchy,
    HierarchyError,
    UnknownValuesError,
    age_hierarchy,
    date_hierarchy,
    find_hierarchy_files,
    flat_hierarchy,
    geography_hierarchy,
    load_arx_hierarchies,
    load_arx_hierarchy,
)
from tests.adult_data import ADULT, ADULT_QI, needs_adult


@needs_adult
def test_loads_every_adult_hierarchy_in_arx_layout():
    hierarchies = load_arx_hierarchies(ADULT, names=ADULT_QI)
    assert list(hierarchies) == ADULT_QI
    heights = {q: h.height for q, h in hierarchies.items()}
    assert heights == {
        "sex": 1, "age": 4, "race": 1, "marital-status": 2, "education": 3,
        "native-country": 2, "workclass": 2, "occupation": 2, "salary-class": 1,
    }  # fmt: skip
    age = hierarchies["age"]
    assert age.table.height == 100
    assert age.generalise(pl.Series("age", [39, 50, None]), 2).to_list() == [
        "30-39",
        "40-49",
        None,
    ]
    # A missing value joins everybody at the level with a single value.
    assert age.generalise(pl.Series("age", [None]), 4).to_list() == ["*"]


@needs_adult
def test_prefix_loading_matches_name_finding():
    by_prefix = load_arx_hierarchies(ADULT, "adult_hierarchy_")
    assert set(by_prefix) == set(ADULT_QI)
    files = find_hierarchy_files(ADULT, ["age", "marital-status"])
    assert files["age"].name == "adult_hierarchy_age.csv"


def test_missing_and_ambiguous_hierarchy_files_are_reported_together(tmp_path):
    for name in ("a_x.csv", "b_x.csv", "y.csv"):
        (tmp_path / name).write_text("1;*\n")
    with pytest.raises(HierarchyError) as err:
        find_hierarchy_files(tmp_path, ["x", "z", "y"])
    message = str(err.value)
    assert "several hierarchy files for 'x'" in message and "no hierarchy file for 'z'" in message


def test_malformed_hierarchies_list_every_problem():
    table = pl.DataFrame(
        {"a": ["1", "1", "2", "3"], "b": ["x", "x", "x", "y"], "c": ["*", "*", "p", "q"]}
    )
    with pytest.raises(HierarchyError) as err:
        Hierarchy("bad", table)
    message = str(err.value)
    assert "listed more than once" in message
    assert "at level 1 have more than one parent at level 2" in message


def test_arx_file_with_bom_and_trailing_separator(tmp_path):
    path = tmp_path / "h.csv"
    path.write_bytes("\ufeffa;g1;*;\nb;g1;*;\nc;g2;*;\n".encode())
    h = load_arx_hierarchy(path)
    assert h.height == 2 and h.leaves.to_list() == ["a", "b", "c"]
    assert h.generalise(pl.Series(["c", "a"]), 1).to_list() == ["g2", "g1"]


def test_unknown_values_are_counted_never_shown():
    h = flat_hierarchy("sex", ["F", "M"])
    with pytest.raises(UnknownValuesError) as err:
        h.leaf_codes(pl.Series("sex", ["F", "Zaphod", "Zaphod", "X"]))
    message = str(err.value)
    assert "3 record(s)" in message and "2 distinct" in message
    assert "Zaphod" not in message


def test_lazy_expression_agrees_and_suppresses_unknowns():
    h = age_hierarchy(max_age=20)
    frame = pl.DataFrame({"age": [3, 17, None, 99]})
    lazy = frame.lazy().select(h.expr("age", 1)).collect()["age"].to_list()
    assert lazy[:3] == h.generalise(frame["age"][:3], 1).to_list()
    assert lazy[3] == "*"


def test_age_hierarchy_bands():
    h = age_hierarchy(max_age=100)
    assert h.levels == ("year", "5-year band", "broad band", "*")
    values = pl.Series("age", [0, 4, 5, 19, 64, 65, 100])
    assert h.generalise(values, 1).to_list() == [
        "0-4",
        "0-4",
        "5-9",
        "15-19",
        "60-64",
        "65-69",
        "100",
    ]
    assert h.generalise(values, 2).to_list() == [
        "0-9",
        "0-9",
        "0-9",
        "10-19",
        "40-64",
        "65+",
        "65+",
    ]
    with pytest.raises(HierarchyError, match="multiples"):
        age_hierarchy(broad_edges=(0, 18, 65))


def test_date_hierarchy_calendar_and_financial_years():
    h = date_hierarchy(start=date(2023, 1, 1), end=date(2024, 12, 31))
    days = pl.Series("d", [date(2023, 3, 31), date(2024, 4, 1), None])
    assert h.generalise(days, 1).to_list() == ["2023-03", "2024-04", None]
    assert h.generalise(days, 2).to_list() == ["2023-Q1", "2024-Q2", None]
    assert h.generalise(days, 3).to_list() == ["2023", "2024", None]
    fy = date_hierarchy(start=date(2023, 1, 1), end=date(2024, 12, 31), year_start_month=4)
    assert fy.generalise(days, 2).to_list() == ["2022-23 Q4", "2024-25 Q1", None]
    assert fy.generalise(days, 3).to_list() == ["2022-23", "2024-25", None]
    stamps = pl.Series("t", [datetime(2024, 4, 1, 13, 30)])
    assert fy.generalise(stamps, 1).to_list() == ["2024-04"]


def test_geography_hierarchy_normalises_postcodes_and_refuses_split_lsoas():
    lookup = pl.DataFrame(
        {
            "postcode": ["ab1 2cd", "AB12CE", "AB3 4EF"],
            "lsoa": ["E01", "E01", "E02"],
            "ward": ["W1", "W1", "W2"],
            "locality": ["North", "North", "North"],
            "county": ["Shire", "Shire", "Shire"],
        }
    )
    h = geography_hierarchy(lookup)
    assert h.levels == ("postcode", "lsoa", "ward", "locality", "county", "*")
    assert h.generalise(pl.Series(["ab12ce", " AB3  4EF "]), 2).to_list() == ["W1", "W2"]
    split = lookup.with_columns(pl.Series("ward", ["W1", "W9", "W2"]))
    with pytest.raises(HierarchyError, match="more than one parent"):
        geography_hierarchy(split)


@st.composite
def hierarchy_and_values(draw):
    leaves = draw(st.integers(2, 12))
    depth = draw(st.integers(1, 4))
    data = {f"l{i}": [f"g{i}_{leaf >> i}" for leaf in range(leaves)] for i in range(depth)}
    data["l0"] = [f"v{leaf}" for leaf in range(leaves)]
    data[f"l{depth}"] = ["*"] * leaves
    values = draw(st.lists(st.integers(0, leaves - 1), min_size=1, max_size=30))
    return Hierarchy("h", pl.DataFrame(data)), [f"v{v}" for v in values]


@settings(max_examples=40, deadline=None)
@given(hierarchy_and_values())
def test_generalising_in_steps_equals_generalising_at_once(case):
    h, values = case
    series = pl.Series("x", values)
    table = h.table
    for low in range(h.height + 1):
        step = dict(zip(table[f"l{low}"], table[f"l{h.height}"], strict=True))
        lower = h.generalise(series, low)
        assert [step[v] for v in lower.to_list()] == h.generalise(series, h.height).to_list()
        # Codes and labels agree, and leaves under a value are counted over the whole table.
        labels = h.level_values(low)
        codes = h.level_codes(low)
        assert labels.gather(pl.Series(codes)).to_list() == table[f"l{low}"].to_list()
        under = h.leaves_under(low)
        assert all(
            under[i] == table[f"l{low}"].to_list().count(table[f"l{low}"][i])
            for i in range(table.height)
        )


# --- disclosure treatments of research variables (issue 10) ------------------------------------


def test_count_bands_top_code_and_nest():
    from anonymise.hierarchies import count_band_expr, count_band_hierarchy

    df = pl.DataFrame({"c": [0, 1, 2, 3, 5, 6, 10, 11, 20, None]})
    bands = df.select(count_band_expr(pl.col("c")).alias("c"))["c"].to_list()
    assert bands == ["0", "1", "2", "3-5", "3-5", "6-10", "6-10", "11+", "11+", "0"]
    h = count_band_hierarchy("c")
    assert h.generalise(pl.Series("c", bands), 1).to_list()[3:8] == ["3+"] * 5
    assert set(h.generalise(pl.Series("c", bands), 3)) == {"*"}


def test_percent_bands_and_missing():
    from anonymise.hierarchies import NOT_RECORDED, percent_band_expr, percent_band_hierarchy

    df = pl.DataFrame({"p": [0.0, 4.99, 5.0, 9.9, 10.0, 49.9, 50.0, 99.0, None]})
    bands = df.select(percent_band_expr(pl.col("p")).alias("p"))["p"]
    assert bands.to_list() == [
        "0-<5%", "0-<5%", "5-<10%", "5-<10%", "10-<20%", "20-<50%", "50%+", "50%+", NOT_RECORDED,
    ]  # fmt: skip
    coarse = percent_band_hierarchy("p").generalise(bands, 1).to_list()
    assert coarse[:4] == ["<10%"] * 4 and coarse[4:8] == ["10%+"] * 4


def test_dates_leave_as_quarters_never_months():
    from anonymise.hierarchies import quarter_expr, quarter_hierarchy

    df = pl.DataFrame({"m": ["2021-01", "2021-03", "2021-04", "2025-12", None]})
    q = df.select(quarter_expr(pl.col("m")).alias("m"))["m"]
    assert q.to_list() == ["2021-Q1", "2021-Q1", "2021-Q2", "2025-Q4", "none"]
    h = quarter_hierarchy("m", first_year=2021, last_year=2025)
    assert h.generalise(q, 1).to_list() == ["2021", "2021", "2021", "2025", "none"]


def test_code_sets_are_never_free_text():
    from anonymise.hierarchies import code_set_expr, code_set_hierarchy

    df = pl.DataFrame(
        {"t": ["HEALTH;CRIME", "Mum said dad hits her; HEALTH", "not recorded", None]}
    )
    out = df.select(code_set_expr(pl.col("t"), ["HEALTH", "CRIME"]).alias("t"))["t"]
    assert out.to_list() == ["CRIME;HEALTH", "HEALTH;other", "not recorded", "not recorded"]
    h = code_set_hierarchy("t", out)
    assert h.generalise(out, 1).to_list() == ["2 needs", "2 needs", "not recorded", "not recorded"]


def test_fixed_level_hierarchy_has_one_level():
    from anonymise.hierarchies import fixed_level_hierarchy

    h = fixed_level_hierarchy("e1:age", ["0-9", "10-19", None, "0-9"], "as released")
    assert h.height == 0 and h.levels == ("as released",)
    assert h.generalise(pl.Series("e1:age", ["10-19", None]), 0).to_list() == ["10-19", None]
