"""Risk measures: cross-checked against pycanon and against brute-force references.

pycanon is always called on a pandas frame with a default RangeIndex: it reads row
labels as positions (see ANCHORS.md). Where the definition and pycanon disagree, the
test follows the definition with a brute-force reference and pins pycanon's value so
an upgrade that changes it is noticed.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pycanon import anonymity as pycanon

from anonymise import risk

HYPOTHESIS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- brute-force references (pure Python, one record at a time) ---------------------------------


def _rows(df: pl.DataFrame, cols: Sequence[str]) -> list[tuple]:
    return list(df.select(cols).iter_rows())


def _compatible(a: tuple, b: tuple, wildcard: bool) -> bool:
    if not wildcard:
        return a == b
    return all(x is None or y is None or x == y for x, y in zip(a, b, strict=True))


def reference_classes(df: pl.DataFrame, qi: Sequence[str], sensitive: str | None, wildcard: bool):
    """For each record: its class size and the Counter of sensitive values in its class."""
    keys = _rows(df, qi)
    values = df[sensitive].to_list() if sensitive else [None] * df.height
    out = []
    for key in keys:
        members = [j for j, other in enumerate(keys) if _compatible(key, other, wildcard)]
        out.append((len(members), Counter(values[j] for j in members)))
    return out


def reference_measures(df: pl.DataFrame, qi, sensitive, wildcard=False, ordered=False):
    classes = reference_classes(df, qi, sensitive, wildcard)
    n = df.height
    result = {"k": min(size for size, _ in classes)}
    if sensitive is None:
        return result
    overall = Counter(df[sensitive].to_list())
    order = sorted(overall, key=lambda v: (v is None, v if v is not None else 0))
    p = {v: overall[v] / n for v in order}
    ls, entropies, ts, deltas, betas = [], [], [], [], []
    for size, counts in classes:
        q = {v: counts.get(v, 0) / size for v in order}
        ls.append(len(counts))
        entropies.append(-sum(x * math.log(x) for x in q.values() if x > 0))
        if ordered:
            cumulative, emd = 0.0, 0.0
            for v in order:
                cumulative += q[v] - p[v]
                emd += abs(cumulative)
            ts.append(emd / (len(order) - 1) if len(order) > 1 else 0.0)
        else:
            ts.append(0.5 * sum(abs(q[v] - p[v]) for v in order))
        deltas.append(max(abs(math.log(q[v] / p[v])) for v in order if q[v] > 0))
        betas.append(max((q[v] - p[v]) / p[v] for v in order))
    result.update(
        l=min(ls), entropy_l=math.exp(min(entropies)), t=max(ts), delta=max(deltas), beta=max(betas)
    )
    return result


def reference_recursive_c(df: pl.DataFrame, qi, sensitive, l_value: int) -> int | None:
    worst = 0
    for _, counts in reference_classes(df, qi, sensitive, False):
        r = sorted(counts.values(), reverse=True)
        tail = sum(r[l_value - 1 :])
        if tail == 0:
            return None
        worst = max(worst, math.floor(r[0] / tail) + 1)
    return worst


def assert_record_risk_matches(df, qi, report, wildcard: bool, population=None) -> None:
    sizes = [size for size, _ in reference_classes(df, qi, None, wildcard)]
    reid = report.reidentification
    n = df.height
    assert reid.prosecutor.highest == pytest.approx(max(1 / s for s in sizes))
    assert reid.prosecutor.average == pytest.approx(sum(1 / s for s in sizes) / n)
    assert reid.prosecutor.records_at_risk == sum(1 / s > 0.2 for s in sizes)
    assert reid.sample_uniques == sizes.count(1)
    if population is not None:
        keys, pop_keys = _rows(df, qi), _rows(population, qi)
        big = [
            max(sum(_compatible(key, other, wildcard) for other in pop_keys), size)
            for key, size in zip(keys, sizes, strict=True)
        ]
        assert reid.journalist.highest == pytest.approx(max(1 / f for f in big))
        assert reid.marketer == pytest.approx(sum(1 / f for f in big) / n)
        assert reid.journalist.records_at_risk == sum(1 / f > 0.2 for f in big)


# --- generated frames ---------------------------------------------------------------------------


@st.composite
def frames(draw, *, nulls: bool = False, max_rows: int = 40):
    n = draw(st.integers(1, max_rows))
    n_qi = draw(st.integers(1, 3))
    data: dict[str, list] = {}
    schema: dict[str, pl.DataType] = {}
    for j in range(n_qi):
        kind = draw(st.sampled_from(["int", "str"]))
        card = draw(st.integers(1, 4))
        pool = list(range(card)) if kind == "int" else [f"v{i}" for i in range(card)]
        element = st.sampled_from(pool)
        if nulls:
            element = st.one_of(st.none(), element)
        data[f"q{j}"] = draw(st.lists(element, min_size=n, max_size=n))
        schema[f"q{j}"] = pl.Int64() if kind == "int" else pl.String()
    s_kind = draw(st.sampled_from(["int", "str"]))
    s_card = draw(st.integers(1, 5))
    pool = list(range(s_card)) if s_kind == "int" else [f"s{i}" for i in range(s_card)]
    data["s"] = draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n))
    schema["s"] = pl.Int64() if s_kind == "int" else pl.String()
    return pl.DataFrame(data, schema=schema), [f"q{j}" for j in range(n_qi)]


def _pandas(df: pl.DataFrame) -> pd.DataFrame:
    return df.to_pandas().reset_index(drop=True)


# --- against pycanon ----------------------------------------------------------------------------


@HYPOTHESIS
@given(frames())
def test_every_measure_matches_pycanon(case):
    df, qi = case
    pdf = _pandas(df)
    assert risk.k_anonymity(df, qi) == pycanon.k_anonymity(pdf, qi)
    assert risk.l_diversity(df, qi, "s") == pycanon.l_diversity(pdf, qi, ["s"])
    numeric_single = df.schema["s"] == pl.Int64 and df["s"].n_unique() == 1
    if not numeric_single:  # pycanon divides by zero there; we return 0
        assert risk.t_closeness(df, qi, "s") == pytest.approx(
            pycanon.t_closeness(pdf, qi, ["s"]), abs=1e-9
        )
    assert risk.delta_disclosure(df, qi, "s") == pytest.approx(
        pycanon.delta_disclosure(pdf, qi, ["s"]), abs=1e-9
    )
    assert risk.beta_likeness(df, qi, "s") == pytest.approx(
        pycanon.basic_beta_likeness(pdf, qi, ["s"]), abs=1e-9
    )
    # pycanon truncates entropy-l to an integer after a float rounding error.
    exact = risk.entropy_l_diversity(df, qi, "s")
    assert pycanon.entropy_l_diversity(pdf, qi, ["s"]) in {
        math.floor(exact - 1e-9),
        math.floor(exact + 1e-9),
    }


@HYPOTHESIS
@given(frames())
def test_every_measure_matches_the_brute_force_reference(case):
    df, qi = case
    ordered = df.schema["s"] == pl.Int64
    expected = reference_measures(df, qi, "s", ordered=ordered)
    report = risk.risk_report(df, qi, "s")
    assert_record_risk_matches(df, qi, report, False)
    assert report.k == expected["k"]
    assert report.l_distinct == expected["l"]
    assert report.l_entropy == pytest.approx(expected["entropy_l"], rel=1e-9)
    assert report.t == pytest.approx(expected["t"], abs=1e-9)
    assert report.t_distance == ("ordered" if ordered else "equal")
    assert report.delta == pytest.approx(expected["delta"], abs=1e-9)
    assert report.beta == pytest.approx(expected["beta"], abs=1e-9)
    assert (
        report.recursive_c == reference_recursive_c(df, qi, "s", expected["l"])
        if (expected["l"] >= 2)
        else report.recursive_c is None
    )


@HYPOTHESIS
@given(frames(nulls=True))
def test_missing_values_as_a_category_match_the_reference(case):
    df, qi = case
    expected = reference_measures(df, qi, "s", wildcard=False, ordered=df.schema["s"] == pl.Int64)
    population = pl.concat([df, df.head(3), df.tail(2)])
    report = risk.risk_report(df, qi, "s", missing="category", population=population)
    assert (report.k, report.l_distinct) == (expected["k"], expected["l"])
    assert_record_risk_matches(df, qi, report, False, population)
    assert report.t == pytest.approx(expected["t"], abs=1e-9)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames(nulls=True, max_rows=25))
def test_missing_values_as_wildcards_match_the_reference(case):
    df, qi = case
    ordered = df.schema["s"] == pl.Int64
    expected = reference_measures(df, qi, "s", wildcard=True, ordered=ordered)
    population = pl.concat([df, df.head(3)])
    report = risk.risk_report(df, qi, "s", missing="wildcard", population=population)
    assert_record_risk_matches(df, qi, report, True, population)
    assert report.k == expected["k"] == risk.k_anonymity(df, qi, missing="wildcard")
    assert report.l_distinct == expected["l"] == risk.l_diversity(df, qi, "s", missing="wildcard")
    assert report.t == pytest.approx(expected["t"], abs=1e-9)
    assert report.delta == pytest.approx(expected["delta"], abs=1e-9)
    assert report.beta == pytest.approx(expected["beta"], abs=1e-9)
    sizes = [size for size, _ in reference_classes(df, qi, None, True)]
    assert risk.sample_uniques(df, qi, missing="wildcard") == sizes.count(1)
    # A wildcard can only widen a class: never a smaller k than treating nulls as a value.
    assert report.k >= risk.k_anonymity(df, qi, missing="category")


def test_missing_value_policies_on_a_worked_example():
    df = pl.DataFrame({"age": [30, 30, None, 40], "sex": ["F", "F", "F", "M"]})
    assert risk.k_anonymity(df, ["age", "sex"], missing="category") == 1
    # The record with unknown age could be either 30-year-old woman.
    classes = risk.equivalence_classes(df, ["age", "sex"], missing="wildcard").sort("age")
    assert classes["class_size"].to_list() == [3, 3, 1]
    with pytest.raises(ValueError, match="missing must be"):
        risk.k_anonymity(df, ["age"], missing="ignore")  # type: ignore[arg-type]


# --- documented differences from pycanon ---------------------------------------------------------


def test_recursive_cl_sorts_counts_descending_unlike_pycanon():
    df = pl.DataFrame({"q": ["a"] * 10, "s": ["x"] * 8 + ["y", "z"]})
    assert risk.recursive_c_l_diversity(df, ["q"], "s") == (9, 3)
    # pycanon 1.3.5 sorts ascending and reports c=1 here.
    assert pycanon.recursive_c_l_diversity(_pandas(df), ["q"], ["s"])[0] == 1


def test_row_labels_are_never_positions():
    df = pl.DataFrame({"q": ["a", "a", "b", "b", "b", "b"], "s": ["x", "x", "x", "y", "x", "y"]})
    assert risk.l_diversity(df, ["q"], "s") == 1
    assert risk.l_diversity(df[[0, 3, 1, 2, 4, 5]], ["q"], "s") == 1
    shuffled = df.to_pandas().iloc[[0, 3, 1, 2, 4, 5]]
    # pycanon on the shuffled labels reads the wrong rows; on a RangeIndex it agrees with us.
    assert pycanon.l_diversity(shuffled, ["q"], ["s"]) == 2
    assert pycanon.l_diversity(shuffled.reset_index(drop=True), ["q"], ["s"]) == 1


def test_null_sensitive_values_are_a_value_not_a_crash():
    df = pl.DataFrame({"q": ["a", "a", "b", "b"], "s": ["x", None, "x", "x"]})
    expected = reference_measures(df, ["q"], "s")
    report = risk.risk_report(df, ["q"], "s")
    assert report.l_distinct == 1 and expected["l"] == 1
    assert report.t == pytest.approx(expected["t"])
    with pytest.raises(TypeError):
        pycanon.l_diversity(_pandas(df), ["q"], ["s"])


def test_single_numeric_sensitive_value_gives_t_zero():
    df = pl.DataFrame({"q": [1, 2, 2], "s": [5, 5, 5]})
    assert risk.t_closeness(df, ["q"], "s") == 0.0


# --- record-level risk --------------------------------------------------------------------------


def test_prosecutor_journalist_and_marketer_risk():
    sample = pl.DataFrame({"age": [30, 30, 40, 50], "sex": ["F", "F", "M", "M"]})
    reid = risk.reidentification_risk(sample, ["age", "sex"], threshold=0.5)
    assert reid.prosecutor.highest == 1.0
    assert reid.prosecutor.average == pytest.approx(3 / 4)  # classes / records
    assert reid.prosecutor.records_at_risk == 2 and reid.sample_uniques == 2
    assert reid.journalist == reid.prosecutor and reid.journalist_basis == "sample"
    population = pl.concat(
        [sample, pl.DataFrame({"age": [30, 40, 40, 40, 50], "sex": ["F", "M", "M", "M", "M"]})]
    )
    reid = risk.reidentification_risk(sample, ["age", "sex"], population=population, threshold=0.3)
    assert reid.journalist_basis == "population"
    # Classes in the population: (30,F)=3, (40,M)=4, (50,M)=2.
    assert reid.journalist.highest == pytest.approx(1 / 2)
    assert reid.marketer == pytest.approx((2 / 3 + 1 / 4 + 1 / 2) / 4)
    assert reid.journalist.records_at_risk == 3  # risks 1/3, 1/3 and 1/2 exceed 0.3


def test_riskiest_classes_show_quasi_identifiers_and_sizes_only():
    df = pl.DataFrame(
        {
            "name": ["Ann Smith", "Bob Jones", "Cy Young", "Di Prince"],
            "age": [30, 30, 41, 52],
            "diagnosis": ["asthma", "eczema", "gout", "gout"],
        }
    )
    report = risk.risk_report(df, ["age"], "diagnosis", top=2)
    assert report.riskiest.columns == ["age", "class_size", "l", "t"]
    assert report.riskiest["class_size"].to_list() == [1, 1]
    text = json.dumps(report.to_dict(), default=str)
    for secret in ("Ann Smith", "Bob Jones", "asthma", "eczema", "gout"):
        assert secret not in text


def test_report_agrees_with_the_single_measure_functions():
    rng = np.random.default_rng(3)
    n = 2_000
    df = pl.DataFrame(
        {
            "age": rng.integers(0, 30, n),
            "area": rng.choice(["n", "s", "e", "w"], n),
            "outcome": rng.choice(["a", "b", "c"], n),
            "score": rng.integers(0, 7, n),
        }
    )
    qi = ["age", "area"]
    report = risk.risk_report(df.lazy(), qi, "outcome")
    assert report.k == risk.k_anonymity(df, qi)
    assert report.l_distinct == risk.l_diversity(df, qi, "outcome")
    assert report.l_entropy == pytest.approx(risk.entropy_l_diversity(df, qi, "outcome"))
    assert report.t == pytest.approx(risk.t_closeness(df, qi, "outcome"))
    assert report.delta == pytest.approx(risk.delta_disclosure(df, qi, "outcome"))
    assert report.beta == pytest.approx(risk.beta_likeness(df, qi, "outcome"))
    assert (report.recursive_c, report.recursive_l) == risk.recursive_c_l_diversity(
        df, qi, "outcome"
    )
    assert report.classes == df.select(qi).unique().height
    pdf = _pandas(df)
    assert report.t == pytest.approx(pycanon.t_closeness(pdf, qi, ["outcome"]), abs=1e-9)
    ordered = risk.t_closeness(df, qi, "score")
    assert ordered == pytest.approx(pycanon.t_closeness(pdf, qi, ["score"]), abs=1e-9)
    assert risk.t_closeness(df, qi, "score", distance="equal") != pytest.approx(ordered)
    json.dumps(report.to_dict(), default=str)


def test_problems_are_reported_together():
    df = pl.DataFrame({"a": [1], "s": ["x"]})
    with pytest.raises(ValueError) as err:
        risk.risk_report(df, ["a", "b", "a"], "a")
    message = str(err.value)
    assert "more than once" in message and "['b']" in message and "both" in message
    with pytest.raises(ValueError, match="no records"):
        risk.k_anonymity(df.clear(), ["a"])
    with pytest.raises(ValueError, match="needs a sensitive"):
        risk.l_diversity(df, ["a"], None)  # type: ignore[arg-type]


@settings(max_examples=25, deadline=None)
@given(frames(max_rows=30), st.randoms(use_true_random=False))
def test_measures_do_not_depend_on_row_order(case, rnd):
    df, qi = case
    order = list(range(df.height))
    rnd.shuffle(order)
    shuffled = df[order]
    assume(df.height > 1)
    a, b = risk.risk_report(df, qi, "s"), risk.risk_report(shuffled, qi, "s")
    assert (a.k, a.l_distinct, a.recursive_c) == (b.k, b.l_distinct, b.recursive_c)
    assert a.t == pytest.approx(b.t) and a.delta == pytest.approx(b.delta)
