"""Globally optimal full-domain generalisation with record suppression.

The search space is the lattice of transformations: one hierarchy level per
quasi-identifier. A transformation *passes* when the records in classes that break
the privacy models (k-anonymity, l-diversity, t-closeness, combined) number no more
than the suppression limit; those records are then removed. Among passing
transformations we return one with the least information loss (ARX's Loss by
default, see :mod:`anonymise.loss`), so the answer is optimal, not greedy.

How it stays fast (the ideas of ARX's Flash and OLA, in numpy):

* **Encode once.** Each QI becomes integer leaf codes; each hierarchy level is a
  small lookup array. The data collapses to its distinct QI combinations with counts
  (30,162 Adult rows → 19,502 combinations; Adult ×33 has the same combinations with
  33 times the counts), so evaluating a transformation costs a few gathers, a packed
  integer key and a ``bincount`` over the combinations, never over the rows.
* **Predictive tagging.** k-anonymity and distinct l-diversity with suppression are
  monotone: generalising merges classes, and a merged class is at least as large and
  as diverse as its parts, so the records to suppress can only shrink. When a
  transformation fails them, every specialisation (every node below it) fails too and
  is tagged without being evaluated. Nodes are visited from the top of the lattice
  down so that failures tag as much as possible.
* **Lower-bound pruning.** A node's loss is at least its loss with nothing suppressed
  (a suppressed cell loses 1, the most a cell can lose), and that bound grows along
  every generalisation and is known for the whole lattice up front from per-QI sums.
  A greedy descent from the top finds a good solution first; afterwards only nodes
  whose bound beats the best loss so far are evaluated.

Entropy and recursive l-diversity and t-closeness are monotone without suppression
but not with it (merging a good class with a bad one can make the merged class bad,
adding records to suppress). For them we never tag on their failures, only on the
monotone models' failures, so the result stays optimal; the search simply does more
evaluations. t-closeness measures each class against the sensitive distribution of
the whole input, as ARX does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl

from anonymise.hierarchies import Hierarchy
from anonymise.loss import InformationLoss, cell_loss

__all__ = [
    "AnonymisationResult",
    "LatticeTooLargeError",
    "NoSolutionDiagnosis",
    "NoSolutionError",
    "QIDriver",
    "anonymise",
]

Metric = Literal["loss", "lm"]
LVariant = Literal["distinct", "entropy", "recursive"]

MAX_LATTICE_NODES = 5_000_000
_DENSE_LIMIT = 1 << 22
_EPS = 1e-12


class NoSolutionError(ValueError):
    """No transformation meets the privacy models within the suppression limit; see ``args[1]``."""


class LatticeTooLargeError(ValueError):
    """The generalisation lattice is too large to search: fewer QIs or hierarchy levels needed."""


@dataclass(frozen=True)
class QIDriver:
    """How one quasi-identifier contributes when no transformation passes."""

    quasi_id: str
    most_general_level: int
    values_at_most_general_level: int
    records_to_suppress_without_it: int


@dataclass(frozen=True)
class NoSolutionDiagnosis:
    """Why the search failed: suppression needed at the most general node, and what drives it."""

    records: int
    suppression_limit_records: int
    records_to_suppress: int
    failing: dict[str, int]
    drivers: tuple[QIDriver, ...]

    def explain(self) -> str:
        parts = [
            f"even the most general transformation leaves {self.records_to_suppress} of "
            f"{self.records} records to suppress (limit {self.suppression_limit_records})"
        ]
        broken = [f"{model}: {n} records" for model, n in self.failing.items() if n]
        if broken:
            parts.append("records in classes breaking " + ", ".join(broken))
        splitting = [d for d in self.drivers if d.values_at_most_general_level > 1]
        if splitting:
            ranked = sorted(splitting, key=lambda d: d.records_to_suppress_without_it)
            parts.append(
                "QIs still splitting records at their most general level (records to "
                "suppress without each): "
                + ", ".join(
                    f"{d.quasi_id} ({d.values_at_most_general_level} values; "
                    f"{d.records_to_suppress_without_it})"
                    for d in ranked
                )
            )
        elif self.failing.get("k-anonymity"):
            parts.append("every QI is fully generalised: there are too few records for this k")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AnonymisationResult:
    """The anonymised table and how it was made."""

    data: pl.DataFrame = field(repr=False)
    quasi_ids: tuple[str, ...]
    transformation: dict[str, int]
    level_names: dict[str, str]
    suppressed: int
    loss: InformationLoss
    nodes_evaluated: int
    lattice_size: int
    elapsed_seconds: float
    settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "quasi_identifiers": list(self.quasi_ids),
            "transformation": self.transformation,
            "transformation_vector": [self.transformation[q] for q in self.quasi_ids],
            "level_names": self.level_names,
            "records_in": self.loss.records,
            "records_out": self.data.height,
            "suppressed": self.suppressed,
            "information_loss": self.loss.to_dict(),
            "nodes_evaluated": self.nodes_evaluated,
            "lattice_size": self.lattice_size,
            "elapsed_seconds": self.elapsed_seconds,
        }


@dataclass(frozen=True)
class _Models:
    k: int
    l: int | None  # noqa: E741 - the model's name
    l_variant: LVariant
    c: float | None
    t: float | None
    t_ordered: bool
    limit: int


@dataclass
class _Evaluation:
    passes: bool
    monotone_fail: bool
    suppressed: int
    per_qi: np.ndarray | None = None
    objective: float = math.inf
    bad_combo: np.ndarray | None = None
    class_sizes: np.ndarray | None = None
    good_class: np.ndarray | None = None
    failing: dict[str, int] = field(default_factory=dict)


class _Engine:
    """The data reduced to distinct QI combinations, and a fast evaluator of transformations."""

    def __init__(
        self,
        df: pl.DataFrame,
        quasi_ids: Sequence[str],
        hierarchies: Mapping[str, Hierarchy],
        sensitive: str | None,
        models: _Models,
        metric: Metric,
    ) -> None:
        self.qi = list(quasi_ids)
        self.models = models
        self.metric = metric
        self.n = df.height
        self.row_codes: list[np.ndarray] = []
        self.lookup: list[list[np.ndarray]] = []
        self.cards: list[list[int]] = []
        self.leaf_loss: list[list[np.ndarray]] = []
        leaf_columns: list[np.ndarray] = []
        radices: list[int] = []
        for q in self.qi:
            h = hierarchies[q]
            codes = h.leaf_codes(df[q])
            self.row_codes.append(codes.astype(np.int32))
            leaves = h.table.height
            has_null = bool((codes < 0).any())
            engine_codes = np.where(codes < 0, leaves, codes)
            lookups, cards, losses = [], [], []
            for level in range(h.height + 1):
                ancestors = h.level_codes(level)
                card = h.cardinality(level)
                loss = cell_loss(h, level)
                if has_null:
                    # A missing value is its own value until the level where all values meet.
                    ancestors = np.append(ancestors, 0 if card == 1 else card)
                    loss = np.append(loss, 1.0 if card == 1 else 0.0)
                    card = card if card == 1 else card + 1
                lookups.append(ancestors.astype(np.int64))
                cards.append(card)
                losses.append(loss)
            self.lookup.append(lookups)
            self.cards.append(cards)
            self.leaf_loss.append(losses)
            leaf_columns.append(engine_codes)
            radices.append(leaves + int(has_null))
        key, _ = _pack(leaf_columns, radices)
        uniques, first, self.row_combo, counts = np.unique(
            key, return_index=True, return_inverse=True, return_counts=True
        )
        self.counts = counts.astype(np.float64)
        self.m = uniques.size
        self.combos = [col[first] for col in leaf_columns]
        # Per QI and level: the generalised code of each combination (gathered once).
        budget = self.m * sum(len(x) for x in self.lookup)
        self._gen_cache: dict[tuple[int, int], np.ndarray] | None = (
            {} if budget <= 40_000_000 else None
        )
        # Per QI and level: the total loss if nothing is suppressed (the lower bound's parts).
        self.total_loss = [
            np.array(
                [float((loss[self.combos[j]] * self.counts).sum()) for loss in self.leaf_loss[j]]
            )
            for j in range(len(self.qi))
        ]
        self.sensitive = sensitive
        if sensitive is not None:
            self._encode_sensitive(df[sensitive])

    def _encode_sensitive(self, column: pl.Series) -> None:
        # Dense ranks follow the column's order (Enum order for Enums); nulls come last.
        ranks = column.rank("dense").cast(pl.Int64) - 1
        self.n_values = column.drop_nulls().n_unique() + int(column.null_count() > 0)
        codes = ranks.fill_null(self.n_values - 1).to_numpy().astype(np.int64)
        self.p = np.bincount(codes, minlength=self.n_values) / self.n
        self.big_p = np.cumsum(self.p)
        self.prefix_p = np.concatenate(([0.0], np.cumsum(self.big_p)))
        pair_key = self.row_combo.astype(np.int64) * self.n_values + codes
        pairs, pair_counts = np.unique(pair_key, return_counts=True)
        self.pair_combo = pairs // self.n_values
        self.pair_value = pairs % self.n_values
        self.pair_count = pair_counts.astype(np.float64)

    def gen(self, j: int, level: int) -> np.ndarray:
        if self._gen_cache is None:
            return self.lookup[j][level][self.combos[j]]
        cached = self._gen_cache.get((j, level))
        if cached is None:
            cached = self.lookup[j][level][self.combos[j]].astype(np.int32)
            self._gen_cache[(j, level)] = cached
        return cached

    def lower_bound_per_qi(self) -> list[np.ndarray]:
        return [t / self.n for t in self.total_loss]

    def objective(self, per_qi: np.ndarray) -> float:
        if self.metric == "lm":
            return float(per_qi.mean())
        return float(np.expm1(np.log1p(per_qi).mean()))

    def classes(self, levels: Sequence[int], dropped: int | None = None) -> tuple[np.ndarray, int]:
        """Dense class id of each combination, and the number of classes."""
        columns, radices = [], []
        for j, level in enumerate(levels):
            if j == dropped:
                continue
            columns.append(self.gen(j, level))
            radices.append(self.cards[j][level])
        if not columns:
            return np.zeros(self.m, dtype=np.int64), 1
        key, space = _pack(columns, radices)
        if space <= max(4 * self.m, 1 << 16):
            present = np.zeros(space, dtype=np.int64)
            present[key] = 1
            ids = np.cumsum(present) - 1
            return ids[key], int(ids[-1] + 1)
        uniques, inverse = np.unique(key, return_inverse=True)
        return inverse, uniques.size

    def evaluate(
        self, levels: Sequence[int], *, keep: bool = False, dropped: int | None = None
    ) -> _Evaluation:
        models = self.models
        cls, n_classes = self.classes(levels, dropped)
        sizes = np.bincount(cls, weights=self.counts, minlength=n_classes)
        bad = sizes < models.k
        failing = {"k-anonymity": int(sizes[bad].sum())}
        if failing["k-anonymity"] > models.limit and not keep:
            return _Evaluation(False, True, failing["k-anonymity"], failing=failing)
        if self.sensitive is not None:
            sensitive_bad, distinct_bad = self._sensitive_violations(cls, n_classes, sizes, failing)
            if distinct_bad is not None:
                # k and distinct-l together are monotone; every l variant implies distinct-l.
                monotone = int(sizes[bad | distinct_bad].sum())
                if monotone > models.limit and not keep:
                    return _Evaluation(False, True, monotone, failing=failing)
            bad = bad | sensitive_bad
        suppressed = int(sizes[bad].sum())
        if suppressed > models.limit and not keep:
            return _Evaluation(False, False, suppressed, failing=failing)
        bad_combo = bad[cls]
        per_qi = np.empty(len(self.qi))
        suppressed_combos = np.flatnonzero(bad_combo) if suppressed else None
        for j, level in enumerate(levels):
            lost = 0.0
            if suppressed_combos is not None:
                leaf_loss = self.leaf_loss[j][level][self.combos[j][suppressed_combos]]
                lost = float((leaf_loss * self.counts[suppressed_combos]).sum())
            per_qi[j] = (self.total_loss[j][level] - lost + suppressed) / self.n
        result = _Evaluation(
            passes=suppressed <= models.limit,
            monotone_fail=False,
            suppressed=suppressed,
            per_qi=per_qi,
            objective=self.objective(per_qi),
            failing=failing,
        )
        if keep:
            result.bad_combo = bad_combo
            result.class_sizes = sizes
            result.good_class = ~bad
        return result

    def _sensitive_violations(
        self, cls: np.ndarray, n_classes: int, sizes: np.ndarray, failing: dict[str, int]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Classes breaking l-diversity or t-closeness, and those breaking distinct l."""
        models = self.models
        width = self.n_values
        key = cls[self.pair_combo] * width + self.pair_value
        if n_classes * width <= _DENSE_LIMIT:
            dense = np.bincount(key, weights=self.pair_count, minlength=n_classes * width)
            cells = np.flatnonzero(dense)
            counts = dense[cells]
        else:
            cells, inverse = np.unique(key, return_inverse=True)
            counts = np.bincount(inverse, weights=self.pair_count)
        # (class, value) cells come out sorted by class, then value.
        owner = cells // width
        value = cells % width
        bad = np.zeros(n_classes, dtype=bool)
        distinct_bad = None
        if models.l is not None:
            distinct_bad = np.bincount(owner, minlength=n_classes) < models.l
            if models.l_variant == "distinct":
                l_bad = distinct_bad
            elif models.l_variant == "entropy":
                q = counts / sizes[owner]
                entropy = np.bincount(owner, weights=-q * np.log(q), minlength=n_classes)
                l_bad = distinct_bad | (entropy < math.log(models.l) - _EPS)
            else:
                l_bad = distinct_bad | self._recursive_bad(owner, counts, n_classes)
            failing["l-diversity"] = int(sizes[l_bad].sum())
            bad |= l_bad
        if models.t is not None:
            q = counts / sizes[owner]
            if models.t_ordered:
                distance = self._ordered_distance(owner, value, q, n_classes)
            else:
                p = self.p[value]
                distance = 0.5 * (
                    np.bincount(owner, weights=np.abs(q - p), minlength=n_classes)
                    + 1.0
                    - np.bincount(owner, weights=p, minlength=n_classes)
                )
            t_bad = distance > models.t + _EPS
            failing["t-closeness"] = int(sizes[t_bad].sum())
            bad |= t_bad
        return bad, distinct_bad

    def _recursive_bad(self, owner: np.ndarray, counts: np.ndarray, n_classes: int) -> np.ndarray:
        models = self.models
        assert models.l is not None and models.c is not None
        order = np.lexsort((-counts, owner))
        owner_sorted, counts_sorted = owner[order], counts[order]
        starts = np.searchsorted(owner_sorted, np.arange(n_classes))
        rank = np.arange(owner_sorted.size) - starts[owner_sorted]
        r1 = np.zeros(n_classes)
        r1[owner_sorted[rank == 0]] = counts_sorted[rank == 0]
        tail = np.bincount(
            owner_sorted,
            weights=np.where(rank >= models.l - 1, counts_sorted, 0.0),
            minlength=n_classes,
        )
        return ~(r1 < models.c * tail)

    def _ordered_distance(
        self, owner: np.ndarray, value: np.ndarray, q: np.ndarray, n_classes: int
    ) -> np.ndarray:
        # Pairs arrive sorted by owner, then value; see risk._ordered_distance_per_class.
        m = self.n_values
        if m <= 1:
            return np.zeros(n_classes)
        last = m - 1
        starts = np.searchsorted(owner, np.arange(n_classes))
        class_cum = np.cumsum(q)
        offset = np.concatenate(([0.0], class_cum))[starts[owner]]
        level = class_cum - offset
        following = np.append(value[1:], last)
        is_last = np.append(owner[1:] != owner[:-1], True)
        end = np.minimum(np.where(is_last, last, following), last)
        start = value
        end = np.maximum(end, start)
        cross = np.clip(np.searchsorted(self.big_p, level, side="left"), start, end)
        prefix = self.prefix_p
        below = level * (cross - start) - (prefix[cross] - prefix[start])
        above = (prefix[end] - prefix[cross]) - level * (end - cross)
        is_first = np.insert(owner[1:] != owner[:-1], 0, True)
        head = np.where(is_first, prefix[start], 0.0)
        return np.bincount(owner, weights=below + above + head, minlength=n_classes) / (m - 1)


def _pack(columns: Sequence[np.ndarray], radices: Sequence[int]) -> tuple[np.ndarray, int]:
    """Mixed-radix pack of integer columns into one int64 key, compacting before overflow."""
    key = np.asarray(columns[0], dtype=np.int64)
    space = int(radices[0])
    for column, radix in zip(columns[1:], radices[1:], strict=True):
        if space * int(radix) >= 1 << 62:
            uniques, key = np.unique(key, return_inverse=True)
            space = uniques.size
        key = key * int(radix) + column
        space *= int(radix)
    return key, space


def _validate(
    df: pl.DataFrame,
    quasi_ids: Sequence[str],
    hierarchies: Mapping[str, Hierarchy],
    k: int,
    l: int | None,  # noqa: E741
    l_variant: str,
    c: float | None,
    sensitive: str | None,
    t: float | None,
    t_distance: str,
    suppression_limit: float,
    metric: str,
) -> None:
    problems: list[str] = []
    if not quasi_ids:
        problems.append("at least one quasi-identifier is needed")
    if len(set(quasi_ids)) != len(quasi_ids):
        problems.append("quasi-identifiers are listed more than once")
    absent = [q for q in quasi_ids if q not in df.columns]
    if absent:
        problems.append(f"quasi-identifier column(s) not in the data: {absent}")
    unmapped = [q for q in quasi_ids if q not in hierarchies]
    if unmapped:
        problems.append(f"no hierarchy for quasi-identifier(s) {unmapped}")
    if not isinstance(k, int) or k < 1:
        problems.append(f"k must be a positive integer, not {k!r}")
    if l is not None and (not isinstance(l, int) or l < 1):
        problems.append(f"l must be a positive integer, not {l!r}")
    if l_variant not in ("distinct", "entropy", "recursive"):
        problems.append(f"l_variant must be distinct, entropy or recursive, not {l_variant!r}")
    if l_variant == "recursive" and (c is None or c <= 0):
        problems.append("recursive (c,l)-diversity needs a positive c")
    if t is not None and not 0 <= t <= 1:
        problems.append(f"t must be between 0 and 1, not {t!r}")
    if t_distance not in ("auto", "equal", "ordered"):
        problems.append(f"t_distance must be auto, equal or ordered, not {t_distance!r}")
    if (l is not None or t is not None) and sensitive is None:
        problems.append("l-diversity and t-closeness need a sensitive attribute")
    if sensitive is not None:
        if sensitive not in df.columns:
            problems.append(f"sensitive column {sensitive!r} not in the data")
        if sensitive in quasi_ids:
            problems.append(f"{sensitive!r} cannot be both a quasi-identifier and sensitive")
    if not 0 <= suppression_limit < 1:
        problems.append(f"suppression_limit must be in [0, 1), not {suppression_limit!r}")
    if metric not in ("loss", "lm"):
        problems.append(f"metric must be 'loss' or 'lm', not {metric!r}")
    if df.height == 0:
        problems.append("the data has no records")
    if problems:
        raise ValueError("; ".join(problems))


def _diagnose(engine: _Engine, top: Sequence[int], models: _Models) -> NoSolutionDiagnosis:
    at_top = engine.evaluate(top, keep=True)
    drivers = []
    for j, q in enumerate(engine.qi):
        without = engine.evaluate(top, keep=True, dropped=j)
        drivers.append(
            QIDriver(
                quasi_id=q,
                most_general_level=int(top[j]),
                values_at_most_general_level=int(np.unique(engine.gen(j, top[j])).size),
                records_to_suppress_without_it=without.suppressed,
            )
        )
    return NoSolutionDiagnosis(
        records=engine.n,
        suppression_limit_records=models.limit,
        records_to_suppress=at_top.suppressed,
        failing=at_top.failing,
        drivers=tuple(drivers),
    )


def anonymise(
    df: pl.DataFrame,
    quasi_ids: Sequence[str],
    hierarchies: Mapping[str, Hierarchy],
    *,
    k: int,
    l: int | None = None,  # noqa: E741 - the model's name
    sensitive: str | None = None,
    t: float | None = None,
    suppression_limit: float = 0.02,
    l_variant: LVariant = "distinct",
    c: float | None = None,
    t_distance: Literal["auto", "equal", "ordered"] = "auto",
    metric: Metric = "loss",
    max_lattice_nodes: int = MAX_LATTICE_NODES,
) -> AnonymisationResult:
    """The least-loss full-domain generalisation meeting k (and l, t) within the suppression limit.

    Records in classes that break a model are removed (counted in ``suppressed``); no more
    than ``floor(suppression_limit * records)`` are. QIs in the output are text labels of
    the chosen level; other columns pass through unchanged. Raises :class:`NoSolutionError`
    (with a :class:`NoSolutionDiagnosis` as ``args[1]``) when nothing passes.
    """
    started = time.perf_counter()
    qi = list(quasi_ids)
    _validate(
        df, qi, hierarchies, k, l, l_variant, c, sensitive, t, t_distance, suppression_limit, metric
    )
    shape = tuple(hierarchies[q].height + 1 for q in qi)
    size = math.prod(shape)
    if size > max_lattice_nodes:
        raise LatticeTooLargeError(
            f"the lattice has {size:,} transformations (levels per QI: "
            f"{dict(zip(qi, shape, strict=True))}); the limit is {max_lattice_nodes:,}"
        )
    t_ordered = False
    if sensitive is not None and t is not None:
        dtype = df.schema[sensitive]
        auto_ordered = dtype.is_numeric() or dtype.is_temporal() or isinstance(dtype, pl.Enum)
        t_ordered = t_distance == "ordered" or (t_distance == "auto" and auto_ordered)
    models = _Models(
        k=k,
        l=l,
        l_variant=l_variant,
        c=c,
        t=t,
        t_ordered=t_ordered,
        limit=int(math.floor(suppression_limit * df.height + _EPS)),
    )
    uses_sensitive = sensitive is not None and (l is not None or t is not None)
    engine = _Engine(df, qi, hierarchies, sensitive if uses_sensitive else None, models, metric)
    best_index, best_eval, evaluated = _search(engine, shape)
    if best_index is None or best_eval is None:
        diagnosis = _diagnose(engine, [s - 1 for s in shape], models)
        raise NoSolutionError(diagnosis.explain(), diagnosis)
    levels = [int(x) for x in np.unravel_index(best_index, shape)]
    final = engine.evaluate(levels, keep=True)
    data = _build_output(df, engine, hierarchies, levels, final)
    assert (
        final.per_qi is not None and final.class_sizes is not None and final.good_class is not None
    )
    kept_sizes = final.class_sizes[final.good_class]
    kept_sizes = kept_sizes[kept_sizes > 0]
    retained = engine.n - final.suppressed
    average = retained / kept_sizes.size if kept_sizes.size else 0.0
    per_qi = {q: float(v) for q, v in zip(qi, final.per_qi, strict=True)}
    values = list(per_qi.values())
    loss = InformationLoss(
        loss=float(np.expm1(np.log1p(final.per_qi).mean())),
        loss_metric=float(np.mean(values)),
        per_qi=per_qi,
        discernibility=float((kept_sizes**2).sum() + final.suppressed * engine.n),
        average_class_size=average,
        normalised_average_class_size=average / k,
        classes=int(kept_sizes.size),
        suppressed=final.suppressed,
        records=engine.n,
    )
    settings = {
        "k": k,
        "l": l,
        "l_variant": l_variant if l is not None else None,
        "c": c,
        "sensitive": sensitive,
        "t": t,
        "t_distance": ("ordered" if t_ordered else "equal") if t is not None else None,
        "suppression_limit": suppression_limit,
        "suppression_limit_records": models.limit,
        "metric": metric,
    }
    return AnonymisationResult(
        data=data,
        quasi_ids=tuple(qi),
        transformation=dict(zip(qi, levels, strict=True)),
        level_names={q: hierarchies[q].levels[lv] for q, lv in zip(qi, levels, strict=True)},
        suppressed=final.suppressed,
        loss=loss,
        nodes_evaluated=evaluated,
        lattice_size=size,
        elapsed_seconds=time.perf_counter() - started,
        settings=settings,
    )


def _search(engine: _Engine, shape: tuple[int, ...]) -> tuple[int | None, _Evaluation | None, int]:
    """Top-down greedy descent for an incumbent, then a pruned sweep; returns the optimum."""
    q = len(shape)
    size = math.prod(shape)
    strides = [math.prod(shape[j + 1 :]) for j in range(q)]
    nodes = np.indices(shape, dtype=np.int16).reshape(q, -1).T
    bound_per_qi = engine.lower_bound_per_qi()
    if engine.metric == "lm":
        bound = sum(bound_per_qi[j][nodes[:, j]] for j in range(q)) / q
    else:
        logs = sum(np.log1p(bound_per_qi[j])[nodes[:, j]] for j in range(q))
        bound = np.expm1(logs / q)
    failed = np.zeros(shape, dtype=bool)
    seen = np.zeros(size, dtype=bool)
    state: dict[str, Any] = {"best": math.inf, "index": None, "eval": None, "count": 0}

    def visit(index: int) -> _Evaluation | None:
        if seen[index] or failed.flat[index]:
            return None
        seen[index] = True
        levels = nodes[index]
        result = engine.evaluate(levels)
        state["count"] += 1
        if result.monotone_fail:
            failed[tuple(slice(0, int(x) + 1) for x in levels)] = True
        elif result.passes and result.objective < state["best"] - _EPS:
            state.update(best=result.objective, index=index, eval=result)
        return result

    top = size - 1
    top_result = visit(top)
    if top_result is not None and top_result.monotone_fail:
        return None, None, state["count"]
    current = top
    while True:
        options = []
        for j in range(q):
            if nodes[current][j] > 0:
                child = current - strides[j]
                result = visit(child)
                if result is not None and result.passes:
                    options.append((result.objective, child))
        if not options:
            break
        current = min(options)[1]
    order = np.lexsort((bound, -nodes.sum(axis=1, dtype=np.int32)))
    for index in order[bound[order] < state["best"] - _EPS]:
        if bound[index] >= state["best"] - _EPS:
            continue
        visit(int(index))
    return state["index"], state["eval"], state["count"]


def _build_output(
    df: pl.DataFrame,
    engine: _Engine,
    hierarchies: Mapping[str, Hierarchy],
    levels: Sequence[int],
    final: _Evaluation,
) -> pl.DataFrame:
    assert final.bad_combo is not None
    keep_rows = ~final.bad_combo[engine.row_combo]
    kept = df.filter(pl.Series(keep_rows))
    replaced = [
        hierarchies[q].labels_for_codes(engine.row_codes[j][keep_rows], levels[j]).alias(q)
        for j, q in enumerate(engine.qi)
    ]
    return kept.with_columns(replaced)
