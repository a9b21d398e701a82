"""`generate_county`: the whole synthetic county, written as one extract per source.

Layout of the output folder:
    <out>/<source>.csv|parquet    one per source contract (zone A: identifiable)
    <out>/reference/postcode_lookup.csv   postcode -> LSOA -> ward -> locality
                                          (public reference data, as the ONS
                                          postcode directory would be)
    <out>/reference/dbs_trace_response.csv the NHS numbers a Demographics Batch
                                          Service trace returned for records
                                          without one (synthetic/dbs.py)
    <out>/reference/population_estimates.csv  ONS mid-year estimates layout, by
                                          LSOA, sex and age (synthetic/reference.py)
    <out>/extract.json            the declared extract date and each source's
                                  coverage start
    <out>/truth/                  ground truth; never read by the pipeline,
                                  only by quality measurement and tests
        people.csv, families.csv, address_history.csv, records.csv,
        manifest.json
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
from faker import Faker

from pipelines.contracts import CONTRACTS, SourceContract, get_contract
from pipelines.ingest import validate
from synthetic.contacts import with_school_contacts
from synthetic.dbs import RESPONSE_FILE, simulate_trace
from synthetic.events import build_events
from synthetic.geography import County, build_county
from synthetic.household import with_household_evidence
from synthetic.noise import DEFAULT_NOISE, NoiseRates
from synthetic.population import WINDOW_END, WINDOW_START, Population, build_population
from synthetic.practitioners import with_lead_practitioners
from synthetic.reference import extract_manifest, population_estimates
from synthetic.render import render_source, render_stream
from synthetic.returns import add_returns

LOCALES = ("en_GB", "en_IE", "pl_PL", "en_IN", "en_PK", "en_NG")
GENERATOR_VERSION = "1"


@dataclass(frozen=True)
class CountySummary:
    people: int
    households: int
    rows: dict[str, int]
    out: Path

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def population_for(
    n_people: int, seed: int, *, geo_seed: int | None = None
) -> tuple[Population, County, np.random.Generator]:
    """The county's people and households, and its geography, as `generate_county` draws
    them, with the random generator it goes on drawing from. `geo_seed` (default: the
    county's own) seeds the addresses' generator."""
    rng = np.random.default_rng(seed)
    fakers: dict[str, Faker] = {}
    for i, loc in enumerate(LOCALES):
        fk = Faker(loc)
        fk.seed_instance(seed * 1000 + i)
        fakers[loc] = fk
    geo_faker = Faker("en_GB")
    geo_faker.seed_instance(seed * 1000 + 999 if geo_seed is None else geo_seed)
    county = build_county(n_people, int(n_people / 2.2) + 50, rng, geo_faker)
    return build_population(n_people, rng, fakers, county, seed=seed), county, rng


def generate_county(
    n_people: int,
    seed: int,
    out: Path,
    *,
    fmt: Literal["csv", "parquet"] = "csv",
    rates: NoiseRates = DEFAULT_NOISE,
) -> CountySummary:
    if n_people < 200:
        raise ValueError("a county needs at least 200 people")
    pop, county, rng = population_for(n_people, seed)
    events = build_events(pop, seed)

    ev = dict(events.by_source)
    ev["early_help"] = with_lead_practitioners(ev["early_help"], seed).with_columns(
        pl.format("EP{}", pl.col("episode_no").cast(pl.Utf8).str.zfill(6)).alias("episode_id")
    )
    ev["police"] = ev["police"].with_columns(
        pl.format("INC{}", pl.col("_inc").cast(pl.Utf8).str.zfill(7)).alias("incident_ref")
    )
    n_hh = pop.households.height
    n_p = pop.people.height
    extras = {
        "ehm_family_ref": pl.DataFrame(
            {
                "household_index": np.arange(n_hh),
                "ehm_family_ref": [f"FAM{x:06d}" for x in rng.permutation(n_hh)],
            }
        ),
        "lcs_person_id": pl.DataFrame(
            {
                "pidx": np.arange(n_p, dtype=np.int64),
                "lcs_person_id": [f"LCS{x:07d}" for x in rng.permutation(n_p)],
            }
        ),
    }

    out.mkdir(parents=True, exist_ok=True)
    truth_dir = out / "truth"
    ref_dir = out / "reference"
    truth_dir.mkdir(exist_ok=True)
    ref_dir.mkdir(exist_ok=True)

    # The statutory returns (CIN census XML, SSDA903 CSVs) from the same social care truth;
    # their own random stream leaves every other extract as it was.
    ev["social_care"], returns_truth = add_returns(
        out, ev["social_care"], pop, county, extras["lcs_person_id"], seed
    )
    ev["school_census"] = with_school_contacts(ev["school_census"], pop, county, rates, seed)
    rows: dict[str, int] = {}
    truths = [returns_truth]
    requests = []
    for name in CONTRACTS:
        r = render_source(name, ev[name], pop, county, rates, render_stream(seed, name), extras)
        # The trace request is built from the contract's columns, before the household
        # evidence is added: a council traces with the demographics it links on.
        requests.append(trace_requests(r.extract, get_contract(name)))
        extract = with_household_evidence(name, r, pop, rates, seed)
        _write(extract, out / f"{name}.{fmt}", fmt)
        rows[name] = extract.height
        truths.append(r.truth)

    _write(pl.concat(truths), truth_dir / f"records.{fmt}", fmt)
    _write(
        pop.people.drop("household_index").with_columns(pl.col("dob").dt.strftime("%Y-%m-%d")),
        truth_dir / f"people.{fmt}",
        fmt,
    )
    fams = events.families.join(
        pop.households.select("family_id", "household_type", "risk", "deprivation"), on="family_id"
    ).with_columns(pl.col("onset").dt.strftime("%Y-%m-%d"))
    _write(fams, truth_dir / f"families.{fmt}", fmt)
    hist = (
        pop.address_history.join(
            pop.households.select("household_index", "family_id"), on="household_index"
        )
        .join(county.addresses, on="address_id")
        .select("family_id", "address_id", "moved_in", "address_line1", "postcode", "lsoa_code")
        .with_columns(pl.col("moved_in").dt.strftime("%Y-%m-%d"))
    )
    _write(hist, truth_dir / f"address_history.{fmt}", fmt)

    lookup = (
        county.lookup()
        .join(county.lsoas.select("lsoa_code", "lsoa"), on="lsoa_code")
        .join(county.wards.select("ward_code", "ward"), on="ward_code")
        .join(county.localities, on="locality_code")
        .select(
            "postcode",
            "lsoa_code",
            "lsoa",
            "ward_code",
            "ward",
            "locality_code",
            "locality",
            "county_code",
        )
        .sort("postcode")
    )
    lookup.write_csv(ref_dir / "postcode_lookup.csv")
    register = pop.people.select(
        "nhs_number", "forename", "surname", "dob", "sex", "family_id"
    ).join(
        hist.group_by("family_id").agg(pl.col("postcode").unique().alias("postcodes")),
        on="family_id",
        how="left",
    )
    simulate_trace(pl.concat(requests), register).write_csv(ref_dir / RESPONSE_FILE)
    population_estimates(pop, county).write_csv(ref_dir / "population_estimates.csv")
    (out / "extract.json").write_text(extract_manifest())
    manifest = {
        "generator_version": GENERATOR_VERSION,
        "people": n_p,
        "households": n_hh,
        "seed": seed,
        "format": fmt,
        "window_start": str(WINDOW_START),
        "window_end": str(WINDOW_END),
        "rows": rows,
        "noise": {k: v for k, v in rates.__dict__.items()},
    }
    (truth_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return CountySummary(people=n_p, households=n_hh, rows=rows, out=out)


def trace_requests(extract: pl.DataFrame, contract: SourceContract) -> pl.DataFrame:
    """The DBS request a council would send: standardised demographics of every usable
    record that has a name and date of birth but no valid NHS number."""
    cols = set(contract.column_names)
    if not {"forename", "surname", "dob"} <= cols:
        return pl.DataFrame(schema=_REQUEST_SCHEMA)
    res = validate(extract, contract, file=Path(contract.name), as_at=date(2100, 1, 1))
    acc = res.accepted
    if "nhs_number" in acc.columns:
        acc = acc.filter(pl.col("nhs_number").is_null())
    return acc.filter(pl.col("dob").is_not_null()).select(
        "source",
        "record_id",
        "forename",
        "surname",
        "dob",
        "sex",
        (pl.col("postcode") if "postcode" in acc.columns else pl.lit(None, pl.Utf8)).alias(
            "postcode"
        ),
    )


_REQUEST_SCHEMA = {
    "source": pl.Utf8,
    "record_id": pl.Utf8,
    "forename": pl.Utf8,
    "surname": pl.Utf8,
    "dob": pl.Date,
    "sex": pl.Utf8,
    "postcode": pl.Utf8,
}


def _write(df: pl.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "csv":
        df.write_csv(path)
    else:
        # Fixed settings so that the same seed gives byte-identical files.
        df.write_parquet(path, compression="zstd", statistics=False)
