"""Publish: derived record-level frames -> release cubes -> one atomic release.

Each measure's frame (one row per counted unit) gets persistent record keys and is
aggregated to its finest cube. The cubes go into the store in one transaction; the
release layer (`anonymise/release.py`) is the only reader, and it only ever returns
protected tables.

Releases over time follow a revisions policy (docs/disclosure-control.md):

- **Every release keeps a ledger** per measure of the units it published: a keyed hash
  of each unit id (`cellkey.unit_hashes`, under a subkey of the disclosure-control
  secret, so the store alone cannot be joined to zone B) and the dimension values it
  was published with. It is written in the same transaction as the release.
- **A routine release** publishes, per measure, the previous release's units exactly as
  they were published (whatever has happened to those people since: objections,
  erasures, moves and corrections all wait for a revision), plus this run's units that
  the previous release did not publish, but only in periods that are not yet closed. A
  period is closed once a release's data as-at date is past its end (plus, for measures
  whose units can only be counted some time after their date, that delay:
  `SETTLE_DAYS`). So two routine releases differ only by genuinely new units, never by
  a removal, and a cell of a closed period never changes. Units of a closed period that
  were never published (late records) wait for a revision.
- **A revision release** recomputes every period from the current data, starts a new
  record-key epoch (every unit's key, so every cell's noise, is redrawn) and records
  the date through which history was revised; the release layer then shows a true zero
  in revised history as `c`. It is allowed only when the `[revisions]` policy says so
  (`check_revision_schedule` and the number of people changed).
- **Materiality by people.** A revision, and every routine release after it, refers back
  to the release it revised and keeps its *change set* per measure: every unit that
  differs from that reference (removed, added late, or published with other values), as
  a hash of the person or family it belongs to (under a one-off key, so it links to
  nothing outside the set) and the cell it was (or is) in. The
  release layer revises a cell of history only when at least `materiality` different
  people changed in it; otherwise the reference's value stands. So no revised figure
  can be put down to fewer people than the output threshold.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial
from typing import Any

import polars as pl

from anonymise.cellkey import build_cube, record_keys, unit_hashes
from anonymise.policy import Policy
from pipelines.derive import MEASURES, OBJECTIONS_MEASURE, SUSTAIN_DAYS
from pipelines.partitioned import ON_DRIVER, Additive, MapRows
from pipelines.store import Store
from registry.measures import CHANGE_SET_PREFIX, KEY_MODULUS, MeasureMeta, ReleaseInfo
from registry.periods import finest_time_dim, period_end

OBJECTORS_MEASURE = OBJECTIONS_MEASURE.meta
# Units that can only be counted some time after the date they are dated by: their period
# closes that much later (a family's progress is judged six months after closure).
SETTLE_DAYS = {
    "sf_families_closed": SUSTAIN_DAYS,
    "sf_significant_sustained_progress": SUSTAIN_DAYS,
}
# The people left out of statistics (objectors, erasure and restriction requests) when the
# series' history was last computed in full: what "changed since the last revision" is
# measured against. Stored like a ledger, as keyed hashes.
EXCLUDED_LEDGER = "_excluded_at_baseline"
UNATTRIBUTED = "unattributed"
_SUBJECT = re.compile(r"(?:^|\|)([pf][0-9a-f]{32})(?=\||$)")


class RevisionRefused(Exception):
    """The revisions policy does not allow a revision release now; the reason says why."""


class RoutineRefused(Exception):
    """A routine release cannot be built on the latest release (e.g. it has no ledger)."""


class NoLedgerError(RoutineRefused):
    """The latest release predates ledgers: only a revision can follow it."""


def measure_meta(name: str) -> MeasureMeta:
    return OBJECTORS_MEASURE if name == OBJECTORS_MEASURE.name else MEASURES[name].meta


# --- planning a release ---------------------------------------------------------------------


@dataclass(frozen=True)
class ReleasePlan:
    kind: str  # "routine" or "revision"
    key_epoch: int
    revised_through: date | None
    base: ReleaseInfo | None  # the latest published release (its ledger is carried forward)
    baseline: date | None  # data date of the last full computation (first release or revision)
    legacy: bool = False  # the base kept no ledger (published before the revisions policy)

    def reference(self, policy: Policy) -> tuple[str | None, int]:
        """The release a revised series refers back to, and the materiality threshold: a
        revision refers to the release it revises (whose values stand for immaterial
        changes, and whose dimension values stay on offer); a routine release keeps its
        base's."""
        if self.base is None:
            return None, 0
        if self.kind == "revision":
            return self.base.release_id, policy.revisions.materiality
        return self.base.reference_release, self.base.materiality


def plan_release(store: Store, *, revision: bool, data_as_at: date) -> ReleasePlan:
    """What kind of release this run writes, on which base. Raises RoutineRefused or
    RevisionRefused (for the schedule; the number of people changed is checked later)."""
    published = [r for r in store.list_releases() if r.status == "published"]
    base = published[0] if published else None
    if base is not None and data_as_at < base.data_as_at:
        raise RoutineRefused(
            f"the data as-at date {data_as_at} is earlier than the latest release's "
            f"({base.data_as_at}, release {base.release_id})"
        )
    has_ledger = base is not None and bool(store.ledger_measures(base.release_id))
    if not revision:
        if base is not None and not has_ledger:
            raise NoLedgerError(
                f"the latest release {base.release_id} kept no ledger of what it published "
                "(it predates the revisions policy), so a routine release cannot keep its "
                "periods as published: run `portal run --revision` to start a new series"
            )
        if base is None:
            return ReleasePlan("routine", 0, None, None, None)
        return ReleasePlan(
            "routine", base.key_epoch, base.revised_through, base, _baseline(published)
        )
    if base is None:
        raise RevisionRefused("there is no published release to revise yet; run without --revision")
    epoch = max(r.key_epoch for r in store.list_releases()) + 1
    return ReleasePlan(
        "revision", epoch, data_as_at, base, _baseline(published), legacy=not has_ledger
    )


def _baseline(published: list[ReleaseInfo]) -> date:
    """Data date of the newest full computation: the latest revision, else the first release."""
    for r in published:
        if r.kind == "revision":
            return r.data_as_at
    return published[-1].data_as_at


def check_revision_schedule(plan: ReleasePlan, policy: Policy, data_as_at: date) -> None:
    """The interval rule of `[revisions]`: data dates at least `min_days_between` apart
    since the last full computation of history (the last revision, else the first release)."""
    if plan.kind != "revision" or plan.baseline is None or plan.legacy:
        # Releases without ledgers could never be compared safely: the first revision that
        # starts a ledger-keeping series is not held back by the schedule.
        return
    rules = policy.revisions
    due = plan.baseline + timedelta(days=rules.min_days_between)
    if data_as_at < due:
        raise RevisionRefused(
            f"the revisions policy ({policy.ref}) allows at most one revision every "
            f"{rules.min_days_between} days of data: history was last computed in full with "
            f"data as at {plan.baseline}, so the next revision can have data as at {due} "
            f"or later (this run: {data_as_at})"
        )


# --- ledgers -----------------------------------------------------------------------------------


def hashed_frames(frames: Mapping[str, pl.DataFrame], secret: bytes) -> dict[str, pl.DataFrame]:
    """Each frame with `unit_hash` (keyed hash of `unit_id`) beside its unit id."""
    hashes = across_frames(frames, "unit_id", lambda ids: unit_hashes(ids, secret))
    return {name: frame.with_columns(hashes[name]) for name, frame in frames.items()}


def across_frames(
    frames: Mapping[str, pl.DataFrame], column: str, fn: Callable[[pl.Series], pl.Series]
) -> dict[str, pl.Series]:
    """`fn` (a row-wise function of one column) applied to `column` of every frame in one
    call, then split back by frame: a unit counted by several measures is hashed once
    (`cellkey.keyed_digests` hashes each distinct value once), and one large call can use
    the second process that many small ones would not. Frames whose column is not text
    get their own call (their values are hashed as text, which concatenation could alter)."""
    text = [n for n, f in frames.items() if f.schema[column] == pl.String]
    out: dict[str, pl.Series] = {}
    if text:
        together = fn(pl.concat([frames[n][column] for n in text]))
        at = 0
        for n in text:
            out[n] = together.slice(at, frames[n].height)
            at += frames[n].height
    for n, f in frames.items():
        if n not in out:
            out[n] = fn(f[column])
    return out


def _ends(frame: pl.DataFrame, dim: str) -> pl.Series:
    values = frame[dim].unique().to_list()
    ends = {v: period_end(dim, v) for v in values}
    return frame[dim].replace_strict(ends, default=None, return_dtype=pl.Date)


def closed_units(frame: pl.DataFrame, name: str, closed_before: date | None) -> pl.Series:
    """Whether each unit lies in a period closed before `closed_before` (the previous
    release's data date): its finest time value ended, plus any settling delay, before it."""
    dim = finest_time_dim(measure_meta(name).breakdowns)
    if closed_before is None or dim is None or frame.height == 0:
        return pl.Series("closed", [False] * frame.height, dtype=pl.Boolean)
    settle = timedelta(days=SETTLE_DAYS.get(name, 0))
    ends = _ends(frame, dim)
    return ((ends + settle) < closed_before).fill_null(False).alias("closed")


@dataclass
class LedgerDiff:
    """How this run's units differ from what the previous release published, per measure."""

    carried: int = 0  # published before, published again as they were
    added: int = 0  # new units in open periods
    late: int = 0  # new units in closed periods (wait for a revision)
    gone: int = 0  # published before, no longer in the data (removals)
    changed: int = 0  # published before with other dimension values (corrections, moves)
    redefined: list[str] = field(default_factory=list)  # measures whose breakdowns changed
    subjects: set[str] = field(default_factory=set)  # people/families with late or changed units

    def to_dict(self) -> dict[str, Any]:
        return {
            "carried": self.carried,
            "added": self.added,
            "late": self.late,
            "gone": self.gone,
            "changed": self.changed,
            "redefined": sorted(self.redefined),
            "people_with_late_or_corrected_records": len(self.subjects),
        }


def compare_with_ledger(
    current: Mapping[str, pl.DataFrame],
    ledgers: Mapping[str, pl.DataFrame | None],
    closed_before: date | None,
) -> tuple[dict[str, pl.DataFrame], LedgerDiff]:
    """The routine release's frames (unit_hash + dimensions) and how the data differs from
    what was published. Pure."""
    diff = LedgerDiff()
    out: dict[str, pl.DataFrame] = {}
    for name, cur in current.items():
        dims = list(measure_meta(name).breakdowns)
        prev = ledgers.get(name)
        if prev is not None and sorted(prev.columns) != sorted(["unit_hash", *dims]):
            diff.redefined.append(name)
            prev = None
        if prev is None:
            # Nothing of this measure was published with these breakdowns: publish it whole.
            out[name] = cur.select("unit_hash", *dims)
            diff.added += cur.height
            continue
        prev = prev.select("unit_hash", *dims)
        fresh = cur.join(prev.select("unit_hash"), on="unit_hash", how="anti")
        closed = closed_units(fresh, name, closed_before)
        added = fresh.filter(~closed)
        late = fresh.filter(closed)
        both = cur.select("unit_id", "unit_hash", *dims).join(
            prev, on="unit_hash", how="inner", suffix="_prev"
        )
        moved = both.filter(
            pl.any_horizontal(*(pl.col(d) != pl.col(f"{d}_prev") for d in dims))
            if dims
            else pl.lit(False)
        )
        diff.carried += prev.height
        diff.added += added.height
        diff.late += late.height
        diff.gone += prev.join(cur.select("unit_hash"), on="unit_hash", how="anti").height
        diff.changed += moved.height
        for uid in pl.concat([late.select("unit_id"), moved.select("unit_id")])["unit_id"]:
            diff.subjects.update(_SUBJECT.findall(uid))
        out[name] = pl.concat([prev, added.select("unit_hash", *dims)], how="vertical")
    return out, diff


def _subjects(unit_ids: pl.Series) -> pl.Series:
    """The person (or family) pseudonym inside each unit id; unattributed if none."""
    return (
        unit_ids.str.extract(r"(?:^|\|)([pf][0-9a-f]{32})(?:\||$)", 1)
        .fill_null(UNATTRIBUTED)
        .alias("subject")
    )


def change_sets(
    published: Mapping[str, pl.DataFrame],
    reference: Mapping[str, pl.DataFrame | None],
    known_units: Mapping[str, pl.DataFrame],
    one_off_key: bytes,
) -> dict[str, pl.DataFrame]:
    """Per measure, every unit that differs between the reference's ledger and what this
    release publishes (`unit_hash` and its breakdowns): `subject_hash` (keyed hash of its
    person or family) and the cell it was in (removed, or the old values of a corrected
    unit) or is in (added, or the new values). Units are attributed to people through
    `known_units` (`unit_hash`, `unit_id` of every unit this run can derive, objectors
    included); the rest count together as one unattributed subject, so that they can never
    on their own make a cell look changed by many people. `one_off_key` is drawn afresh for
    each release and kept nowhere: the subject hashes tell people apart inside one change
    set and can be linked to nothing else, not even with the disclosure-control secret.
    Pure."""
    out = {}
    for name, pub in published.items():
        dims = list(measure_meta(name).breakdowns)
        ref = reference.get(name)
        if ref is None or sorted(ref.columns) != sorted(["unit_hash", *dims]):
            continue  # not published before with these breakdowns: nothing to revise
        known = known_units.get(name)
        who = (
            known.select("unit_hash", _subjects(known["unit_id"])).unique("unit_hash")
            if known is not None
            else pl.DataFrame(schema={"unit_hash": pl.String, "subject": pl.String})
        )
        ref = ref.select("unit_hash", *dims)
        pub = pub.select("unit_hash", *dims)
        removed = ref.join(pub.select("unit_hash"), on="unit_hash", how="anti")
        added = pub.join(ref.select("unit_hash"), on="unit_hash", how="anti")
        both = pub.join(ref, on="unit_hash", how="inner", suffix="_ref")
        moved = both.filter(pl.any_horizontal(*(pl.col(d) != pl.col(f"{d}_ref") for d in dims)))
        old_values = moved.select("unit_hash", *(pl.col(f"{d}_ref").alias(d) for d in dims))
        changed = pl.concat(
            [removed, added, moved.select("unit_hash", *dims), old_values], how="vertical"
        ).join(who, on="unit_hash", how="left")
        changed = changed.with_columns(pl.col("subject").fill_null(UNATTRIBUTED))
        out[name] = changed.select(
            unit_hashes("subject|" + changed["subject"], one_off_key).alias("subject_hash"),
            *dims,
        )
    return out


def full_frames(current: Mapping[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    return {n: f.select("unit_hash", *measure_meta(n).breakdowns) for n, f in current.items()}


def _finest_cube(keyed: pl.DataFrame, *, dims: Sequence[str]) -> pl.DataFrame:
    return build_cube(keyed, dims).collect()


def _sum_cubes(partials: pl.DataFrame, *, dims: Sequence[str]) -> pl.DataFrame:
    """Partial cubes of disjoint sets of units, summed into the cube of them all: a cell's
    count is the sum of its partial counts, its key the sum of its partial keys mod the
    modulus (the sum of its units' keys mod the modulus, as `build_cube` computes it)."""
    return (
        partials.group_by(list(dims))
        .agg(pl.col("n").sum(), pl.col("ckey").sum() % KEY_MODULUS)
        .sort(list(dims))
    )


def build_cubes(
    frames: Mapping[str, pl.DataFrame],
    secret: bytes,
    *,
    epoch: int = 0,
    map_rows: MapRows = ON_DRIVER,
) -> dict[str, pl.DataFrame]:
    """Record keys per unit (from its hash, in the release's key epoch), then the finest
    cube of each measure's breakdowns.

    The keys are computed here, where the secret is; `map_rows` (pipelines/partitioned.py)
    may count the cells on Spark partitions, and is handed only each unit's breakdowns and
    record key, never the secret or a unit's id or hash."""
    jobs: dict[str, Additive] = {}
    by_key_col: dict[str, dict[str, pl.DataFrame]] = {}
    for name, frame in frames.items():
        key_col = "unit_hash" if "unit_hash" in frame.columns else "unit_id"
        by_key_col.setdefault(key_col, {})[name] = frame
    for key_col, group in by_key_col.items():
        keys = across_frames(group, key_col, lambda v: record_keys(v, secret, epoch=epoch))
        for name, frame in group.items():
            dims = measure_meta(name).breakdowns
            keyed = frame.select(*dims, keys[name].alias("record_key"))
            jobs[name] = Additive(
                keyed, partial(_finest_cube, dims=dims), partial(_sum_cubes, dims=dims)
            )
    cubes = map_rows.aggregate(jobs)
    return {name: cubes[name] for name in frames}


# --- the revision note --------------------------------------------------------------------------


def revision_note(reasons: Mapping[str, int], *, policy: Policy, baseline: date | None) -> str:
    """What changed and why, in words for a footnote. Categories only, never small exact
    counts (the exact figures go to the run's metadata for administrators)."""
    names = {
        "objections": "people who objected",
        "erasure_or_restriction": "people who asked for their data to be erased or restricted",
        "late_records": "records that arrived after their period was first published",
        "corrections": "records corrected since they were first published",
    }
    removed = [names[k] for k in ("objections", "erasure_or_restriction") if reasons.get(k)]
    added = [names[k] for k in ("late_records", "corrections") if reasons.get(k)]
    since = f" since the data of {baseline:%d %B %Y}" if baseline else ""
    parts = []
    if removed:
        parts.append("removes the records of " + " and of ".join(removed))
    if added:
        parts.append("includes " + " and ".join(added))
    changes = "; ".join(parts) if parts else "brings every period up to date"
    return (
        f"Revised: this release recalculates every period from current records{since} and "
        f"{changes}. At least {policy.revisions.min_people_changed} people's records changed. "
        "Every figure's disclosure-control noise was drawn afresh, so figures for earlier "
        "periods can differ from earlier releases by more than the change in the data; in "
        "revised periods a true zero is shown as c."
    )


# --- publishing ----------------------------------------------------------------------------------


@dataclass
class Published:
    release_id: str
    plan: ReleasePlan
    diff: LedgerDiff
    people_changed: int | None  # since the last full computation (None: first release)
    reasons: dict[str, int]

    def summary(self) -> dict[str, Any]:
        return {
            "release_id": self.release_id,
            "kind": self.plan.kind,
            "key_epoch": self.plan.key_epoch,
            "revised_through": self.plan.revised_through.isoformat()
            if self.plan.revised_through
            else None,
            "based_on": self.plan.base.release_id if self.plan.base else None,
            "changes_since_published": self.diff.to_dict(),
            "people_changed_since_last_revision": self.people_changed,
            "reasons": self.reasons,
        }


def excluded_ledger(people: Mapping[str, pl.Series], secret: bytes) -> pl.DataFrame:
    """Keyed hashes of the people left out of statistics, with why (`objections` or
    `erasure_or_restriction`); a person listed under both keeps the first."""
    parts = [
        pl.DataFrame({"unit_id": ("excluded|" + ids.cast(pl.String)), "reason": reason})
        for reason, ids in people.items()
        if ids.len()
    ]
    if not parts:
        return pl.DataFrame(schema={"unit_hash": pl.String, "reason": pl.String})
    df = pl.concat(parts).unique("unit_id", keep="first", maintain_order=True)
    return df.select(unit_hashes(df["unit_id"], secret), "reason")


def publish(
    store: Store,
    frames: Mapping[str, pl.DataFrame],
    *,
    policy: Policy,
    secret: bytes,
    data_as_at: date,
    run_metadata: Mapping[str, Any],
    plan: ReleasePlan | None = None,
    excluded_people: Mapping[str, pl.Series] | None = None,
    attribution: Mapping[str, pl.DataFrame] | None = None,
    map_rows: MapRows = ON_DRIVER,
) -> Published:
    """Write a routine or revision release (see the module docstring) in one transaction.

    frames: each measure's units (`unit_id` and its breakdowns); excluded_people: person
    pseudonyms left out of statistics, by reason (`objections`, `erasure_or_restriction`),
    to measure what changed since the last revision; attribution: every unit this run can
    derive with nobody excluded (`unit_id` per measure), to say whose removed units were
    (for the change sets of a revised series); map_rows: where the cubes' cells are
    counted (`build_cubes`).
    Raises RevisionRefused when the revisions policy does not allow this revision."""
    plan = plan or plan_release(store, revision=False, data_as_at=data_as_at)
    check_revision_schedule(plan, policy, data_as_at)
    current = hashed_frames(frames, secret)
    excluded = excluded_ledger(excluded_people or {}, secret)
    base = plan.base
    diff = LedgerDiff()
    people_changed: int | None = None
    reasons: dict[str, int] = {}
    if base is None:
        out = full_frames(current)
        diff.added = sum(f.height for f in out.values())
        baseline_excluded = excluded
    else:
        ledgers = {m: store.read_ledger(base.release_id, m) for m in current}
        routine, diff = compare_with_ledger(current, ledgers, base.data_as_at)
        before = store.read_ledger(base.release_id, EXCLUDED_LEDGER)
        if before is None:
            before = pl.DataFrame(schema={"unit_hash": pl.String, "reason": pl.String})
        newly = excluded.join(before.select("unit_hash"), on="unit_hash", how="anti")
        people_changed = newly.height + len(diff.subjects)
        reasons = {
            "objections": newly.filter(pl.col("reason") == "objections").height,
            "erasure_or_restriction": newly.filter(
                pl.col("reason") == "erasure_or_restriction"
            ).height,
            "late_records": diff.late,
            "corrections": diff.changed,
            "units_no_longer_in_the_data": diff.gone,
        }
        if plan.kind == "revision":
            needed = policy.revisions.min_people_changed
            if people_changed < needed and not plan.legacy:
                raise RevisionRefused(
                    f"the revisions policy ({policy.ref}) needs at least {needed} people's "
                    f"records to have changed since history was last computed in full "
                    f"(data as at {plan.baseline}); {people_changed} have"
                )
            out = full_frames(current)
            baseline_excluded = excluded
        else:
            out = routine
            baseline_excluded = before
    cubes = build_cubes(out, secret, epoch=plan.key_epoch, map_rows=map_rows)
    meta = {name: measure_meta(name) for name in out}
    reference, materiality = plan.reference(policy)
    changes: dict[str, pl.DataFrame] = {}
    if reference is not None and materiality > 0:
        ref_ledgers = {m: store.read_ledger(reference, m) for m in out}
        known = {m: f.select("unit_hash", "unit_id") for m, f in current.items()}
        for m, f in hashed_frames(attribution or {}, secret).items():
            extra = f.select("unit_hash", "unit_id")
            known[m] = pl.concat([known[m], extra]) if m in known else extra
        changes = change_sets(out, ref_ledgers, known, secrets.token_bytes(32))
    note = (
        revision_note(reasons, policy=policy, baseline=plan.baseline)
        if plan.kind == "revision"
        else None
    )
    release_id = store.write_release(
        cubes,
        meta,
        policy_id=policy.ref,
        data_as_at=data_as_at,
        run_metadata={
            **dict(run_metadata),
            "release": {
                "kind": plan.kind,
                "based_on": base.release_id if base else None,
                "changes_since_published": diff.to_dict(),
                "people_changed_since_last_revision": people_changed,
                "reasons": reasons,
            },
        },
        kind=plan.kind,
        key_epoch=plan.key_epoch,
        revised_through=plan.revised_through,
        revision_note=note,
        ledgers={
            **out,
            EXCLUDED_LEDGER: baseline_excluded,
            **{CHANGE_SET_PREFIX + m: c for m, c in changes.items()},
        },
        reference_release=reference,
        materiality=materiality,
    )
    return Published(release_id, plan, diff, people_changed, reasons)
