"""Disclosure-risk measures in polars: a few group-bys per measure, no Python loop over classes.

Every measure reads the same two tables:

* the *classes*: one row per distinct combination of quasi-identifier values, with
  the records in it and the size of its equivalence class;
* the *histogram*: for each class, the count of each sensitive value in it.

Missing values in quasi-identifiers follow an explicit policy (``missing=``):

``"category"`` (default)
    A missing value is a value of its own: records missing the same QIs and agreeing
    on the rest form a class. This is what ARX and most tools do.
``"wildcard"``
    A missing value could be anything (as sdcMicro's frequency counts treat NA): a
    record's "class" is every record that agrees with it wherever both are known. The
    classes may overlap; each combination's class is its compatible neighbourhood.
    This is the cautious choice when missingness is not itself informative: a record
    missing its postcode still hides only among records that could share it.

Missing sensitive values are one more sensitive value (``null``), ordered last for
the ordered distance.

Where results differ from pycanon 1.3.5 (see ``docs/privacy-engine.md``): entropy-l
is returned exactly rather than truncated to an integer; recursive (c,l) sorts the
counts in descending order as the definition requires; t-closeness with a single
sensitive value is 0 (pycanon divides by zero); nulls are values rather than errors;
row labels are never used as positions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl

__all__ = [
    "MissingPolicy",
    "RecordRisk",
    "ReidentificationRisk",
    "RiskReport",
    "TDistance",
    "beta_likeness",
    "delta_disclosure",
    "entropy_l_diversity",
    "equivalence_classes",
    "k_anonymity",
    "l_diversity",
    "recursive_c_l_diversity",
    "reidentification_risk",
    "riskiest_classes",
    "risk_report",
    "sample_uniques",
    "t_closeness",
]

MissingPolicy = Literal["category", "wildcard"]
TDistance = Literal["auto", "equal", "ordered"]

_ID = "__class_id"
_N = "__records"  # records with exactly this combination
_F = "__class_size"  # records in its class (neighbourhood, under the wildcard policy)
_S = "__sensitive"
_C = "__count"
_P = "__p"
_I = "__order"
_MASK = "__observed"

Frame = pl.DataFrame | pl.LazyFrame


# --- preparing the input -----------------------------------------------------------------------


def _frame(
    df: Frame, quasi_ids: Sequence[str], sensitive: str | None, missing: str
) -> pl.DataFrame:
    problems: list[str] = []
    qi = list(quasi_ids)
    columns = df.collect_schema().names() if isinstance(df, pl.LazyFrame) else df.columns
    if not qi:
        problems.append("at least one quasi-identifier is needed")
    if len(set(qi)) != len(qi):
        problems.append("quasi-identifiers are listed more than once")
    absent = [c for c in qi if c not in columns]
    if absent:
        problems.append(f"quasi-identifier column(s) not in the data: {absent}")
    if sensitive is not None:
        if sensitive not in columns:
            problems.append(f"sensitive column {sensitive!r} not in the data")
        if sensitive in qi:
            problems.append(f"{sensitive!r} cannot be both a quasi-identifier and sensitive")
    if missing not in ("category", "wildcard"):
        problems.append(f"missing must be 'category' or 'wildcard', not {missing!r}")
    if problems:
        raise ValueError("; ".join(problems))
    wanted = [*qi, *([sensitive] if sensitive else [])]
    frame = df.select(wanted)
    out = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    if out.height == 0:
        raise ValueError("the data has no records: risk measures are undefined")
    return out


def _observed_mask(quasi_ids: Sequence[str]) -> pl.Expr:
    return pl.sum_horizontal(
        pl.col(q).is_not_null().cast(pl.Int64) * (1 << j) for j, q in enumerate(quasi_ids)
    ).alias(_MASK)


def _wildcard_accumulate(
    targets: pl.DataFrame,
    source: pl.DataFrame,
    quasi_ids: Sequence[str],
    extra: Sequence[str],
    count: str,
) -> pl.DataFrame:
    """For each target cell, sum ``count`` over source rows compatible with it.

    Two rows are compatible when they agree on every QI both of them know. Loops run
    over pairs of missingness patterns (at most 2^Q, in practice a handful), never over
    classes: each pair is one group-by and one join.
    """
    targets = targets.with_columns(_observed_mask(quasi_ids))
    source = source.with_columns(_observed_mask(quasi_ids))
    target_masks = targets[_MASK].unique().sort().to_list()
    source_masks = source[_MASK].unique().sort().to_list()
    parts: list[pl.DataFrame] = []
    for b in source_masks:
        rows_b = source.filter(pl.col(_MASK) == b)
        for a in target_masks:
            common = [q for j, q in enumerate(quasi_ids) if (a >> j) & 1 and (b >> j) & 1]
            cells_a = targets.filter(pl.col(_MASK) == a).select(_ID, *common)
            by = [*common, *extra]
            summed = (
                rows_b.group_by(by).agg(pl.col(count).sum())
                if by
                else rows_b.select(pl.col(count).sum())
            )
            if common:
                joined = cells_a.join(summed, on=common, how="inner").drop(common)
            else:
                joined = cells_a.join(summed, how="cross")
            parts.append(joined.select(_ID, *extra, pl.col(count).cast(pl.Int64)))
    stacked = pl.concat(parts, how="vertical")
    return stacked.group_by(_ID, *extra).agg(pl.col(count).sum())


@dataclass(frozen=True)
class _Classes:
    cells: pl.DataFrame  # _ID, quasi-identifiers, _N, _F
    hist: pl.DataFrame | None  # _ID, _S, _C, _F
    values: pl.DataFrame | None  # _S, _C (whole table), _P, _I (order), sorted by _I
    records: int


def _classes(
    df: pl.DataFrame, quasi_ids: Sequence[str], sensitive: str | None, missing: str
) -> _Classes:
    qi = list(quasi_ids)
    n = df.height
    hist: pl.DataFrame | None = None
    values: pl.DataFrame | None = None
    if sensitive is not None:
        data = df.rename({sensitive: _S})
        values = (
            data.group_by(_S)
            .agg(pl.len().cast(pl.Int64).alias(_C))
            .sort(_S, nulls_last=True)
            .with_columns((pl.col(_C) / n).alias(_P))
            .with_row_index(_I)
        )
    else:
        data = df
    if missing == "category":
        aggs: list[pl.Expr] = [pl.len().cast(pl.Int64).alias(_N)]
        if sensitive is not None:
            aggs.append(pl.col(_S))
        grouped = data.group_by(qi).agg(aggs).with_row_index(_ID)
        cells = grouped.select(_ID, *qi, _N).with_columns(pl.col(_N).alias(_F))
        if sensitive is not None:
            hist = (
                grouped.select(_ID, pl.col(_N).alias(_F), _S)
                .explode(_S)
                .group_by(_ID, _S)
                .agg(pl.len().cast(pl.Int64).alias(_C), pl.col(_F).first())
            )
    else:
        cells = data.group_by(qi).agg(pl.len().cast(pl.Int64).alias(_N)).with_row_index(_ID)
        if sensitive is None:
            sizes = _wildcard_accumulate(cells, cells.drop(_ID), qi, [], _N).rename({_N: _F})
        else:
            long = data.group_by([*qi, _S]).agg(pl.len().cast(pl.Int64).alias(_C))
            hist = _wildcard_accumulate(cells, long, qi, [_S], _C)
            sizes = hist.group_by(_ID).agg(pl.col(_C).sum().alias(_F))
        cells = cells.join(sizes, on=_ID, how="left")
        if hist is not None:
            hist = hist.join(cells.select(_ID, _F), on=_ID, how="left")
    return _Classes(cells=cells, hist=hist, values=values, records=n)


def _shares(classes: _Classes) -> pl.DataFrame:
    """The histogram with q (share in the class) and p (share in the whole table)."""
    assert classes.hist is not None and classes.values is not None
    return classes.hist.join(
        classes.values.select(_S, _P, _I), on=_S, how="left", nulls_equal=True
    ).with_columns((pl.col(_C) / pl.col(_F)).alias("q"))


def _float(value: Any) -> float:
    """A polars scalar as a float (polars types ``max()`` as any scalar)."""
    return float(value)


def _int(value: Any) -> int:
    return int(value)


def _require(sensitive: str | None, measure: str) -> str:
    if sensitive is None:
        raise ValueError(f"{measure} needs a sensitive attribute")
    return sensitive


# --- the measures ------------------------------------------------------------------------------


def equivalence_classes(
    df: Frame, quasi_ids: Sequence[str], *, missing: MissingPolicy = "category"
) -> pl.DataFrame:
    """One row per combination of QI values: ``records`` with it and its ``class_size``."""
    frame = _frame(df, quasi_ids, None, missing)
    cells = _classes(frame, quasi_ids, None, missing).cells
    return cells.select(*quasi_ids, pl.col(_N).alias("records"), pl.col(_F).alias("class_size"))


def k_anonymity(df: Frame, quasi_ids: Sequence[str], *, missing: MissingPolicy = "category") -> int:
    """The size of the smallest equivalence class (the k the data is k-anonymous for)."""
    frame = _frame(df, quasi_ids, None, missing)
    if missing == "category":
        return _int(frame.group_by(list(quasi_ids)).len()["len"].min())
    return _int(_classes(frame, quasi_ids, None, missing).cells[_F].min())


def sample_uniques(
    df: Frame, quasi_ids: Sequence[str], *, missing: MissingPolicy = "category"
) -> int:
    """Records alone in their equivalence class."""
    frame = _frame(df, quasi_ids, None, missing)
    cells = _classes(frame, quasi_ids, None, missing).cells
    return int(cells.filter(pl.col(_F) == 1)[_N].sum())


def l_diversity(
    df: Frame, quasi_ids: Sequence[str], sensitive: str, *, missing: MissingPolicy = "category"
) -> int:
    """Distinct l-diversity: the fewest distinct sensitive values in any class."""
    frame = _frame(df, quasi_ids, _require(sensitive, "l-diversity"), missing)
    if missing == "category":
        counts = frame.group_by(list(quasi_ids)).agg(pl.col(sensitive).n_unique().alias("l"))
        return _int(counts["l"].min())
    hist = _classes(frame, quasi_ids, sensitive, missing).hist
    assert hist is not None
    return _int(hist.group_by(_ID).len()["len"].min())


_PER_CLASS = ("l", "entropy", "delta", "beta", "t_equal")


def _per_class(classes: _Classes, measures: Sequence[str] = _PER_CLASS) -> pl.DataFrame:
    q, p = pl.col("q"), pl.col(_P)
    expressions = {
        "l": pl.len().alias("l"),
        "entropy": (-(q * q.log())).sum().alias("entropy"),
        "delta": (q / p).log().abs().max().alias("delta"),
        "beta": ((q - p) / p).max().alias("beta"),
        # Values absent from the class contribute p each: 1 - (sum of p over those present).
        "t_equal": (0.5 * ((q - p).abs().sum() + 1.0 - p.sum())).alias("t_equal"),
    }
    return _shares(classes).group_by(_ID).agg(expressions[m] for m in measures)


def entropy_l_diversity(
    df: Frame, quasi_ids: Sequence[str], sensitive: str, *, missing: MissingPolicy = "category"
) -> float:
    """Entropy l-diversity: exp of the lowest entropy (natural log) of any class's sensitive values.

    Exact (pycanon truncates it to an integer, and a float rounding error can take an
    even spread over 2 values to 1).
    """
    frame = _frame(df, quasi_ids, _require(sensitive, "entropy l-diversity"), missing)
    per_class = _per_class(_classes(frame, quasi_ids, sensitive, missing), ["entropy"])
    return math.exp(_float(per_class["entropy"].min()))


def _recursive_c(classes: _Classes, l_value: int) -> int | None:
    assert classes.hist is not None
    if l_value < 2:
        return None
    ranked = classes.hist.with_columns(
        pl.col(_C).rank("ordinal", descending=True).over(_ID).alias("rank")
    )
    per_class = ranked.group_by(_ID).agg(
        pl.col(_C).max().alias("r1"),
        pl.col(_C).filter(pl.col("rank") >= l_value).sum().alias("tail"),
    )
    if per_class.filter(pl.col("tail") == 0).height:
        return None  # a class has fewer than l values: no c satisfies it
    ratio = per_class.select((pl.col("r1") // pl.col("tail") + 1).max()).item()
    return int(ratio)


def recursive_c_l_diversity(
    df: Frame,
    quasi_ids: Sequence[str],
    sensitive: str,
    l: int | None = None,  # noqa: E741 - the model's name
    *,
    missing: MissingPolicy = "category",
) -> tuple[int | None, int]:
    """Recursive (c,l)-diversity: the least integer c with r1 < c (r_l + ... + r_m) in all classes.

    Counts in each class are sorted in *descending* order (r1 is the most frequent
    value). ``l`` defaults to the data's distinct l. Returns ``(c, l)``; c is None when
    l < 2 or when some class has fewer than l distinct values (no c satisfies it).
    """
    frame = _frame(df, quasi_ids, _require(sensitive, "recursive (c,l)-diversity"), missing)
    classes = _classes(frame, quasi_ids, sensitive, missing)
    assert classes.hist is not None
    if l is None:
        l = _int(classes.hist.group_by(_ID).len()["len"].min())  # noqa: E741
    return _recursive_c(classes, l), l


def _ordered_distance_per_class(classes: _Classes) -> pl.DataFrame:
    """Earth mover's distance with the ordered distance, per class, without densifying.

    Each class's cumulative share Q is a step function of the value index; the table's
    cumulative share P rises monotonically, so the sum of |Q - P| over a step is two
    prefix sums either side of the point where P crosses Q (a binary search).
    """
    assert classes.values is not None
    p = classes.values[_P].to_numpy()
    m = p.size
    if m <= 1:
        return classes.cells.select(_ID, pl.lit(0.0).alias("t_ordered"))
    big_p = np.cumsum(p)
    prefix = np.concatenate(([0.0], np.cumsum(big_p)))  # prefix[i] = sum of P(0..i-1)
    last = m - 1  # P(m-1) = 1 = Q(m-1): the final index adds nothing
    shares = (
        _shares(classes)
        .sort(_ID, _I)
        .with_columns(
            pl.col("q").cum_sum().over(_ID).alias("Q"),
            pl.col(_I).shift(-1).over(_ID).fill_null(last).alias("next"),
            pl.col(_I).first().over(_ID).alias("first"),
        )
    )
    start = shares[_I].to_numpy().astype(np.int64)
    end = np.minimum(shares["next"].to_numpy().astype(np.int64), last)
    end = np.maximum(end, start)
    level = shares["Q"].to_numpy()
    cross = np.clip(np.searchsorted(big_p, level, side="left"), start, end)
    below = level * (cross - start) - (prefix[cross] - prefix[start])
    above = (prefix[end] - prefix[cross]) - level * (end - cross)
    first = shares["first"].to_numpy().astype(np.int64)
    head = np.where(start == first, prefix[first], 0.0)  # before the first value, Q = 0
    segment = pl.Series("segment", below + above + head)
    return (
        shares.select(_ID)
        .with_columns(segment)
        .group_by(_ID)
        .agg((pl.col("segment").sum() / (m - 1)).alias("t_ordered"))
    )


def _distance_kind(frame: pl.DataFrame, sensitive: str, distance: TDistance) -> str:
    if distance != "auto":
        return distance
    dtype = frame.schema[sensitive]
    ordered = dtype.is_numeric() or dtype.is_temporal() or isinstance(dtype, pl.Enum)
    return "ordered" if ordered else "equal"


def t_closeness(
    df: Frame,
    quasi_ids: Sequence[str],
    sensitive: str,
    *,
    distance: TDistance = "auto",
    missing: MissingPolicy = "category",
) -> float:
    """The largest earth mover's distance between a class's and the table's sensitive values.

    ``distance="equal"`` (categorical values): half the total variation. ``"ordered"``
    (ordinal or numeric values, in sorted order): the ordered distance, normalised by
    (m - 1). ``"auto"`` picks ordered for numeric, temporal and Enum columns.
    """
    frame = _frame(df, quasi_ids, _require(sensitive, "t-closeness"), missing)
    classes = _classes(frame, quasi_ids, sensitive, missing)
    if _distance_kind(frame, sensitive, distance) == "ordered":
        return _float(_ordered_distance_per_class(classes)["t_ordered"].max())
    return _float(_per_class(classes, ["t_equal"])["t_equal"].max())


def delta_disclosure(
    df: Frame, quasi_ids: Sequence[str], sensitive: str, *, missing: MissingPolicy = "category"
) -> float:
    """δ-disclosure: the largest |ln(q/p)| over classes and the sensitive values present in them.

    Values absent from a class are skipped (as pycanon and ARX do): taken literally the
    definition would make δ infinite whenever any class lacks any value.
    """
    frame = _frame(df, quasi_ids, _require(sensitive, "δ-disclosure"), missing)
    per_class = _per_class(_classes(frame, quasi_ids, sensitive, missing), ["delta"])
    return _float(per_class["delta"].max())


def beta_likeness(
    df: Frame, quasi_ids: Sequence[str], sensitive: str, *, missing: MissingPolicy = "category"
) -> float:
    """Basic β-likeness: the largest relative gain (q - p) / p of a sensitive value in a class."""
    frame = _frame(df, quasi_ids, _require(sensitive, "β-likeness"), missing)
    per_class = _per_class(_classes(frame, quasi_ids, sensitive, missing), ["beta"])
    return _float(per_class["beta"].max())


# --- record-level re-identification risk -------------------------------------------------------


@dataclass(frozen=True)
class RecordRisk:
    """Re-identification risk of individual records under one attacker model."""

    highest: float
    average: float
    records_at_risk: int
    share_at_risk: float


@dataclass(frozen=True)
class ReidentificationRisk:
    """Prosecutor, journalist and marketer risk (El Emam's attacker models)."""

    threshold: float
    prosecutor: RecordRisk
    journalist: RecordRisk
    journalist_basis: Literal["population", "sample"]
    marketer: float
    sample_uniques: int
    sample_unique_share: float


def _record_risk(risk: pl.Series, records: pl.Series, threshold: float, n: int) -> RecordRisk:
    at_risk = int(records.filter(risk > threshold).sum())
    return RecordRisk(
        highest=_float(risk.max()),
        average=float((risk * records).sum() / n),
        records_at_risk=at_risk,
        share_at_risk=at_risk / n,
    )


def _population_sizes(
    cells: pl.DataFrame, population: Frame, quasi_ids: Sequence[str], missing: str
) -> pl.Series:
    pop = _frame(population, quasi_ids, None, missing)
    qi = list(quasi_ids)
    pop_cells = pop.group_by(qi).agg(pl.len().cast(pl.Int64).alias(_N))
    if missing == "category":
        matched = cells.select(_ID, *qi).join(
            pop_cells, on=qi, how="left", nulls_equal=True, maintain_order="left"
        )
    else:
        counts = _wildcard_accumulate(cells.select(_ID, *qi), pop_cells, qi, [], _N)
        matched = cells.select(_ID).join(counts, on=_ID, how="left", maintain_order="left")
    # The population includes the sample; never let it claim fewer matches than the sample has.
    return matched.select(
        pl.max_horizontal(pl.col(_N).fill_null(0), cells[_F]).alias("F")
    ).to_series()


def _reidentification(
    classes: _Classes,
    quasi_ids: Sequence[str],
    missing: str,
    population: Frame | None,
    threshold: float,
) -> ReidentificationRisk:
    cells, n = classes.cells, classes.records
    records = cells[_N]
    prosecutor_risk = 1.0 / cells[_F]
    prosecutor = _record_risk(prosecutor_risk, records, threshold, n)
    basis: Literal["population", "sample"] = "sample"
    if population is None:
        journalist, journalist_risk = prosecutor, prosecutor_risk
    else:
        journalist_risk = 1.0 / _population_sizes(cells, population, quasi_ids, missing)
        journalist = _record_risk(journalist_risk, records, threshold, n)
        basis = "population"
    uniques = int(records.filter(cells[_F] == 1).sum())
    return ReidentificationRisk(
        threshold=threshold,
        prosecutor=prosecutor,
        journalist=journalist,
        journalist_basis=basis,
        marketer=float((journalist_risk * records).sum() / n),
        sample_uniques=uniques,
        sample_unique_share=uniques / n,
    )


def reidentification_risk(
    df: Frame,
    quasi_ids: Sequence[str],
    *,
    missing: MissingPolicy = "category",
    population: Frame | None = None,
    threshold: float = 0.2,
) -> ReidentificationRisk:
    """Record-level risk: a record's risk is 1 / (records it cannot be told apart from).

    Prosecutor: the attacker knows the person is in the data (class size in the sample).
    Journalist: the attacker matches against a population register; pass the register
    as ``population`` (it must include the sample) or the sample is used, an upper bound.
    Marketer: the expected share of records re-identified by matching everybody.
    ``threshold``: a record is at risk when its risk exceeds it (0.2: classes under 5).
    """
    frame = _frame(df, quasi_ids, None, missing)
    classes = _classes(frame, quasi_ids, None, missing)
    return _reidentification(classes, quasi_ids, missing, population, threshold)


# --- the report --------------------------------------------------------------------------------


def _riskiest(
    classes: _Classes, per_class: pl.DataFrame | None, quasi_ids: Sequence[str], top: int
) -> pl.DataFrame:
    table = classes.cells.select(_ID, *quasi_ids, pl.col(_F).alias("class_size"))
    order = ["class_size"]
    descending = [False]
    if per_class is not None:
        table = table.join(per_class, on=_ID, how="left")
        order.append("l")
        descending.append(False)
        if "t" in per_class.columns:
            order.append("t")
            descending.append(True)
    return table.sort(order, descending=descending, nulls_last=True).head(top).drop(_ID)


def riskiest_classes(
    df: Frame,
    quasi_ids: Sequence[str],
    sensitive: str | None = None,
    *,
    top: int = 10,
    missing: MissingPolicy = "category",
) -> pl.DataFrame:
    """The ``top`` smallest (then least diverse) classes: QI values and sizes, no other columns."""
    frame = _frame(df, quasi_ids, sensitive, missing)
    classes = _classes(frame, quasi_ids, sensitive, missing)
    per_class = None
    if sensitive is not None:
        per_class = _per_class(classes, ["l"])
    return _riskiest(classes, per_class, quasi_ids, top)


@dataclass(frozen=True)
class RiskReport:
    """Every measure for one table. ``riskiest`` holds QI values and sizes only."""

    records: int
    quasi_identifiers: tuple[str, ...]
    sensitive: str | None
    missing: str
    classes: int
    k: int
    average_class_size: float
    reidentification: ReidentificationRisk
    l_distinct: int | None = None
    l_entropy: float | None = None
    recursive_c: int | None = None
    recursive_l: int | None = None
    t: float | None = None
    t_distance: str | None = None
    delta: float | None = None
    beta: float | None = None
    riskiest: pl.DataFrame = field(default_factory=pl.DataFrame, repr=False)

    def to_dict(self, *, include_classes: bool = True) -> dict[str, Any]:
        """Plain JSON-ready values. ``include_classes=False`` leaves out the riskiest classes."""
        out: dict[str, Any] = {
            "records": self.records,
            "quasi_identifiers": list(self.quasi_identifiers),
            "sensitive": self.sensitive,
            "missing_values": self.missing,
            "equivalence_classes": self.classes,
            "k_anonymity": self.k,
            "average_class_size": self.average_class_size,
            "sample_uniques": self.reidentification.sample_uniques,
            "sample_unique_share": self.reidentification.sample_unique_share,
            "reidentification": asdict(self.reidentification),
        }
        if self.sensitive is not None:
            out.update(
                {
                    "l_diversity_distinct": self.l_distinct,
                    "l_diversity_entropy": self.l_entropy,
                    "recursive_c_l_diversity": {"c": self.recursive_c, "l": self.recursive_l},
                    "t_closeness": self.t,
                    "t_closeness_distance": self.t_distance,
                    "delta_disclosure": self.delta,
                    "beta_likeness": self.beta,
                }
            )
        if include_classes:
            out["riskiest_classes"] = self.riskiest.to_dicts()
        return out


def risk_report(
    df: Frame,
    quasi_ids: Sequence[str],
    sensitive: str | None = None,
    *,
    missing: MissingPolicy = "category",
    population: Frame | None = None,
    risk_threshold: float = 0.2,
    t_distance: TDistance = "auto",
    top: int = 10,
) -> RiskReport:
    """Every measure, computed from one pass over the data into classes and a histogram."""
    frame = _frame(df, quasi_ids, sensitive, missing)
    classes = _classes(frame, quasi_ids, sensitive, missing)
    cells = classes.cells
    n = classes.records
    reid = _reidentification(classes, quasi_ids, missing, population, risk_threshold)
    k = _int(cells[_F].min())
    extra: dict[str, Any] = {}
    per_class = None
    if sensitive is not None:
        per_class = _per_class(classes)
        kind = _distance_kind(frame, sensitive, t_distance)
        if kind == "ordered":
            per_class = per_class.join(_ordered_distance_per_class(classes), on=_ID)
            per_class = per_class.with_columns(pl.col("t_ordered").alias("t"))
        else:
            per_class = per_class.with_columns(pl.col("t_equal").alias("t"))
        l_distinct = _int(per_class["l"].min())
        extra = {
            "l_distinct": l_distinct,
            "l_entropy": math.exp(_float(per_class["entropy"].min())),
            "recursive_c": _recursive_c(classes, l_distinct),
            "recursive_l": l_distinct,
            "t": _float(per_class["t"].max()),
            "t_distance": kind,
            "delta": _float(per_class["delta"].max()),
            "beta": _float(per_class["beta"].max()),
        }
        per_class = per_class.select(_ID, "l", "t")
    # Records per distinct combination of QI values (the classes, under "category").
    average = n / cells.height
    return RiskReport(
        records=n,
        quasi_identifiers=tuple(quasi_ids),
        sensitive=sensitive,
        missing=missing,
        classes=cells.height,
        k=k,
        average_class_size=average,
        reidentification=reid,
        riskiest=_riskiest(classes, per_class, quasi_ids, top),
        **extra,
    )
