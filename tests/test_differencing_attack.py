"""A differencing attack on everything the table builder will publish.

The attack is generic: `run_attack` takes the query space (the dimensions, their
values and how many a table may fix) and a function that answers a query with a
`ProtectedTable`, so it can be pointed at the real measures:

    report = run_attack(
        lambda by, where, margins: tabulate(store, "referrals", by, where,
                                            policy=policy, margins=margins),
        levels=levels_from(store, "referrals"), max_dims=policy.max_table_dims,
        max_noise=policy.max_noise, threshold=policy.threshold,
        truth=true_counts(store.read_cube(release_id, "referrals")),
    )

What the attacker knows: every published answer to every query (each breakdown
combination, every combination of single-value filters, margins, repeats), the
published method parameters (maximum noise D and threshold T), that counts are
non-negative integers and that tables are additive in the TRUE counts. From those:

- a published number v means the true count is in [v-D, v+D] (and >= 1);
- "c" means 1 <= true count <= T-1+D;  "0" means exactly 0.

A recovery is a cell whose true count is below T (and not a published zero) that
this knowledge pins to exactly one value. Three attackers:

1. interval propagation over every additive relation (total = sum of its parts,
   along every dimension, chained to a fixpoint): "totals minus parts" and
   overlapping filters, combined;
2. proof that nothing is pinned: for every small cell, an integer table of records
   different in that cell and consistent with everything published (found by
   moving one record, or else by an integer program); this is exactly the
   definition of "not recovered", against any attacker with this knowledge;
3. averaging: the mean of every differencing route's estimate, rounded, as an
   honest figure of how close an attacker gets without certainty.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import pytest
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from anonymise.cellkey import PerturbationTable, build_cube, record_keys
from anonymise.policy import default_policy
from anonymise.release import CubeSet, ProtectedTable, tabulate
from registry.measures import MeasureMeta

Cell = frozenset[tuple[str, str]]  # the dimension values that define a cell
Ask = Callable[[tuple[str, ...], Mapping[str, str | list[str]], bool], ProtectedTable]


# --- the query space and what it publishes ---------------------------------------------------


def query_space(
    levels: Mapping[str, Sequence[str]], max_dims: int
) -> list[tuple[tuple[str, ...], dict[str, str]]]:
    """Every table a user can ask for: each breakdown combination together with each
    combination of single-value filters on other dimensions, at most max_dims in all."""
    dims = sorted(levels)
    queries = []
    for k in range(max_dims + 1):
        for fixed in itertools.combinations(dims, k):
            for n_by in range(k + 1):
                for by in itertools.combinations(fixed, n_by):
                    filters = [d for d in fixed if d not in by]
                    for values in itertools.product(*(levels[d] for d in filters)):
                        queries.append((by, dict(zip(filters, values, strict=True))))
    return queries


def _cells_of(table: ProtectedTable, total_label: str) -> dict[Cell, str]:
    # A filter on a breakdown only selects rows; it is not part of the cells.
    where = {(k, v[0]) for k, v in table.where if len(v) == 1 and k not in table.by}
    cells = {}
    for row in table.data.iter_rows(named=True):
        cell = frozenset(where | {(d, row[d]) for d in table.by if row[d] != total_label})
        cells[cell] = row["count"]
    return cells


def publish(
    ask: Ask,
    queries: Sequence[tuple[tuple[str, ...], dict[str, str]]],
    *,
    total_label: str = "Total",
    repeat_every: int = 7,
) -> tuple[dict[Cell, str], list[str]]:
    """Ask every query (with margins, and some twice) and collect every published cell.
    Returns the answers and every inconsistency (same cell, different answer)."""
    published: dict[Cell, str] = {}
    conflicts: list[str] = []

    def record(table: ProtectedTable) -> None:
        for cell, value in _cells_of(table, total_label).items():
            if published.setdefault(cell, value) != value:
                conflicts.append(f"{sorted(cell)}: {published[cell]} and {value}")

    for i, (by, where) in enumerate(queries):
        table = ask(by, where, True)
        record(table)
        if i % repeat_every == 0:
            record(ask(by, where, True))  # the same query again
            if by:  # the same table with only some rows selected (a filter on a breakdown)
                shown = table.data[by[0]].unique().to_list()[:2]
                record(ask(by, {**where, by[0]: [v for v in shown if v != total_label]}, True))
    return published, conflicts


def _bounds(value: str, *, max_noise: int, threshold: int, symbol: str) -> tuple[int, int]:
    if value == symbol:
        return 1, threshold - 1 + max_noise
    v = int(value)
    return (0, 0) if v == 0 else (max(1, v - max_noise), v + max_noise)


# --- attacker 1: interval propagation ---------------------------------------------------------


def interval_attack(
    published: Mapping[Cell, str],
    levels: Mapping[str, Sequence[str]],
    *,
    max_noise: int,
    threshold: int,
    symbol: str = "c",
) -> dict[Cell, tuple[int, int]]:
    """Tightest intervals for every published cell implied by all additive relations
    (parent = sum of its children along any dimension), propagated to a fixpoint.
    A child the tables never show is a known zero (a combination that cannot occur)."""
    lo: dict[Cell, int] = {}
    hi: dict[Cell, int] = {}
    for cell, value in published.items():
        lo[cell], hi[cell] = _bounds(value, max_noise=max_noise, threshold=threshold, symbol=symbol)
    relations: list[tuple[Cell, list[Cell]]] = []
    for cell in published:
        fixed = {d for d, _ in cell}
        for d in levels:
            if d in fixed:
                continue
            children = [cell | {(d, v)} for v in levels[d]]
            if any(c in published for c in children):
                relations.append((cell, [c for c in children if c in published]))
    changed = True
    while changed:
        changed = False
        for parent, children in relations:
            sum_lo = sum(lo[c] for c in children)
            sum_hi = sum(hi[c] for c in children)
            new_lo, new_hi = max(lo[parent], sum_lo), min(hi[parent], sum_hi)
            if (new_lo, new_hi) != (lo[parent], hi[parent]):
                lo[parent], hi[parent], changed = new_lo, new_hi, True
            for c in children:
                c_lo = max(lo[c], lo[parent] - (sum_hi - hi[c]))
                c_hi = min(hi[c], hi[parent] - (sum_lo - lo[c]))
                if (c_lo, c_hi) != (lo[c], hi[c]):
                    sum_lo += c_lo - lo[c]
                    sum_hi += c_hi - hi[c]
                    lo[c], hi[c], changed = c_lo, c_hi, True
    return {c: (lo[c], hi[c]) for c in published}


# --- attacker 2: every integer table consistent with the publication --------------------------


@dataclass
class _System:
    finest: list[dict[str, str]]  # the unknowns: counts of the finest cells
    cells: list[Cell]  # one constraint row per published cell
    matrix: np.ndarray  # cells x finest, 1 where the finest cell lies in the cell
    lo: np.ndarray
    hi: np.ndarray


def _system(
    published: Mapping[Cell, str],
    levels: Mapping[str, Sequence[str]],
    *,
    max_noise: int,
    threshold: int,
    symbol: str,
) -> _System:
    dims = sorted(levels)
    zeros = [c for c, v in published.items() if v == "0"]
    finest = []
    for values in itertools.product(*(levels[d] for d in dims)):
        combo = frozenset(zip(dims, values, strict=True))
        if not any(z <= combo for z in zeros):  # lies in a published zero: known empty
            finest.append(dict(zip(dims, values, strict=True)))
    codes = {d: np.array([f[d] for f in finest]) for d in dims}
    cells = list(published)
    matrix = np.ones((len(cells), len(finest)), dtype=np.int8)
    for i, cell in enumerate(cells):
        for d, v in cell:
            matrix[i] &= codes[d] == v
    bounds = np.array(
        [
            _bounds(published[c], max_noise=max_noise, threshold=threshold, symbol=symbol)
            for c in cells
        ]
    )
    return _System(finest, cells, matrix, bounds[:, 0], bounds[:, 1])


def _witnesses(system: _System, truth_finest: np.ndarray, targets: list[int]) -> dict[int, bool]:
    """For each target row, whether moving, adding or removing ONE record gives another
    integer table consistent with every published cell and changes the target."""
    a = system.matrix.astype(np.int32)
    now = a @ truth_finest
    tight_hi = a[now >= system.hi]  # rows that cannot go up
    tight_lo = a[now <= system.lo]  # rows that cannot go down
    # Pair (p, q): add a record to finest cell p and take one from q.
    up_blocked = tight_hi.T @ (1 - tight_hi)  # rows containing p but not q, already at max
    down_blocked = (1 - tight_lo).T @ tight_lo  # rows containing q but not p, already at min
    can_move = (up_blocked == 0) & (down_blocked == 0) & (truth_finest[None, :] > 0)
    can_add = tight_hi.sum(axis=0) == 0
    can_remove = (tight_lo.sum(axis=0) == 0) & (truth_finest > 0)
    found = {}
    for t in targets:
        inside = a[t].astype(bool)
        changes = (
            can_add[inside].any()
            or can_remove[inside].any()
            or can_move[np.ix_(inside, ~inside)].any()
            or can_move[np.ix_(~inside, inside)].any()
        )
        found[t] = bool(changes)
    return found


def _integer_alternative(system: _System, target: int, true_value: int) -> bool:
    """Whether some non-negative integer table other than the truth in the target cell
    satisfies every published cell (integer program; used when one move is not enough)."""
    n = system.matrix.shape[1]
    base = LinearConstraint(system.matrix, system.lo, system.hi)
    for lo, hi in ((true_value + 1, np.inf), (-np.inf, true_value - 1)):
        res = milp(
            c=np.zeros(n),
            constraints=[base, LinearConstraint(system.matrix[target][None, :], lo, hi)],
            integrality=np.ones(n),
            bounds=Bounds(0, np.inf),
            options={"time_limit": 20},
        )
        if res.status == 0:
            return True
    return False


def lp_bounds(system: _System, target: int) -> tuple[float, float]:
    """The strongest polynomial-time attack: linear-programming bounds on the target."""
    row = system.matrix[target].astype(float)
    a_ub = np.vstack([system.matrix, -system.matrix]).astype(float)
    b_ub = np.concatenate([system.hi, -system.lo]).astype(float)
    out = []
    for sign in (1, -1):
        res = linprog(sign * row, A_ub=a_ub, b_ub=b_ub, bounds=(0, None), method="highs")
        assert res.status == 0
        out.append(sign * res.fun)
    return out[0], out[1]


# --- attacker 3: averaging over differencing routes ---------------------------------------------


def averaging_attack(
    published: Mapping[Cell, str],
    levels: Mapping[str, Sequence[str]],
    targets: Sequence[Cell],
    *,
    symbol: str = "c",
) -> dict[Cell, list[float]]:
    """Every differencing route's estimate of each target: the published value itself,
    the parent total minus its other parts (along each of the cell's dimensions), and
    the sum of its parts (along each dimension it does not fix). A route is usable only
    if every value on it is a number."""

    def value(c: Cell) -> int | None:
        v = published.get(c)
        return None if v is None or v == symbol else int(v)

    routes: dict[Cell, list[float]] = {}
    for cell in targets:
        found: list[float] = []
        if value(cell) is not None:
            found.append(float(value(cell)))  # type: ignore[arg-type]
        for d, v in cell:
            parent = cell - {(d, v)}
            others = [parent | {(d, w)} for w in levels[d] if w != v]
            vals = [value(parent)] + [value(o) if o in published else 0 for o in others]
            if all(x is not None for x in vals):
                found.append(float(vals[0] - sum(vals[1:])))  # type: ignore[operator]
        fixed = {d for d, _ in cell}
        for d in levels:
            if d in fixed:
                continue
            parts = [cell | {(d, w)} for w in levels[d]]
            if not any(p in published for p in parts):
                continue
            vals = [value(p) if p in published else 0 for p in parts]
            if all(x is not None for x in vals):
                found.append(float(sum(vals)))  # type: ignore[arg-type]
        routes[cell] = found
    return routes


# --- the whole attack -----------------------------------------------------------------------------


@dataclass
class AttackReport:
    queries: int
    published_cells: int
    conflicts: list[str]
    small_cells: int  # true count 1..T-1
    recovered: list[Cell]  # pinned to one value: must be empty
    interval_widths: dict[int, int]  # width of the propagated interval -> number of small cells
    unsound: list[Cell]  # an attacker interval that excludes the truth (attack bug): must be empty
    lp_min_width: float
    averaging: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        widths = ", ".join(f"{w}: {n}" for w, n in sorted(self.interval_widths.items()))
        avg = self.averaging
        return (
            f"{self.queries} queries, {self.published_cells} distinct published cells, "
            f"{len(self.conflicts)} inconsistent answers\n"
            f"{self.small_cells} cells with a true count of 1..T-1; exactly recovered: "
            f"{len(self.recovered)}\n"
            f"interval attack, number of possible values per small cell -> cells: {widths}\n"
            f"narrowest linear-programming range over the most exposed small cells: "
            f"{self.lp_min_width:.2f}\n"
            f"averaging attack: {avg.get('with_route', 0):.0f} small cells have a usable route "
            f"(mean {avg.get('mean_routes', 0):.1f} routes); rounded mean is exactly right for "
            f"{avg.get('exact_share', 0):.0%}, within 1 for {avg.get('within1_share', 0):.0%}, "
            f"mean absolute error {avg.get('mae', 0):.2f}; a guess of {avg.get('guess', 0):.0f} "
            f"for every small cell is exactly right for {avg.get('guess_share', 0):.0%}"
        )


def true_counts(records_or_cube: pl.DataFrame, cells: Sequence[Cell]) -> dict[Cell, int]:
    """True count of each cell from a record-level frame or a cube (with `n`)."""
    weights = records_or_cube["n"] if "n" in records_or_cube.columns else None
    out = {}
    for cell in cells:
        mask = np.ones(records_or_cube.height, dtype=bool)
        for d, v in cell:
            mask &= (records_or_cube[d] == v).to_numpy()
        out[cell] = int(weights.filter(mask).sum()) if weights is not None else int(mask.sum())
    return out


def run_attack(
    ask: Ask,
    *,
    levels: Mapping[str, Sequence[str]],
    max_dims: int,
    max_noise: int,
    threshold: int,
    truth: Callable[[Sequence[Cell]], dict[Cell, int]],
    symbol: str = "c",
    lp_targets: int = 10,
) -> AttackReport:
    queries = query_space(levels, max_dims)
    published, conflicts = publish(ask, queries)
    true = truth(list(published))
    small = [c for c, n in true.items() if 0 < n < threshold]
    intervals = interval_attack(
        published, levels, max_noise=max_noise, threshold=threshold, symbol=symbol
    )
    unsound = [c for c in published if not intervals[c][0] <= true[c] <= intervals[c][1]]
    widths: dict[int, int] = {}
    for c in small:
        w = intervals[c][1] - intervals[c][0] + 1
        widths[w] = widths.get(w, 0) + 1

    system = _system(published, levels, max_noise=max_noise, threshold=threshold, symbol=symbol)
    finest_truth = np.array(list(true_counts_finest(system.finest, truth).values()), dtype=np.int64)
    row_of = {c: i for i, c in enumerate(system.cells)}
    # Sanity: the truth satisfies every published constraint (else the model is wrong).
    now = system.matrix.astype(np.int64) @ finest_truth
    assert ((now >= system.lo) & (now <= system.hi)).all(), "attack model rejects the truth"
    has_witness = _witnesses(system, finest_truth, [row_of[c] for c in small])
    recovered = [
        c
        for c in small
        if not has_witness[row_of[c]] and not _integer_alternative(system, row_of[c], true[c])
    ]
    exposed = sorted(small, key=lambda c: intervals[c][1] - intervals[c][0])[:lp_targets]
    lp_widths = [hi - lo for lo, hi in (lp_bounds(system, row_of[c]) for c in exposed)]

    routes = averaging_attack(published, levels, small, symbol=symbol)
    usable = {c: r for c, r in routes.items() if r}
    averaging: dict[str, float] = {"with_route": len(usable)}
    if usable:
        errors = np.array([np.mean(r) - true[c] for c, r in usable.items()])
        rounded = np.array([round(np.mean(r)) - true[c] for c, r in usable.items()])
        guess = round(float(np.mean([true[c] for c in small])))
        averaging |= {
            "mean_routes": float(np.mean([len(r) for r in usable.values()])),
            "mae": float(np.abs(errors).mean()),
            "exact_share": float((rounded == 0).mean()),
            "within1_share": float((np.abs(rounded) <= 1).mean()),
            "guess": guess,
            "guess_share": float(np.mean([true[c] == guess for c in usable])),
        }
    return AttackReport(
        queries=len(queries),
        published_cells=len(published),
        conflicts=conflicts,
        small_cells=len(small),
        recovered=recovered,
        interval_widths=widths,
        unsound=unsound,
        lp_min_width=min(lp_widths) if lp_widths else float("nan"),
        averaging=averaging,
    )


def true_counts_finest(
    finest: Sequence[dict[str, str]], truth: Callable[[Sequence[Cell]], dict[Cell, int]]
) -> dict[Cell, int]:
    cells = [frozenset(f.items()) for f in finest]
    return truth(cells)


# --- the scenario ---------------------------------------------------------------------------------

POLICY = default_policy()
SECRET = b"attack-test secret, not a real one"
PTABLE = PerturbationTable.generate(SECRET, max_noise=POLICY.max_noise, variance=POLICY.variance)
WARDS = {"W1": "North", "W2": "North", "W3": "North", "W4": "South", "W5": "South", "W6": "South"}
DIMS = ("locality", "ward", "age_band", "sex", "month")


def _records(n: int = 1500, seed: int = 11) -> pl.DataFrame:
    """Skewed on purpose: busy and quiet wards, a rare age band, so many cells are small."""
    rng = np.random.default_rng(seed)
    ward = rng.choice(list(WARDS), n, p=[0.34, 0.26, 0.18, 0.12, 0.07, 0.03])
    pids = [f"R{seed}-{i}" for i in range(n)]
    return pl.DataFrame(
        {
            "pid": pids,
            "locality": [WARDS[w] for w in ward],
            "ward": ward,
            "age_band": rng.choice(["0-4", "5-9", "10-15", "16-17"], n, p=[0.3, 0.3, 0.3, 0.1]),
            "sex": rng.choice(["F", "M"], n, p=[0.55, 0.45]),
            "month": rng.choice([f"2024-{m:02d}" for m in range(1, 7)], n),
        }
    ).with_columns(record_keys(pl.Series(pids), SECRET).alias("record_key"))


@pytest.fixture(scope="module")
def report() -> AttackReport:
    records = _records()
    cubes = CubeSet(
        {"referrals": build_cube(records, DIMS).collect()},
        {"referrals": MeasureMeta("referrals", "Referrals", "r", "children", DIMS)},
    )

    def ask(
        by: tuple[str, ...], where: Mapping[str, str | list[str]], margins: bool
    ) -> ProtectedTable:
        return tabulate(
            cubes, "referrals", by, where, policy=POLICY, ptable=PTABLE, margins=margins
        )

    levels = {d: sorted(records[d].unique().to_list()) for d in DIMS}
    result = run_attack(
        ask,
        levels=levels,
        max_dims=POLICY.max_table_dims,
        max_noise=POLICY.max_noise,
        threshold=POLICY.threshold,
        truth=lambda cells: true_counts(records, cells),
    )
    print("\n" + result.summary())
    return result


def test_every_query_of_a_cell_gets_the_same_answer(report: AttackReport) -> None:
    assert report.queries > 1000 and report.published_cells > 500
    assert report.conflicts == []


def test_the_attack_is_sound_and_has_targets(report: AttackReport) -> None:
    # An attacker that excluded the truth would be reasoning wrongly; and the scenario
    # must actually contain small cells for the result to mean anything.
    assert report.unsound == []
    assert report.small_cells > 100


def test_differencing_recovers_no_small_count(report: AttackReport) -> None:
    assert report.recovered == []
    assert 1 not in report.interval_widths
    assert report.lp_min_width >= 1.0  # the linear relaxation cannot pin one either


def test_averaging_does_not_beat_a_blind_guess_by_much(report: AttackReport) -> None:
    avg = report.averaging
    # Honest figure, printed above; the bound guards against a regression that would
    # make averaging reliable (e.g. totals computed as sums of protected parts).
    assert avg["with_route"] > 0
    assert avg["exact_share"] < 0.6


def test_attack_catches_an_unprotected_release() -> None:
    """The attack is not toothless: against a release with no noise (D=0 as the
    attacker assumes) and suppression alone, it recovers small counts by differencing."""
    records = _records(n=600, seed=3)
    dims = ("ward", "age_band", "sex")
    cube = build_cube(records, dims).collect()
    levels = {d: sorted(records[d].unique().to_list()) for d in dims}

    def ask(
        by: tuple[str, ...], where: Mapping[str, str | list[str]], margins: bool
    ) -> ProtectedTable:
        cells = tabulate(
            CubeSet({"m": cube}, {"m": MeasureMeta("m", "M", "m", "children", dims)}),
            "m",
            by,
            where,
            policy=POLICY,
            ptable=PTABLE,
            margins=margins,
        )
        # Strip the protection: true counts, suppression below T only (no noise).
        truth = true_counts(records, list(_cells_of(cells, "Total")))
        shown = [
            "c" if 0 < truth[c] < POLICY.threshold else str(truth[c])
            for c in _cells_of(cells, "Total")
        ]
        data = cells.data.with_columns(pl.Series("count", shown))
        return ProtectedTable(**{**cells.__dict__, "data": data})

    result = run_attack(
        ask,
        levels=levels,
        max_dims=3,
        max_noise=0,
        threshold=POLICY.threshold,
        truth=lambda cells: true_counts(records, cells),
        lp_targets=3,
    )
    print(
        f"\ncontrol (suppression only, no noise): {len(result.recovered)} of "
        f"{result.small_cells} small cells recovered exactly"
    )
    assert result.recovered, "suppression alone should be defeated by differencing"
