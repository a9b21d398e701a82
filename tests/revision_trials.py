"""Many revisions, each removing a different batch of people, attacked by differencing.

Shared by tests/test_revisions_attack.py and benchmarks/bench_release_attack.py. One
pipeline run gives the zone B tables; each trial then publishes, into a copy of one store:
1. the release before (everyone in it), and
2. the release after a batch of people objected, in one of two modes:
   - "revision": what the revisions policy does (a revision release: every period
     recomputed without them, a new record-key epoch, true zeros of revised history
     shown as `c`, and the materiality rule if the policy sets one);
   - "recompute": what the code did before it (every period recomputed without them,
     same record keys, no zero rule).
Both releases go through the real publish step and are read only through `tabulate`. The
attacker (tests/release_attack.py) differences every measure by every breakdown (1-D
and 2-D cells) and guesses each removed person's ward, age band, sex and ethnic group;
chance is always guessing the population's most common value.

Batches are drawn the way objections arrive (whole households and single people), from
people who appear in the published measures: removing someone who is counted nowhere
changes nothing, so they would only flatter the attacker's failure rate.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from anonymise import cellkey
from anonymise.policy import Policy
from anonymise.release import clear_cache, tabulate
from pipelines.derive import ZoneBFrames, derive_all
from pipelines.publish import ReleasePlan, build_cubes, full_frames, hashed_frames, measure_meta
from pipelines.publish import publish as publish_release
from pipelines.reference import Reference
from pipelines.store import Store
from registry.codes import ETHNIC_MAJOR_GROUP
from tests.release_attack import (
    ATTRIBUTES,
    AttributeResult,
    attribute_scores,
    compare,
    guess,
    published_cells,
    score_attack,
    shares,
)

_PERSON = r"\|(p[0-9a-f]{32})(?:\||$)"


def _remove_db(path: Path) -> None:
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        p.unlink(missing_ok=True)


def units_per_person(frames: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """person_id, measure, age_band: one row per counted unit of a person measure."""
    parts = []
    for name, frame in frames.items():
        if "age_band" not in frame.columns:
            continue
        parts.append(
            frame.select(
                pl.col("unit_id").str.extract(_PERSON, 1).alias("person_id"),
                pl.lit(name).alias("measure"),
                "age_band",
            ).drop_nulls("person_id")
        )
    return pl.concat(parts)


def target_values(persons: pl.DataFrame, units: pl.DataFrame, ids: Sequence[str]) -> dict:
    """Each person's ward, sex, ethnic group and the age band of most of their units."""
    ages = (
        units.filter(pl.col("person_id").is_in(list(ids)))
        .group_by("person_id", "age_band")
        .len()
        .sort("len", "age_band", descending=[True, False])
        .unique("person_id", keep="first")
    )
    age_of = dict(ages.select("person_id", "age_band").iter_rows())
    out = {}
    for r in persons.filter(pl.col("person_id").is_in(list(ids))).iter_rows(named=True):
        out[r["person_id"]] = {
            "ward": r["ward"] or "Not known",
            "sex": r["sex"] or "U",
            "ethnicity": ETHNIC_MAJOR_GROUP.get(r["ethnicity"] or "", "Not known"),
            "age_band": age_of.get(r["person_id"]),
        }
    return out


def population_priors(
    persons: pl.DataFrame, units: pl.DataFrame, as_at: date
) -> dict[str, dict[str, float]]:
    """The share of each value among the people the batches are drawn from (everyone
    counted in some measure): the attacker who knows nothing guesses the most common.
    Age band is each person's most common age band over their counted units."""
    counted = persons.filter(pl.col("person_id").is_in(units["person_id"].unique().implode()))
    values = target_values(counted, units, counted["person_id"].to_list())
    return {a: shares([v[a] for v in values.values() if v[a] is not None]) for a in ATTRIBUTES}


def draw_batches(
    persons: pl.DataFrame,
    counted: set[str],
    *,
    trials: int,
    households: int,
    individuals: int,
    seed: int,
) -> list[list[str]]:
    """Batches of people to remove: whole households (family members who are counted
    somewhere) and single people, all counted in some measure, none objecting already."""
    rng = np.random.default_rng(seed)
    eligible = persons.filter(
        pl.col("person_id").is_in(list(counted)) & ~pl.col("objected_statistics")
    )
    families = eligible.group_by("family_id").agg(pl.col("person_id")).sort("family_id")
    fam_members = families["person_id"].to_list()
    people = eligible["person_id"].sort().to_list()
    batches = []
    for _ in range(trials):
        chosen: set[str] = set()
        for i in rng.choice(len(fam_members), households, replace=False):
            chosen.update(fam_members[int(i)])
        for i in rng.choice(len(people), individuals, replace=False):
            chosen.add(people[int(i)])
        batches.append(sorted(chosen))
    return batches


def _ask(store: Store, release_id: str, policy: Policy, ptable: cellkey.PerturbationTable):
    def ask(measure: str, by: tuple[str, ...]) -> pl.DataFrame:
        return tabulate(
            store, measure, by, policy=policy, margins=True, release_id=release_id, ptable=ptable
        ).data

    return ask


def attack_plan(store: Store, release_id: str) -> dict[str, Sequence[str]]:
    """Every measure's breakdowns (the attacker asks for every pair)."""
    return {m: meta.breakdowns for m, meta in store.read_meta(release_id).items()}


@dataclass
class TrialReport:
    mode: str
    trials: int
    removed: int
    targets: int
    # by (cell dims, scoring rule)
    results: dict[tuple[int, str], dict[str, AttributeResult]] = field(default_factory=dict)
    changed_cells: list[int] = field(default_factory=list)
    to_zero: list[int] = field(default_factory=list)
    cells: list[int] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [
            f"[{self.mode}] {self.trials} trials, {self.removed} people removed, "
            f"{self.targets} of them counted in some measure (the targets); per trial "
            f"{int(np.mean(self.changed_cells)):,} of {int(np.mean(self.cells)):,} cells changed, "
            f"{sum(self.to_zero)} cells went to 0 in all"
        ]
        for (dims, rule), results in sorted(self.results.items()):
            for r in results.values():
                out.append(f"  {dims}-D cells, rule {rule}: {r.summary()}")
        return out

    def best(self, attribute: str) -> AttributeResult:
        """The attacker variant that did best on this attribute."""
        return max((r[attribute] for r in self.results.values()), key=lambda r: r.hits)


def run_trials(
    persons: pl.DataFrame,
    events: dict[str, pl.DataFrame],
    *,
    as_at: date,
    secret: bytes,
    policy: Policy,
    workdir: Path,
    batches: list[list[str]],
    mode: str,
    max_cell_dims: int = 2,
    only_attribute_tables: bool = False,
    base_store: Path | None = None,
    reference: Reference | None = None,
) -> TrialReport:
    """base_store: a store whose latest release is the one before (e.g. a routine release
    carrying an earlier release's ledger, so that the revision also brings real late
    records and corrections); by default a first release built from these tables."""
    assert mode in ("revision", "recompute")
    clear_cache()
    # A revision may follow at once here: the schedule is not what is being measured.
    sim_policy = dataclasses.replace(
        policy,
        revisions=dataclasses.replace(policy.revisions, min_days_between=0, min_people_changed=1),
    )
    ptable = cellkey.ptable_for(policy.max_noise, policy.variance, secret)
    ref = reference or Reference()
    zb = ZoneBFrames(persons, events, as_at, ref)
    base_frames, _ = derive_all(zb)
    units = units_per_person(base_frames)
    counted = set(units["person_id"].to_list())
    base_db = workdir / "base.sqlite"
    _remove_db(base_db)
    if base_store is not None:
        shutil.copy(base_store, base_db)
        store = Store(f"sqlite:///{base_db}")
        latest = store.latest_release()
        assert latest is not None
        base_id = latest.release_id
    else:
        store = Store(f"sqlite:///{base_db}")
        already = persons.filter(pl.col("objected_statistics"))["person_id"]
        base_id = publish_release(
            store, base_frames, policy=sim_policy, secret=secret, data_as_at=as_at,
            run_metadata={}, excluded_people={"objections": already},
        ).release_id  # fmt: skip
    breakdowns = attack_plan(store, base_id)
    only = ATTRIBUTES if only_attribute_tables else ()
    before = published_cells(_ask(store, base_id, policy, ptable), breakdowns, only_with=only)
    base_info = store.get_release(base_id)
    with store.engine.connect() as conn:  # everything into the main file before copying it
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    store.dispose()
    priors = population_priors(persons, units, as_at)
    report = TrialReport(mode, len(batches), 0, 0)
    # Both scoring rules: on full grids (every value of a dimension has the same number of
    # cells) they agree, but a measure whose grid is ragged could favour one.
    variants = [(d, rule) for d in range(1, max_cell_dims + 1) for rule in ("sum", "z")]
    guesses: dict[tuple[int, str], list] = {v: [] for v in variants}
    for i, batch in enumerate(batches):
        db = workdir / f"trial{i}.sqlite"
        _remove_db(db)  # a stale write-ahead log would be replayed into the copy
        shutil.copy(base_db, db)
        st = Store(f"sqlite:///{db}")
        flagged = persons.with_columns(
            (pl.col("objected_statistics") | pl.col("person_id").is_in(batch)).alias(
                "objected_statistics"
            ),
            pl.when(pl.col("person_id").is_in(batch))
            .then(pl.lit(as_at - timedelta(days=10)))
            .otherwise(pl.col("objection_received"))
            .alias("objection_received"),
        )
        frames, _ = derive_all(ZoneBFrames(flagged, events, as_at, ref))
        excluded = flagged.filter(pl.col("objected_statistics"))["person_id"]
        if mode == "revision":
            plan = ReleasePlan("revision", base_info.key_epoch + 1, as_at, base_info, None)
            rid = publish_release(
                st, frames, policy=sim_policy, secret=secret, data_as_at=as_at,
                run_metadata={}, plan=plan, excluded_people={"objections": excluded},
                attribution=base_frames,
            ).release_id  # fmt: skip
        else:
            # The code before the revisions policy: every period recomputed, same keys.
            out = full_frames(hashed_frames(frames, secret))
            rid = st.write_release(
                build_cubes(out, secret, epoch=base_info.key_epoch),
                {n: measure_meta(n) for n in out},
                policy_id=policy.ref,
                data_as_at=as_at,
            )
        after = published_cells(_ask(st, rid, policy, ptable), breakdowns, only_with=only)
        st.dispose()
        _remove_db(db)
        cmp = compare(before, after, closed_before=None)
        report.changed_cells.append(cmp.changed)
        report.to_zero.append(cmp.to_zero)
        report.cells.append(cmp.common)
        targets = target_values(persons, units, [p for p in batch if p in counted])
        report.removed += len(batch)
        report.targets += len(targets)
        for dims, rule in guesses:
            g = {
                a: guess(
                    attribute_scores(
                        before, after, a, symbol=policy.symbols.confidential,
                        threshold=policy.threshold, max_noise=policy.max_noise,
                        max_cell_dims=dims, rule=rule,
                        value_map=ETHNIC_MAJOR_GROUP if a == "ethnicity" else None,
                    ),
                    priors[a],
                )
                for a in ATTRIBUTES
            }  # fmt: skip
            guesses[(dims, rule)].append((g, targets))
    for dims, trials in guesses.items():
        report.results[dims] = score_attack(trials, priors)
    return report
