"""Reference data the synthetic county ships beside its extracts.

- `reference/population_estimates.csv`: the county's population in the long layout of
  ONS's mid-year estimates (`pipelines.reference` documents it), at LSOA level as
  ONS's small area estimates are, for every mid-year (30 June) in the window. The
  estimate is the synthetic truth: everyone living in the county on 30 June, at the
  address they lived at that day, by sex and single year of age (90 means 90+).
- `extract.json`: the date the extracts were "taken" (the end of the window) and each
  source's coverage start (the start of the window), as a council would declare them.
"""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import polars as pl

from pipelines.contracts import CONTRACTS
from synthetic.geography import COUNTY_CODE, COUNTY_NAME, County
from synthetic.population import WINDOW_END, WINDOW_START, Population

MAX_AGE = 90


def mid_years() -> list[int]:
    start, end = WINDOW_START.astype(object), WINDOW_END.astype(object)
    return [y for y in range(start.year, end.year + 1) if start <= date(y, 6, 30) <= end]


def population_estimates(pop: Population, county: County) -> pl.DataFrame:
    """Residents on 30 June of each mid-year by LSOA, sex and single year of age."""
    hist = (
        pop.address_history.join(
            county.addresses.select("address_id", "lsoa_code"), on="address_id", how="left"
        )
        .select("household_index", "moved_in", "lsoa_code")
        .sort("moved_in")
    )
    people = pop.people.select("household_index", "sex", "dob")
    lsoas = county.lsoas.select("lsoa_code", "lsoa")
    grid = lsoas.join(pl.DataFrame({"sex": ["M", "F"]}), how="cross").join(
        pl.DataFrame({"age": np.arange(MAX_AGE + 1, dtype=np.int64)}), how="cross"
    )
    out = grid
    for year in mid_years():
        mid = date(year, 6, 30)
        alive = people.filter(pl.col("dob") <= mid).with_columns(pl.lit(mid).alias("mid"))
        placed = alive.sort("mid").join_asof(
            hist,
            left_on="mid",
            right_on="moved_in",
            by="household_index",
            strategy="backward",
            check_sortedness=False,
        )
        birthday_passed = (pl.col("dob").dt.month() < mid.month) | (
            (pl.col("dob").dt.month() == mid.month) & (pl.col("dob").dt.day() <= mid.day)
        )
        age = (mid.year - pl.col("dob").dt.year() - (~birthday_passed).cast(pl.Int64)).clip(
            0, MAX_AGE
        )
        counts = (
            placed.with_columns(age.cast(pl.Int64).alias("age"))
            .group_by("lsoa_code", "sex", "age")
            .len(name=f"population_{year}")
        )
        out = out.join(counts, on=["lsoa_code", "sex", "age"], how="left")
    years = [c for c in out.columns if c.startswith("population_")]
    return out.select(
        pl.lit(COUNTY_CODE).alias("ladcode23"),
        pl.lit(COUNTY_NAME).alias("laname23"),
        pl.col("lsoa_code").alias("lsoa21cd"),
        pl.col("lsoa").alias("lsoa21nm"),
        pl.lit("E").alias("country"),
        "sex",
        "age",
        *[pl.col(c).fill_null(0).cast(pl.Int64) for c in years],
    ).sort("lsoa21cd", "sex", "age")


def extract_manifest() -> str:
    start = str(WINDOW_START.astype(object))
    doc = {
        "extract_date": str(WINDOW_END.astype(object)),
        "coverage_start": {name: start for name in CONTRACTS if name != "objections"},
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"
