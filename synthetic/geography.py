"""A fictional county: localities, wards, LSOAs, postcodes and addresses.

Codes use the letter X (no real GSS code or postcode area starts with XM or
X0), so nothing here can be mistaken for a real place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from faker import Faker

COUNTY_NAME = "Wealdmoor"
COUNTY_CODE = "X10000001"
POSTCODE_AREA = "XM"
LOCALITY_NAMES = (
    "Ashbourne Vale", "Brackenford", "Castlemere", "Dunholt",
    "Eldermoor", "Fenwick Marsh", "Greyhaven", "Hollinsby",
)  # fmt: skip
_UNIT_LETTERS = np.array(list("ABDEFGHJLNPQRSTUWXYZ"))
PEOPLE_PER_LSOA = 1500
HOUSEHOLDS_PER_POSTCODE = 15


@dataclass(frozen=True)
class County:
    localities: pl.DataFrame  # locality_code, locality
    wards: pl.DataFrame  # ward_code, ward, locality_code
    lsoas: pl.DataFrame  # lsoa_code, lsoa, ward_code, deprivation
    postcodes: pl.DataFrame  # postcode, lsoa_code
    addresses: pl.DataFrame  # address_id, address_line1, town, postcode, lsoa_code

    def lookup(self) -> pl.DataFrame:
        """postcode -> lsoa -> ward -> locality -> county, for generalisation."""
        return (
            self.postcodes.join(self.lsoas.select("lsoa_code", "ward_code"), on="lsoa_code")
            .join(self.wards.select("ward_code", "locality_code"), on="ward_code")
            .with_columns(pl.lit(COUNTY_CODE).alias("county_code"))
            .sort("postcode")
        )


def build_county(n_people: int, n_households: int, rng: np.random.Generator, fake: Faker) -> County:
    n_lsoa = max(8, round(n_people / PEOPLE_PER_LSOA))
    n_wards = max(6, n_lsoa // 4)
    n_loc = int(np.clip(n_wards // 6, 3, len(LOCALITY_NAMES)))

    localities = pl.DataFrame(
        {
            "locality_code": [f"X07{i + 1:06d}" for i in range(n_loc)],
            "locality": list(LOCALITY_NAMES[:n_loc]),
        }
    )
    # Every locality gets at least one ward, the rest spread at random.
    ward_loc = np.concatenate([np.arange(n_loc), rng.integers(0, n_loc, n_wards - n_loc)])
    ward_loc.sort()
    ward_names = _unique_names(fake, n_wards)
    wards = pl.DataFrame(
        {
            "ward_code": [f"X05{i + 1:06d}" for i in range(n_wards)],
            "ward": ward_names,
            "locality_code": [f"X07{j + 1:06d}" for j in ward_loc],
        }
    )
    lsoa_ward = np.concatenate([np.arange(n_wards), rng.integers(0, n_wards, n_lsoa - n_wards)])
    lsoa_ward.sort()
    # Deprivation varies by LSOA and is shared within a ward, as it is in the IMD.
    ward_dep = rng.normal(0, 0.7, n_wards)
    deprivation = ward_dep[lsoa_ward] + rng.normal(0, 0.7, n_lsoa)
    counters: dict[int, int] = {}
    lsoa_names = []
    for w in lsoa_ward:
        counters[int(w)] = counters.get(int(w), 0) + 1
        lsoa_names.append(
            f"{ward_names[w]} {counters[int(w)]:03d}{'ABCDEFGH'[counters[int(w)] % 8]}"
        )
    lsoas = pl.DataFrame(
        {
            "lsoa_code": [f"X01{i + 1:06d}" for i in range(n_lsoa)],
            "lsoa": lsoa_names,
            "ward_code": [f"X05{j + 1:06d}" for j in lsoa_ward],
            "deprivation": np.round(deprivation, 4),
        }
    )

    # Postcodes: districts belong to localities (XM1..), sectors and units below.
    n_postcodes = max(n_lsoa * 4, int(np.ceil(n_households * 1.3 / HOUSEHOLDS_PER_POSTCODE)))
    pc_lsoa = np.concatenate([np.arange(n_lsoa), rng.integers(0, n_lsoa, n_postcodes - n_lsoa)])
    pc_lsoa.sort()
    lsoa_loc = ward_loc[lsoa_ward]
    districts_per_loc = 4
    pc_loc = lsoa_loc[pc_lsoa]
    district = pc_loc * districts_per_loc + rng.integers(1, districts_per_loc + 1, n_postcodes)
    sector = rng.integers(0, 10, n_postcodes)
    unit_a = _UNIT_LETTERS[rng.integers(0, len(_UNIT_LETTERS), n_postcodes)]
    unit_b = _UNIT_LETTERS[rng.integers(0, len(_UNIT_LETTERS), n_postcodes)]
    postcode_strings = np.char.add(
        np.char.add(np.char.add(POSTCODE_AREA, district.astype(str)), " "),
        np.char.add(np.char.add(sector.astype(str), unit_a), unit_b),
    )
    postcodes = (
        pl.DataFrame(
            {
                "postcode": postcode_strings,
                "lsoa_code": [f"X01{j + 1:06d}" for j in pc_lsoa],
            }
        )
        # Collisions of random codes: keep the first, as Royal Mail would never reuse one.
        .unique(subset="postcode", keep="first", maintain_order=True)
    )

    # Addresses: one street per postcode, house numbers 1..m.
    n_pc = postcodes.height
    per_pc = rng.poisson(HOUSEHOLDS_PER_POSTCODE * 1.4, n_pc) + 2
    street_pool = _street_pool(fake, max(50, n_pc // 2))
    street_of_pc = np.array(street_pool)[rng.integers(0, len(street_pool), n_pc)]
    pc_idx = np.repeat(np.arange(n_pc), per_pc)
    house_no = np.concatenate([np.arange(1, m + 1) for m in per_pc])
    loc_names = np.array(localities["locality"].to_list())
    lsoa_town = loc_names[lsoa_loc]
    pc_lsoa_final = postcodes["lsoa_code"].str.slice(3).cast(pl.Int64).to_numpy() - 1
    addresses = pl.DataFrame(
        {
            "address_id": np.arange(len(pc_idx), dtype=np.int64),
            "address_line1": np.char.add(
                np.char.add(house_no.astype(str), " "), street_of_pc[pc_idx]
            ),
            "town": lsoa_town[pc_lsoa_final[pc_idx]],
            "postcode": postcodes["postcode"].to_numpy()[pc_idx],
            "lsoa_code": postcodes["lsoa_code"].to_numpy()[pc_idx],
        }
    )
    return County(localities, wards, lsoas, postcodes, addresses)


def _unique_names(fake: Faker, n: int) -> list[str]:
    suffixes = ("field", "ton", "by", "ham", "wick", "ley", "worth", "stead", "bridge", "cote")
    seen: set[str] = set()
    out: list[str] = []
    i = 0
    while len(out) < n:
        base = fake.last_name()
        name = f"{base}{suffixes[i % len(suffixes)]}"
        i += 1
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


def _street_pool(fake: Faker, n: int) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    tries = 0
    while len(out) < n and tries < n * 20:
        tries += 1
        s = fake.street_name()
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out
