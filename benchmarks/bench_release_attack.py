"""Compare releases as an attacker would, on a synthetic county, and print what leaks.

    python benchmarks/bench_release_attack.py --people 20000 --seed 7 --out /tmp/attack

Scenarios (each run of the pipeline is a real `run_pipeline` into one store):
  one-objector   the pipeline re-run with the same as-at date after one objection is added
                 for a child with contacts, a referral, a CP plan and Early Help;
  realistic      the as-at date moves three months and six new objectors are added;
  revision       (only where the code has revisions) a revision release after `realistic`.

For each pair it prints how many cells changed (in closed periods), how many went to 0
from a number or `c`, and the averaging attack's guesses of the removed people's ward,
age band, sex and ethnic group against the population's mode. The attack code is
tests/release_attack.py, independent of the release code, so the same script measures
the code before and after the revisions policy.
"""

from __future__ import annotations

import argparse
import inspect
import shutil
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anonymise import cellkey  # noqa: E402
from anonymise.policy import default_policy  # noqa: E402
from anonymise.pseudonymise import MasterKey  # noqa: E402
from anonymise.release import clear_cache, tabulate  # noqa: E402
from pipelines.derive import ZoneBFrames, derive_all  # noqa: E402
from pipelines.reference import Reference, load_reference  # noqa: E402
from pipelines.run import run_pipeline  # noqa: E402
from pipelines.store import Store  # noqa: E402
from tests.release_attack import (  # noqa: E402
    ATTRIBUTES,
    attribute_scores,
    compare,
    guess,
    published_cells,
    release_cubes,
    score_attack,
    shares,
    true_cells,
)

KEY = MasterKey(b"k" * 32, "environment")
SECRET = b"s" * 32
POLICY = default_policy()
OBJ_COLUMNS = (
    "objection_id", "forename", "surname", "dob", "sex", "address_line1", "postcode",
    "nhs_number", "date_received", "scope",
)  # fmt: skip


def _has_revisions() -> bool:
    return "revision" in inspect.signature(run_pipeline).parameters


def _people(raw: Path) -> pl.DataFrame:
    """Everyone in the county's truth, with their latest address."""
    people = pl.read_csv(raw / "truth" / "people.csv", infer_schema=False)
    hist = pl.read_csv(raw / "truth" / "address_history.csv", infer_schema=False)
    latest = (
        hist.sort("moved_in")
        .group_by("family_id")
        .agg(pl.col("address_line1").last(), pl.col("postcode").last())
    )
    return people.join(latest, on="family_id", how="left")


def _objection_rows(people: pl.DataFrame, ids: list[str], received: list[date]) -> pl.DataFrame:
    sel = people.filter(pl.col("person_id").is_in(ids))
    order = {p: i for i, p in enumerate(ids)}
    sel = sel.with_columns(
        pl.col("person_id").replace_strict(order, return_dtype=pl.Int64).alias("_o")
    ).sort("_o")
    return sel.select(
        pl.format("OBJ9{}", pl.col("_o").cast(pl.Utf8).str.zfill(6)).alias("objection_id"),
        "forename",
        "surname",
        "dob",
        "sex",
        pl.col("address_line1"),
        pl.col("postcode"),
        pl.col("nhs_number"),
        pl.Series("date_received", [d.isoformat() for d in received]),
        pl.lit("PLANNING_AND_RESEARCH").alias("scope"),
    )


def _with_register(raw: Path, dest: Path, upto: date, extra: pl.DataFrame | None) -> Path:
    """A copy of the county whose objections register holds what was received by `upto`."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(raw, dest)
    reg = pl.read_csv(raw / "objections.csv", infer_schema=False)
    reg = reg.filter(pl.col("date_received").str.to_date(strict=False) <= upto)
    if extra is not None:
        reg = pl.concat([reg, extra.select(reg.columns)])
    reg.write_csv(dest / "objections.csv")
    return dest


def _candidates(raw: Path) -> pl.DataFrame:
    """People with records in the measured sources, and which."""
    rec = pl.read_csv(raw / "truth" / "records.csv", infer_schema=False)
    sc = pl.read_csv(raw / "social_care.csv", infer_schema=False)
    cp = sc.filter(pl.col("cp_plan_start").is_not_null() & (pl.col("primary_need") == "N1"))
    cp_people = rec.join(
        cp.select(pl.col("csc_record_id").alias("record_id")).with_columns(
            pl.lit("social_care").alias("source")
        ),
        on=["source", "record_id"],
    )["person_id"].unique()
    by_src = rec.group_by("person_id").agg(pl.col("source").unique().alias("sources"))
    return by_src.with_columns(pl.col("person_id").is_in(cp_people.implode()).alias("cp_n1"))


MAX_DIMS = 2


def _publish_all(store: Store, release_id: str) -> tuple[dict, dict]:
    clear_cache()
    ptable = cellkey.ptable_for(POLICY.max_noise, POLICY.variance, SECRET)
    metas = store.read_meta(release_id)
    breakdowns = {m: meta.breakdowns for m, meta in metas.items()}

    def ask(measure: str, by: tuple[str, ...]) -> pl.DataFrame:
        return tabulate(
            store, measure, by, policy=POLICY, margins=True, release_id=release_id, ptable=ptable
        ).data

    pub = published_cells(ask, breakdowns, max_dims=MAX_DIMS)
    cubes = release_cubes(store, release_id)
    return pub, cubes


def _run(raw: Path, work: Path, store: Store, as_at: date, **kw) -> str:
    t = time.perf_counter()
    if _has_revisions():
        # The demo register holds objectors who are in no source: acknowledge them, and
        # allow a revision three months after the first release.
        import dataclasses

        pol = dataclasses.replace(
            POLICY, revisions=dataclasses.replace(POLICY.revisions, min_days_between=90)
        )
        kw = {"accept_unmatched_objections": "all", "policy": pol, "keep_zone_a": True, **kw}
    res = run_pipeline(raw, work, KEY, as_at=as_at, store=store, sdc_secret=SECRET, **kw)
    print(f"  run as at {as_at} -> release {res.release_id} ({time.perf_counter() - t:.0f} s)")
    assert res.release_id
    return res.release_id


def _new_objectors(before: Path, after: Path) -> pl.DataFrame:
    """People left out of statistics in the second run but not the first."""
    pa = pl.read_parquet(before / "zone_b" / "persons.parquet")
    pb = pl.read_parquet(after / "zone_b" / "persons.parquet")
    flag = "objected_statistics" if "objected_statistics" in pb.columns else "objected"
    return pb.filter(pl.col(flag)).join(pa.filter(pl.col(flag)), on="person_id", how="anti")


# The county's reference data (population estimates, coverage), set once the raw folder
# is known: every derive needs it.
REFERENCE: list[Reference] = []


def _frames_without_exclusions(work: Path, as_at: date) -> dict[str, pl.DataFrame]:
    """Every measure's units as if nobody objected (to find each person's units)."""
    persons = pl.read_parquet(work / "zone_b" / "persons.parquet").with_columns(
        pl.lit(False).alias("objected"), pl.lit(False).alias("objected_statistics")
    )
    events = {p.stem: pl.read_parquet(p) for p in (work / "zone_b" / "events").glob("*.parquet")}
    reference = REFERENCE[0] if REFERENCE else Reference()
    frames, _ = derive_all(ZoneBFrames(persons, events, as_at, reference))
    return frames


def _units(work: Path, as_at: date) -> pl.DataFrame:
    """person_id and age_band of every counted unit of a person measure."""
    parts = [
        f.select(
            pl.col("unit_id").str.extract(r"\|(p[0-9a-f]{32})(?:\||$)", 1).alias("person_id"),
            "age_band",
        ).drop_nulls("person_id")
        for f in _frames_without_exclusions(work, as_at).values()
        if "age_band" in f.columns
    ]
    return pl.concat(parts)


def _person_values(work: Path, as_at: date, person_ids: list[str]) -> dict[str, dict[str, str]]:
    """Each person's ward, sex and ethnic group (zone B), and the age band of most of
    their counted units."""
    from registry.codes import ETHNIC_MAJOR_GROUP

    persons = pl.read_parquet(work / "zone_b" / "persons.parquet")
    units = _units(work, as_at).filter(pl.col("person_id").is_in(person_ids))
    out = {}
    for row in persons.filter(pl.col("person_id").is_in(person_ids)).iter_rows(named=True):
        ages = units.filter(pl.col("person_id") == row["person_id"])["age_band"].to_list()
        out[row["person_id"]] = {
            "ward": row["ward"] or "Not known",
            "sex": row["sex"] or "U",
            "ethnicity": ETHNIC_MAJOR_GROUP.get(row["ethnicity"] or "", "Not known"),
            "age_band": max(sorted(set(ages)), key=ages.count) if ages else None,
        }
    return out


def _priors(work: Path, as_at: date) -> dict[str, dict[str, float]]:
    """Shares of each value among the people counted in some measure (the pool the
    scenarios' objectors come from): chance is always guessing the most common."""
    counted = _units(work, as_at)["person_id"].unique().to_list()
    values = _person_values(work, as_at, counted)
    return {a: shares([v[a] for v in values.values() if v[a]]) for a in ATTRIBUTES}


def _attack(
    before: dict, after: dict, targets: dict[str, dict[str, str]], priors, closed_before: date
) -> None:
    from registry.codes import ETHNIC_MAJOR_GROUP

    for dims in range(1, MAX_DIMS + 1):
        for label, closed in (("every cell", None), ("closed periods only", closed_before)):
            guesses = {
                a: guess(
                    attribute_scores(
                        before, after, a, symbol="c", threshold=POLICY.threshold,
                        max_noise=POLICY.max_noise, max_cell_dims=dims, closed_before=closed,
                        value_map=ETHNIC_MAJOR_GROUP if a == "ethnicity" else None,
                    ),
                    priors[a],
                )
                for a in ATTRIBUTES
            }  # fmt: skip
            results = score_attack([(guesses, targets)], priors)
            print(f"  averaging attack on cells of up to {dims} dims, {label}: {guesses}")
            for r in results.values():
                print("    " + r.summary())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=Path("/tmp/release-attack"))
    ap.add_argument("--raw", type=Path, default=None, help="an existing county (else generated)")
    ap.add_argument(
        "--scenario", choices=("one-objector", "realistic", "trials", "all"), default="all"
    )
    ap.add_argument("--trials", type=int, default=20, help="revisions in the trials scenario")
    ap.add_argument("--modes", default="recompute,revision", help="trial modes to run")
    ap.add_argument(
        "--background",
        action="store_true",
        help="trials revise a routine release that carries a release three months older "
        "(so each revision also brings real late records and corrections)",
    )
    ap.add_argument(
        "--materiality", default="", help="revision trials with these thresholds, e.g. 0,3,10"
    )
    ap.add_argument("--max-dims", type=int, default=2, help="dimensions per table (1-3)")
    args = ap.parse_args()
    global MAX_DIMS
    MAX_DIMS = args.max_dims
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    raw = args.raw or out / "raw"
    if not (raw / "objections.csv").exists():
        from synthetic.generator import generate_county

        generate_county(args.people, args.seed, raw)
    REFERENCE.append(load_reference(raw))
    people = _people(raw)
    cands = _candidates(raw)
    rng = np.random.default_rng(args.seed)
    revisions = _has_revisions()
    print(f"code under test: {'with' if revisions else 'without'} revisions")

    if args.scenario in ("one-objector", "all"):
        print("\n== one objector, same as-at date ==")
        as_at = date(2026, 3, 31)
        store = Store(f"sqlite:///{out / 'one.sqlite'}", upgrade=True)
        child = (
            cands.filter(
                pl.col("cp_n1")
                & pl.col("sources").list.contains("front_door")
                & pl.col("sources").list.contains("early_help")
            )
            .join(people.filter(pl.col("role") == "CHILD").select("person_id"), on="person_id")
            .sort("person_id")["person_id"][0]
        )
        a = _with_register(raw, out / "raw_one_a", as_at, None)
        r1 = _run(a, out / "work_one", store, as_at)
        p1, c1 = _publish_all(store, r1)
        extra = _objection_rows(people, [child], [as_at - timedelta(days=10)])
        b = _with_register(raw, out / "raw_one_b", as_at, extra)
        targets = _person_values(out / "work_one", as_at, [])  # filled below
        r2 = _run(b, out / "work_one_b", store, as_at)
        p2, c2 = _publish_all(store, r2)
        cmp = compare(p1, p2, closed_before=as_at)
        print("  " + cmp.summary())
        t1 = true_cells(c1, cmp.changed_cells)
        t2 = true_cells(c2, cmp.changed_cells)
        with_him = sum(t1[k] != t2[k] for k in cmp.changed_cells)
        print(
            f"  changed cells whose true count changed (contain the objector): {with_him:,} of {cmp.changed:,}"
        )
        # His pseudonym: objected in the second run, not in the first.
        new_obj = _new_objectors(out / "work_one", out / "work_one_b")
        ids = new_obj["person_id"].to_list()
        targets = _person_values(out / "work_one", as_at, ids)
        print(f"  objector's true values: {targets}")
        _attack(p1, p2, targets, _priors(out / "work_one", as_at), as_at)
        store.dispose()

    if args.scenario in ("realistic", "all"):
        print("\n== realistic pair: as-at moves three months, six new objectors ==")
        a_date, b_date = date(2025, 12, 31), date(2026, 3, 31)
        store = Store(f"sqlite:///{out / 'real.sqlite'}", upgrade=True)
        pool = (
            cands.filter(
                pl.col("sources").list.contains("front_door")
                | pl.col("sources").list.contains("social_care")
            )
            .sort("person_id")["person_id"]
            .to_list()
        )
        six = [str(x) for x in rng.choice(pool, 6, replace=False)]
        received = [a_date + timedelta(days=int(d)) for d in rng.integers(1, 90, 6)]
        a = _with_register(raw, out / "raw_real_a", a_date, None)
        r1 = _run(a, out / "work_real", store, a_date)
        p1, _ = _publish_all(store, r1)
        extra = _objection_rows(people, six, received)
        b = _with_register(raw, out / "raw_real_b", b_date, extra)
        r2 = _run(b, out / "work_real_b", store, b_date)
        p2, _ = _publish_all(store, r2)
        cmp = compare(p1, p2, closed_before=a_date)
        print("  routine: " + cmp.summary())
        new_obj = _new_objectors(out / "work_real", out / "work_real_b")
        ids = new_obj["person_id"].to_list()
        targets = _person_values(out / "work_real", a_date, ids)
        print(f"  {len(ids)} new objectors")
        priors = _priors(out / "work_real", a_date)
        _attack(p1, p2, targets, priors, a_date)
        if revisions:
            print("\n== revision after the realistic pair ==")
            r3 = _run(b, out / "work_real_c", store, b_date, revision=True)
            p3, _ = _publish_all(store, r3)
            cmp = compare(p2, p3, closed_before=b_date)
            print("  revision: " + cmp.summary())
            _attack(p2, p3, targets, priors, b_date)
        store.dispose()

    if args.scenario in ("trials", "all") and revisions:
        thresholds = [int(x) for x in args.materiality.split(",") if x]
        _trials(
            raw, out, args.trials, args.seed, args.modes.split(","), thresholds, args.background
        )


def _trials(
    raw: Path,
    out: Path,
    n: int,
    seed: int,
    modes: list[str],
    thresholds: list[int],
    background: bool = False,
) -> None:
    """Many revisions, each removing a batch of two households and six people."""
    from tests.revision_trials import draw_batches, run_trials, units_per_person

    label = " on top of three months of late records and corrections" if background else ""
    print(f"\n== {n} revisions, each removing a different batch{label} ==")
    as_at = date(2026, 3, 31)
    work = out / ("work_trials_bg" if background else "work_trials")
    base_store: Path | None = None
    if background:
        base_store = out / "trials_bg.sqlite"
        if not base_store.exists():
            store = Store(f"sqlite:///{base_store}", upgrade=True)
            earlier = date(2025, 12, 31)
            _run(
                _with_register(raw, out / "raw_bg_a", earlier, None),
                out / "work_bg_a",
                store,
                earlier,
            )
            _run(_with_register(raw, out / "raw_bg_b", as_at, None), work, store, as_at)
            with store.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            store.dispose()
    elif not (work / "zone_b" / "persons.parquet").exists():
        store = Store(f"sqlite:///{out / 'trials_run.sqlite'}", upgrade=True)
        _run(_with_register(raw, out / "raw_trials", as_at, None), work, store, as_at)
        store.dispose()
    persons = pl.read_parquet(work / "zone_b" / "persons.parquet")
    events = {p.stem: pl.read_parquet(p) for p in (work / "zone_b" / "events").glob("*.parquet")}
    reference = load_reference(raw)
    frames, _ = derive_all(ZoneBFrames(persons, events, as_at, reference))
    counted = set(units_per_person(frames)["person_id"].to_list())
    batches = draw_batches(persons, counted, trials=n, households=2, individuals=6, seed=seed)
    (out / "trials").mkdir(exist_ok=True)
    import dataclasses

    runs = [(m, None) for m in modes if m != "revision"] + [
        ("revision", m) for m in (thresholds or [POLICY.revisions.materiality])
    ]
    for mode, m in runs:
        t = time.perf_counter()
        policy = POLICY
        if m is not None:
            policy = dataclasses.replace(
                POLICY, revisions=dataclasses.replace(POLICY.revisions, materiality=m)
            )
            print(f"(revision with materiality {m})")
        report = run_trials(
            persons, events, as_at=as_at, secret=SECRET, policy=policy,
            workdir=out / "trials", batches=batches, mode=mode, max_cell_dims=MAX_DIMS,
            base_store=base_store, reference=reference,
        )  # fmt: skip
        for line in report.lines():
            print(line)
        print(f"  ({time.perf_counter() - t:.0f} s)")


if __name__ == "__main__":
    main()
