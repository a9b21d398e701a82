"""Optimal anonymisation: ARX's optimum on Adult, and optimality against exhaustive search."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pycanon import anonymity as pycanon

from anonymise.hierarchies import Hierarchy, flat_hierarchy, load_arx_hierarchies
from anonymise.lattice import (
    LatticeTooLargeError,
    NoSolutionDiagnosis,
    NoSolutionError,
    anonymise,
)
from anonymise.loss import information_loss
from tests.adult_data import ADULT, ADULT_QI, needs_adult


@pytest.fixture(scope="module")
def adult() -> tuple[pl.DataFrame, dict[str, Hierarchy]]:
    df = pl.read_csv(ADULT / "adult.csv", separator=";", infer_schema=False)
    return df, load_arx_hierarchies(ADULT, names=ADULT_QI)


@needs_adult
def test_reproduces_arx_optimum_on_adult(adult):
    df, hierarchies = adult
    result = anonymise(df, ADULT_QI, hierarchies, k=5, suppression_limit=0.02)
    assert [result.transformation[q] for q in ADULT_QI] == [0, 3, 0, 2, 2, 1, 1, 2, 0]
    assert result.loss.loss == pytest.approx(0.313713, abs=5e-7)
    assert result.suppressed == 506 and result.loss.classes == 222
    assert result.data.height == df.height - 506
    assert result.nodes_evaluated < result.lattice_size / 10
    # Checked independently: pycanon on the output, and the loss recomputed from the labels.
    assert pycanon.k_anonymity(result.data.to_pandas(), ADULT_QI) >= 5
    again = information_loss(
        result.data,
        records=df.height,
        quasi_ids=ADULT_QI,
        hierarchies=hierarchies,
        transformation=result.transformation,
        k=5,
    )
    assert again.loss == pytest.approx(result.loss.loss, abs=1e-12)
    assert again.discernibility == result.loss.discernibility
    assert again.classes == result.loss.classes


@needs_adult
def test_reproduces_arx_with_distinct_l_diversity(adult):
    df, hierarchies = adult
    qi = [q for q in ADULT_QI if q != "occupation"]
    result = anonymise(df, qi, hierarchies, k=5, l=3, sensitive="occupation")
    assert result.loss.loss == pytest.approx(0.246912, abs=5e-7)
    out = result.data.to_pandas()
    assert pycanon.l_diversity(out, qi, ["occupation"]) >= 3
    assert pycanon.k_anonymity(out, qi) >= 5


# --- exhaustive reference on small generated problems -------------------------------------------


def _reference_optimum(df, qi, hierarchies, *, k, l, t, limit_share, variant="distinct", c=None):  # noqa: E741
    """Try every transformation: generalise, find bad classes in Python, score with loss.py."""
    n = df.height
    limit = math.floor(limit_share * n + 1e-12)
    overall = Counter(df["s"].to_list())
    best = (math.inf, None)
    for levels in itertools.product(*[range(hierarchies[q].height + 1) for q in qi]):
        general = df.with_columns(
            hierarchies[q].generalise(df[q], lv) for q, lv in zip(qi, levels, strict=True)
        )
        keys = list(general.select(qi).iter_rows())
        members: dict[tuple, list[int]] = {}
        for i, key in enumerate(keys):
            members.setdefault(key, []).append(i)
        values = general["s"].to_list()
        bad_rows: list[int] = []
        for rows in members.values():
            counts = Counter(values[i] for i in rows)
            size = len(rows)
            bad = size < k
            if l is not None:
                if variant == "distinct":
                    bad |= len(counts) < l
                elif variant == "entropy":
                    entropy = -sum(v / size * math.log(v / size) for v in counts.values())
                    bad |= entropy < math.log(l) - 1e-12
                else:
                    r = sorted(counts.values(), reverse=True)
                    bad |= not r[0] < c * sum(r[l - 1 :])
            if t is not None:
                if df.schema["s"].is_numeric():
                    # Ordered distance over the sorted values, nulls last.
                    order = sorted(overall, key=lambda v: (v is None, v or 0))
                    running, distance = 0.0, 0.0
                    for v in order:
                        running += counts.get(v, 0) / size - overall[v] / n
                        distance += abs(running)
                    distance /= max(len(order) - 1, 1)
                else:
                    distance = 0.5 * sum(
                        abs(counts.get(v, 0) / size - overall[v] / n) for v in overall
                    )
                bad |= distance > t + 1e-12
            if bad:
                bad_rows.extend(rows)
        if len(bad_rows) > limit:
            continue
        keep = np.ones(n, dtype=bool)
        keep[bad_rows] = False
        loss = information_loss(
            general.filter(pl.Series(keep)),
            records=n,
            quasi_ids=qi,
            hierarchies=hierarchies,
            transformation=dict(zip(qi, levels, strict=True)),
        ).loss
        if loss < best[0] - 1e-12:
            best = (loss, levels)
    return best


@st.composite
def problems(draw):
    n = draw(st.integers(4, 45))
    n_qi = draw(st.integers(1, 3))
    data: dict[str, list] = {}
    hierarchies: dict[str, Hierarchy] = {}
    for j in range(n_qi):
        leaves = draw(st.integers(2, 6))
        depth = draw(st.integers(1, 3))
        table = {f"l{i}": [f"g{i}.{leaf >> i}" for leaf in range(leaves)] for i in range(1, depth)}
        table = {"l0": [f"v{leaf}" for leaf in range(leaves)], **table, f"l{depth}": ["*"] * leaves}
        hierarchies[f"q{j}"] = Hierarchy(f"q{j}", pl.DataFrame(table))
        pool = [f"v{leaf}" for leaf in range(leaves)]
        data[f"q{j}"] = draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n))
    pool = draw(st.sampled_from([["a", "b", "c"], ["a", "b", None], [0, 1, 2, 5], [1, 2, None]]))
    data["s"] = draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n))
    k = draw(st.integers(1, 5))
    model = draw(st.sampled_from(["k", "l", "entropy", "recursive", "t", "l+t"]))
    limit = draw(st.sampled_from([0.0, 0.1, 0.3]))
    numeric = any(isinstance(v, int) for v in pool)
    schema = {c: pl.String for c in data} | {"s": pl.Int64 if numeric else pl.String}
    frame = pl.DataFrame(data, schema=schema)
    return frame, [f"q{j}" for j in range(n_qi)], hierarchies, k, model, limit


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_search_finds_the_exhaustive_optimum(problem):
    df, qi, hierarchies, k, model, limit = problem
    options: dict = {"k": k, "suppression_limit": limit}
    variant, c = "distinct", None
    if model in ("l", "entropy", "recursive", "l+t"):
        options.update(l=2, sensitive="s")
        if model == "entropy":
            variant = options["l_variant"] = "entropy"
        if model == "recursive":
            variant = options["l_variant"] = "recursive"
            c = options["c"] = 2.0
    if model in ("t", "l+t"):
        options.update(t=0.3, sensitive="s")
    expected_loss, _ = _reference_optimum(
        df,
        qi,
        hierarchies,
        k=k,
        l=options.get("l"),
        t=options.get("t"),
        limit_share=limit,
        variant=variant,
        c=c,
    )
    event(f"model {model}; {'no solution' if expected_loss == math.inf else 'solved'}")
    if expected_loss == math.inf:
        with pytest.raises(NoSolutionError) as err:
            anonymise(df, qi, hierarchies, **options)
        assert isinstance(err.value.args[1], NoSolutionDiagnosis)
        return
    result = anonymise(df, qi, hierarchies, **options)
    assert result.loss.loss == pytest.approx(expected_loss, abs=1e-9)
    assert result.suppressed <= math.floor(limit * df.height + 1e-12)
    assert result.data.height == df.height - result.suppressed
    if result.data.height:
        out = result.data.to_pandas()
        assert pycanon.k_anonymity(out, qi) >= k
        if "l" in options:
            if result.data["s"].null_count():  # pycanon crashes on None in a sensitive column
                distinct = result.data.group_by(qi).agg(pl.col("s").n_unique())["s"].min()
                assert distinct >= 2
            else:
                assert pycanon.l_diversity(out, qi, ["s"]) >= 2


# --- behaviour ------------------------------------------------------------------------------------


def _toy(n: int = 60, seed: int = 1) -> tuple[pl.DataFrame, dict[str, Hierarchy]]:
    rng = np.random.default_rng(seed)
    df = pl.DataFrame(
        {
            "area": rng.choice(["n1", "n2", "s1", "s2"], n).tolist(),
            "band": rng.choice(["a", "b", "c"], n).tolist(),
            "outcome": rng.choice(["x", "y", "z"], n).tolist(),
            "person": [f"P{i:04d}" for i in range(n)],
        }
    )
    area = Hierarchy(
        "area",
        pl.DataFrame({"l0": ["n1", "n2", "s1", "s2"], "l1": ["n", "n", "s", "s"], "l2": ["*"] * 4}),
    )
    return df, {"area": area, "band": flat_hierarchy("band", ["a", "b", "c"])}


def test_other_columns_pass_through_for_retained_records():
    df, hierarchies = _toy()
    result = anonymise(df, ["area", "band"], hierarchies, k=4, suppression_limit=0.1)
    kept = df.filter(pl.col("person").is_in(result.data["person"].implode()))
    assert result.data["person"].to_list() == kept["person"].to_list()
    assert result.data["outcome"].to_list() == kept["outcome"].to_list()
    assert set(result.to_dict()) >= {"settings", "transformation", "information_loss"}


def test_missing_quasi_identifiers_are_their_own_value():
    df, hierarchies = _toy(80)
    df = df.with_columns(
        pl.when(pl.int_range(pl.len()) % 7 == 0).then(None).otherwise(pl.col("area")).alias("area")
    )
    result = anonymise(df, ["area", "band"], hierarchies, k=3, suppression_limit=0.05)
    out = result.data
    assert out.group_by(["area", "band"]).len()["len"].min() >= 3
    if result.transformation["area"] < 2:
        assert out["area"].null_count() > 0
    else:
        assert out["area"].null_count() == 0


def test_no_solution_explains_which_quasi_identifier_drives_the_risk():
    df, hierarchies = _toy(40)
    # A region level with no "*": region still splits the records at its most general level.
    region = Hierarchy(
        "area",
        pl.DataFrame({"l0": ["n1", "n2", "s1", "s2"], "l1": ["north", "north", "south", "south"]}),
    )
    with pytest.raises(NoSolutionError) as err:
        anonymise(
            df, ["area", "band"], {**hierarchies, "area": region}, k=30, suppression_limit=0.0
        )
    diagnosis = err.value.args[1]
    assert isinstance(diagnosis, NoSolutionDiagnosis)
    drivers = {d.quasi_id: d for d in diagnosis.drivers}
    assert drivers["area"].values_at_most_general_level == 2
    assert drivers["area"].records_to_suppress_without_it == 0
    assert "area" in str(err.value) and diagnosis.failing["k-anonymity"] == 40
    with pytest.raises(NoSolutionError, match="too few records"):
        anonymise(df, ["area", "band"], hierarchies, k=41)


def test_settings_problems_are_reported_together():
    df, hierarchies = _toy()
    with pytest.raises(ValueError) as err:
        anonymise(df, ["area", "nope"], hierarchies, k=0, l=2, suppression_limit=1.5)
    message = str(err.value)
    for part in ("['nope']", "k must be", "need a sensitive", "suppression_limit"):
        assert part in message


def test_huge_lattices_are_refused_up_front():
    df, hierarchies = _toy()
    with pytest.raises(LatticeTooLargeError):
        anonymise(df, ["area", "band"], hierarchies, k=2, max_lattice_nodes=5)
