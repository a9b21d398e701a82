"""Households, people, identifiers, births and house moves.

Everything is drawn with numpy from one seeded generator so that a county of
300,000 people takes seconds; Faker (seeded) supplies the pools of names and
places that numpy then samples from. The one exception: a forename that someone
earlier in the household already has is redrawn from a stream of its own
(`distinct_in_household`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from faker import Faker

from pipelines.identifiers import (
    NI_BAD_PREFIXES,
    NI_PREFIX_FIRST,
    NI_PREFIX_SECOND,
    UPN_CHECK_LETTERS,
    nhs_check_digits_vectorised,
)
from synthetic.geography import County

WINDOW_START = np.datetime64("2021-04-01")
WINDOW_END = np.datetime64("2026-03-31")
WINDOW_DAYS = int((WINDOW_END - WINDOW_START).astype(int)) + 1
YEAR = 365.25
LA_CODE = "999"  # fictional local authority number used in UPNs
# The stream that redraws a forename someone earlier in the household already has:
# `SeedSequence(seed, spawn_key=(FORENAME_STREAM,))`, its own stream so that the rule
# changes only the names it must and every other draw of the population stays as it was.
# Other first elements: 17 the events (synthetic/events.py), 18 the renderer.
FORENAME_STREAM = 19

# Household types: (probability, adults, child count range, adult ages).
HOUSEHOLD_TYPES: dict[str, float] = {
    "single_working_age": 0.17,
    "single_older": 0.12,
    "couple_no_children": 0.17,
    "older_couple": 0.10,
    "couple_with_children": 0.23,
    "lone_parent": 0.11,
    "adult_children_at_home": 0.10,
}

# Ethnic group mix of the fictional county, with the Faker locale whose names
# fit each group (a crude but useful source of name variety and diacritics).
ETHNIC_MIX: tuple[tuple[str, float, str], ...] = (
    ("WBRI", 0.78, "en_GB"),
    ("WIRI", 0.01, "en_IE"),
    ("WOTH", 0.05, "pl_PL"),
    ("WROM", 0.003, "en_GB"),
    ("MWBC", 0.012, "en_GB"),
    ("MWBA", 0.006, "en_GB"),
    ("MWAS", 0.008, "en_GB"),
    ("MOTH", 0.008, "en_GB"),
    ("AIND", 0.025, "en_IN"),
    ("APKN", 0.025, "en_PK"),
    ("ABAN", 0.008, "en_IN"),
    ("AOTH", 0.008, "en_IN"),
    ("CHNE", 0.006, "en_GB"),
    ("BAFR", 0.02, "en_NG"),
    ("BCRB", 0.006, "en_GB"),
    ("BOTH", 0.003, "en_NG"),
    ("OOTH", 0.006, "en_GB"),
    ("REFU", 0.003, "en_GB"),
    ("NOBT", 0.003, "en_GB"),
)


@dataclass(frozen=True)
class Population:
    people: pl.DataFrame
    households: pl.DataFrame
    address_history: pl.DataFrame  # household_id, address_id, moved_in (date)


def first_two_adults(pop: Population, *, women_first: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per household (by index): its first and second adult's person index, -1 where there
    is none. Adults are in person order within a household (the generator puts the woman
    first in a couple); `women_first` also sorts every woman before every man."""
    people = pop.people
    p_hh = people["household_index"].to_numpy()
    adults = np.flatnonzero(people["role"].to_numpy() == "ADULT")
    keys: list[np.ndarray] = [adults]
    if women_first:
        keys.append(people["sex"].to_numpy()[adults] != "F")
    keys.append(p_hh[adults])
    order = adults[np.lexsort(tuple(keys))]
    first = np.full(pop.households.height, -1)
    second = np.full(pop.households.height, -1)
    hh_a = p_hh[order]
    is_first = np.r_[True, hh_a[1:] != hh_a[:-1]]
    first[hh_a[is_first]] = order[is_first]
    rest = order[~is_first]
    second[p_hh[rest][::-1]] = rest[::-1]
    return first, second


def days(d: np.ndarray | int) -> np.ndarray:
    return WINDOW_START + np.asarray(d).astype("timedelta64[D]")


def build_population(
    n_people: int,
    rng: np.random.Generator,
    fakers: dict[str, Faker],
    county: County,
    *,
    seed: int,
) -> Population:
    """`seed` is the county's seed: the forename redraws take their own stream from it."""
    types = list(HOUSEHOLD_TYPES)
    probs = np.array([HOUSEHOLD_TYPES[t] for t in types])
    probs = probs / probs.sum()
    # Draw more households than needed, then keep just enough for n_people.
    est = int(n_people / 2.2) + 50
    htype = rng.choice(len(types), size=est, p=probs)
    n_kids = np.zeros(est, dtype=np.int64)
    cwc = htype == types.index("couple_with_children")
    lone = htype == types.index("lone_parent")
    n_kids[cwc] = rng.choice([1, 2, 3, 4], size=cwc.sum(), p=[0.40, 0.40, 0.15, 0.05])
    n_kids[lone] = rng.choice([1, 2, 3], size=lone.sum(), p=[0.50, 0.35, 0.15])
    adc = htype == types.index("adult_children_at_home")
    n_young = np.where(adc, rng.choice([1, 2], size=est, p=[0.7, 0.3]), 0)
    single = np.isin(
        htype,
        [
            types.index("single_working_age"),
            types.index("single_older"),
            types.index("lone_parent"),
        ],
    )
    n_adults = np.where(single, 1, 2)
    size = n_adults + n_kids + n_young
    # Births in the window add about 7% (as many as the children who turn 18 in it), so
    # households are drawn for the rest.
    keep = int(np.searchsorted(np.cumsum(size), n_people * 0.93) + 1)
    htype, n_kids, n_young, n_adults, size = (
        a[:keep] for a in (htype, n_kids, n_young, n_adults, size)
    )
    n_hh = keep
    lone = htype == types.index("lone_parent")

    # Household-level draws: ethnicity, latent risk, address.
    eth_codes = np.array([e[0] for e in ETHNIC_MIX])
    eth_p = np.array([e[1] for e in ETHNIC_MIX])
    hh_eth = rng.choice(len(eth_codes), size=n_hh, p=eth_p / eth_p.sum())
    n_addr = county.addresses.height
    addr_perm = rng.permutation(n_addr)
    if n_addr < n_hh:
        raise ValueError("county has fewer addresses than households")
    hh_addr = addr_perm[:n_hh]
    spare_addr = addr_perm[n_hh:]
    lsoa_dep = dict(
        zip(county.lsoas["lsoa_code"].to_list(), county.lsoas["deprivation"].to_list(), strict=True)
    )
    addr_lsoa = county.addresses["lsoa_code"].to_numpy()
    hh_dep = np.array([lsoa_dep[c] for c in addr_lsoa[hh_addr]])
    # Family risk: part place (deprivation), part family; drives every need.
    hh_risk = 0.45 * hh_dep + rng.normal(0, 1.0, n_hh)

    # People: expand households.
    hh_of = np.repeat(np.arange(n_hh), size)
    pos = np.arange(len(hh_of)) - np.repeat(np.cumsum(size) - size, size)
    n_adults_p = n_adults[hh_of]
    is_adult = pos < n_adults_p
    is_kid = (pos >= n_adults_p) & (pos < n_adults_p + n_kids[hh_of])
    is_young = pos >= n_adults_p + n_kids[hh_of]
    n_pp = len(hh_of)
    ht = htype[hh_of]

    # Ages at WINDOW_START (years, fractional).
    age = np.zeros(n_pp)
    older = np.isin(ht, [types.index("single_older"), types.index("older_couple")])
    # Children first: ages 0-17; parents' ages follow from the oldest child.
    age[is_kid] = rng.uniform(0, 18, is_kid.sum())
    oldest_kid = np.zeros(n_hh)
    np.maximum.at(oldest_kid, hh_of[is_kid], age[is_kid])
    age[is_young] = rng.uniform(18, 25, is_young.sum())
    oldest_young = np.zeros(n_hh)
    np.maximum.at(oldest_young, hh_of[is_young], age[is_young])
    base_parent = np.maximum(oldest_kid, oldest_young)
    parent_age = base_parent + rng.uniform(19, 38, n_hh)
    a = is_adult
    age[a] = parent_age[hh_of[a]] + np.where(pos[a] == 1, rng.normal(2, 3, a.sum()), 0)
    lone_wa = (
        np.isin(ht, [types.index("single_working_age"), types.index("couple_no_children")]) & a
    )
    age[lone_wa] = rng.uniform(18, 65, lone_wa.sum())
    age[older & a] = rng.uniform(65, 95, (older & a).sum())
    partner = older & a & (pos == 1)
    first_age = np.zeros(n_hh)
    first_age[hh_of[older & a & (pos == 0)]] = age[older & a & (pos == 0)]
    age[partner] = np.clip(first_age[hh_of[partner]] + rng.normal(-1, 3, partner.sum()), 65, 99)
    age = np.clip(age, 0, 99)

    sex = np.where(rng.random(n_pp) < 0.5, "F", "M")
    # Most couples are a man and a woman; lone parents mostly mothers.
    sex[a & (pos == 0) & (n_adults_p == 2)] = "F"
    sex[a & (pos == 1)] = np.where(rng.random((a & (pos == 1)).sum()) < 0.96, "M", "F")
    sex[lone[hh_of] & a] = np.where(rng.random((lone[hh_of] & a).sum()) < 0.9, "F", "M")

    dob = WINDOW_START - (age * YEAR).astype("timedelta64[D]")

    # Births during the window to households with a woman of childbearing age.
    mother_age = np.where(a & (sex == "F"), age, -1.0)
    hh_mother_age = np.full(n_hh, -1.0)
    np.maximum.at(hh_mother_age, hh_of, mother_age)
    can_birth = (hh_mother_age >= 18) & (hh_mother_age <= 42) & (n_adults == 2) | (
        (hh_mother_age >= 18) & (hh_mother_age <= 40) & lone
    )
    # As many births as children turning 18 in the window, so the number of children
    # stays steady from year to year (as England's has, within a few percent).
    ageing_out = int((is_kid & (age >= 18 - WINDOW_DAYS / YEAR)).sum())
    birth_rate = ageing_out / max(int(can_birth.sum()), 1) / (WINDOW_DAYS / YEAR)
    births_per_hh = np.where(can_birth, rng.poisson(birth_rate * WINDOW_DAYS / YEAR, n_hh), 0)
    births_per_hh = np.minimum(births_per_hh, 3)
    b_hh = np.repeat(np.arange(n_hh), births_per_hh)
    b_day = rng.integers(0, WINDOW_DAYS, len(b_hh))
    b_dob = days(b_day)
    b_sex = np.where(rng.random(len(b_hh)) < 0.512, "M", "F")

    person_hh = np.concatenate([hh_of, b_hh])
    person_dob = np.concatenate([dob, b_dob])
    person_sex = np.concatenate([sex, b_sex])
    role = np.concatenate(
        [
            np.where(is_adult, "ADULT", np.where(is_kid, "CHILD", "YOUNG_ADULT")),
            np.full(len(b_hh), "CHILD"),
        ]
    )
    born_in_window = np.concatenate([np.zeros(n_pp, bool), np.ones(len(b_hh), bool)])
    # Order people by household so ids read naturally in the truth files.
    order = np.lexsort((person_dob, person_hh))
    person_hh, person_dob, person_sex, role, born_in_window = (
        x[order] for x in (person_hh, person_dob, person_sex, role, born_in_window)
    )
    n_total = len(person_hh)
    person_eth = eth_codes[hh_eth[person_hh]]
    # Some children in every group are of mixed heritage or recorded differently.
    mixed = (role == "CHILD") & (rng.random(n_total) < 0.04)
    person_eth = np.where(mixed, rng.choice(["MWBC", "MWBA", "MWAS", "MOTH"], n_total), person_eth)
    locale = np.array([e[2] for e in ETHNIC_MIX])[hh_eth[person_hh]]

    forename, surname = _names(
        rng, forename_stream(seed), fakers, person_hh, person_sex, role, locale, n_hh
    )

    nhs = _nhs_numbers(rng, n_total)
    age_at_end = (WINDOW_END - person_dob).astype(int) / YEAR
    ni = np.where(age_at_end >= 16, _ni_numbers(rng, n_total), "")
    age_at_start = (WINDOW_START - person_dob).astype(int) / YEAR
    school_age_sometime = (age_at_end >= 4) & (age_at_start < 16)
    upn = np.where(school_age_sometime, _upns(rng, n_total), "")

    people = pl.DataFrame(
        {
            "person_id": [f"P{i + 1:07d}" for i in range(n_total)],
            "family_id": [f"F{h + 1:06d}" for h in person_hh],
            "household_index": person_hh,
            "role": role,
            "sex": person_sex,
            "dob": person_dob,
            "forename": forename,
            "surname": surname,
            "ethnicity": person_eth,
            "nhs_number": nhs,
            "ni_number": ni,
            "upn": upn,
            "born_in_window": born_in_window,
        }
    ).with_columns(pl.col("dob").cast(pl.Date))

    households = pl.DataFrame(
        {
            "household_index": np.arange(n_hh),
            "family_id": [f"F{h + 1:06d}" for h in range(n_hh)],
            "household_type": np.array(types)[htype],
            "risk": np.round(hh_risk, 4),
            "deprivation": np.round(hh_dep, 4),
        }
    )

    # House moves: more often for families under strain (housing need follows risk).
    move_rate = 0.07 * np.exp(0.35 * hh_risk)
    n_moves = np.minimum(rng.poisson(move_rate * WINDOW_DAYS / YEAR), 4)
    total_moves = int(n_moves.sum())
    if total_moves > len(spare_addr):
        n_moves = np.zeros_like(n_moves)
        total_moves = 0
    mv_hh = np.repeat(np.arange(n_hh), n_moves)
    mv_day = rng.integers(30, WINDOW_DAYS - 30, total_moves)
    hist = (
        pl.DataFrame(
            {
                "household_index": np.concatenate([np.arange(n_hh), mv_hh]),
                "address_id": np.concatenate([hh_addr, spare_addr[:total_moves]]),
                "moved_in": np.concatenate([days(np.full(n_hh, -int(10 * YEAR))), days(mv_day)]),
            }
        )
        .with_columns(pl.col("moved_in").cast(pl.Date))
        .sort("household_index", "moved_in")
    )
    return Population(people, households, hist)


def forename_stream(seed: int) -> np.random.Generator:
    """The generator that redraws household forenames for the county with this seed."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(FORENAME_STREAM,)))


def _names(
    rng: np.random.Generator,
    redraw_rng: np.random.Generator,
    fakers: dict[str, Faker],
    hh: np.ndarray,
    sex: np.ndarray,
    role: np.ndarray,
    locale: np.ndarray,
    n_hh: int,
) -> tuple[np.ndarray, np.ndarray]:
    n = len(hh)
    forename = np.empty(n, dtype=object)
    surname_hh = np.empty(n_hh, dtype=object)
    hh_locale = np.empty(n_hh, dtype=object)
    hh_locale[hh] = locale
    pools: dict[tuple[str, bool], np.ndarray] = {}
    for loc, fk in sorted(fakers.items()):
        f_pool = np.array([fk.first_name_female() for _ in range(600)], dtype=object)
        m_pool = np.array([fk.first_name_male() for _ in range(600)], dtype=object)
        s_pool = np.array([fk.last_name() for _ in range(1500)], dtype=object)
        pools[(loc, True)], pools[(loc, False)] = f_pool, m_pool
        sel = locale == loc
        fem = sel & (sex == "F")
        mal = sel & (sex != "F")
        forename[fem] = f_pool[rng.integers(0, len(f_pool), fem.sum())]
        forename[mal] = m_pool[rng.integers(0, len(m_pool), mal.sum())]
        hsel = hh_locale == loc
        surname_hh[hsel] = s_pool[rng.integers(0, len(s_pool), hsel.sum())]
    distinct_in_household(forename, hh, sex == "F", locale, pools, redraw_rng)
    surname = surname_hh[hh].copy()
    # Step-families and unmarried couples: some members carry another surname.
    other = (rng.random(n) < 0.12) & (role != "YOUNG_ADULT")
    surname[other] = surname_hh[rng.integers(0, n_hh, other.sum())]
    return forename.astype(str), surname.astype(str)


def distinct_in_household(
    forename: np.ndarray,
    hh: np.ndarray,
    female: np.ndarray,
    locale: np.ndarray,
    pools: dict[tuple[str, bool], np.ndarray],
    rng: np.random.Generator,
) -> None:
    """In place: nobody shares a forename with anyone in their household. People are in
    household order, oldest first; a person whose forename someone earlier in the household
    already has is redrawn from their own pool (locale, sex) until nobody earlier has it.

    Parents rarely give two children one name, and two relatives with one full name at one
    address, told apart only by a date of birth that the noise may blur, are the pairs that
    linkage wrongly merges (issue 16: 74% of the wrong pairs at 20,000 people, seed 7, were
    two sisters or a mother and daughter with the same forename and surname). A real council
    does see a father and son both named John Smith; docs/linkage.md says what leaving them
    out flatters."""
    for _ in range(100):
        seen = pl.DataFrame({"hh": hh, "forename": forename.astype(str)}).select(
            pl.struct("hh", "forename").is_first_distinct()
        )
        clash = ~seen.to_series().to_numpy()
        if not clash.any():
            return
        for (loc, is_female), pool in pools.items():
            sel = clash & (locale == loc) & (female == is_female)
            forename[sel] = pool[rng.integers(0, len(pool), int(sel.sum()))]
    # Only a pool with fewer distinct names than a household has members of one sex could
    # get here; the smallest pool (en_NG: about 20 names a sex) is far from it.
    raise RuntimeError("synthetic.population: a household's forenames could not be made distinct")


def _nhs_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unique, checksum-valid NHS numbers starting with 9, a range never issued to patients."""
    out: list[np.ndarray] = []
    seen: set[int] = set()
    need = n
    while need > 0:
        body = rng.integers(0, 10**8, int(need * 1.3) + 10)
        digits = np.zeros((len(body), 9), dtype=np.int64)
        digits[:, 0] = 9  # 999 000 0000 range is reserved for testing
        rem = body.copy()
        for j in range(8, 0, -1):
            digits[:, j] = rem % 10
            rem //= 10
        check = nhs_check_digits_vectorised(digits)
        ok = check >= 0
        nums = (900000000 + body) * 10 + np.where(ok, check, 0)
        nums = nums[ok]
        fresh = [x for x in dict.fromkeys(nums.tolist()) if x not in seen]
        fresh = fresh[:need]
        seen.update(fresh)
        out.append(np.array(fresh, dtype=np.int64))
        need -= len(fresh)
    return np.concatenate(out).astype(str)


def _ni_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    firsts = np.array(list(NI_PREFIX_FIRST))
    seconds = np.array(list(NI_PREFIX_SECOND))
    a = firsts[rng.integers(0, len(firsts), n)]
    b = seconds[rng.integers(0, len(seconds), n)]
    prefix = np.char.add(a, b)
    bad = np.isin(prefix, list(NI_BAD_PREFIXES))
    prefix[bad] = "AB"
    digits = np.char.zfill(rng.integers(0, 10**6, n).astype(str), 6)
    suffix = np.array(list("ABCD"))[rng.integers(0, 4, n)]
    return np.char.add(np.char.add(prefix, digits), suffix)


def _upns(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unique UPNs: LA 999, a school number, two-digit year, serial, with check letter."""
    code = rng.choice(21_000_000, size=n, replace=False)
    school = 2000 + code // 21_000
    rem = code % 21_000
    body = int(LA_CODE) * 10**9 + school * 10**5 + (5 + rem // 1000) * 10**3 + rem % 1000
    digits = np.stack([(body // 10**p) % 10 for p in range(11, -1, -1)], axis=1)
    # Weighted sum mod 23 of characters 2..13 (all digits here).
    check = (digits * np.arange(2, 14)).sum(axis=1) % 23
    letters = np.array(list(UPN_CHECK_LETTERS))[check]
    return np.char.add(letters, np.char.zfill(body.astype(str), 12))
