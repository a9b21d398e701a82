"""Parent/carer contacts a school keeps for each pupil, with the noise real ones carry.

A school's management system holds, for every pupil, contacts in priority order: name,
relationship, address and telephone. They are entered when the child joins and updated
when a family tells the school, so they drift: the address before the family's last
move, a number that has since changed, no number at all. Contacts are not always the
household either: a parent who lives elsewhere, a grandparent. The family rule in
pipelines/link.py must cope with all of it, so all of it is here, drawn from its own
random stream (the other extracts do not change when this module does).

Telephone numbers are drawn from the UK's 04 range, which is not allocated to anyone.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from synthetic.geography import County
from synthetic.noise import NoiseRates, messy_postcode, misspell_names
from synthetic.population import WINDOW_START, Population, first_two_adults

# Rates per contact; tests/test_synthetic_noise.py measures them.
SECOND_ADULT_RECORDED = 0.85  # the other adult at home is contact 2
ABSENT_PARENT = 0.30  # a lone parent's pupil: contact 2 is a parent living elsewhere
RELATIVE = 0.15  # ... or a grandparent/relative living elsewhere
FATHER_FIRST = 0.2  # in a two-adult home, the father is priority 1
NO_CONTACTS = 0.02  # a pupil with no contact on file
CONTACT_ADDRESS_OUT_OF_DATE = 0.20  # the address as it was up to three years earlier
PHONE_MISSING = 0.12
PHONE_OUT_OF_DATE = 0.06  # a number the contact no longer uses
PHONE_FORMAT = 0.3  # spaces, +44, brackets
PUPIL_SURNAME_FOR_CONTACT = 0.05  # the school wrote the pupil's surname for the contact

CONTACT_FIELDS = ("forename", "surname", "relationship", "address_line1", "postcode", "phone")


def _phones(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unique numbers of the form 04xxx xxxxxx (11 digits, national form)."""
    body = rng.choice(10**9, size=n, replace=False)
    return np.char.add("04", np.char.zfill(body.astype(str), 9))


def _messy_phone(p: str, rng: np.random.Generator) -> str:
    kind = int(rng.integers(0, 3))
    if kind == 0:
        return f"{p[:5]} {p[5:]}"
    if kind == 1:
        return f"+44 {p[1:5]} {p[5:]}"
    return f"({p[:5]}) {p[5:8]}-{p[8:]}"


def with_school_contacts(
    school: pl.DataFrame,
    pop: Population,
    county: County,
    rates: NoiseRates,
    seed: int,
) -> pl.DataFrame:
    """`school` (pidx, census_day as days from the window start, ...) with contact1_* and
    contact2_* columns (CONTACT_FIELDS) added."""
    rng = np.random.default_rng([seed, 15])
    people = pop.people
    n_p = people.height
    p_hh = people["household_index"].to_numpy()
    role = people["role"].to_numpy()
    sex = people["sex"].to_numpy()
    forename = people["forename"].to_numpy().astype(object)
    surname = people["surname"].to_numpy().astype(object)
    htype = pop.households["household_type"].to_numpy()

    # Each household's adults: mother first where there are two (the generator puts a
    # woman first in couples), so "first" and "second" here are the usual priorities.
    first, second = first_two_adults(pop, women_first=False)
    n_hh = pop.households.height
    swap = (second >= 0) & (rng.random(n_hh) < FATHER_FIRST)
    first, second = np.where(swap, second, first), np.where(swap, first, second)

    # Per pupil (stable across years): who the two contacts are.
    pupils = np.unique(school["pidx"].to_numpy().astype(np.int64))
    h = p_hh[pupils]
    c1 = first[h]
    c2 = np.where(rng.random(len(pupils)) < SECOND_ADULT_RECORDED, second[h], -1)
    # Lone parents' pupils: the other parent or a relative, living in another household.
    lone = (second[h] < 0) & (c1 >= 0)
    draw = rng.random(len(pupils))
    men = np.flatnonzero((role == "ADULT") & (sex == "M"))
    older = np.flatnonzero(
        (role == "ADULT") & np.isin(htype[p_hh], ["single_older", "older_couple"])
    )
    absent = lone & (draw < ABSENT_PARENT)
    relative = lone & (draw >= ABSENT_PARENT) & (draw < ABSENT_PARENT + RELATIVE)
    c2 = np.where(absent, men[rng.integers(0, len(men), len(pupils))], c2)
    c2 = np.where(relative, older[rng.integers(0, len(older), len(pupils))], c2)
    none = rng.random(len(pupils)) < NO_CONTACTS
    c1 = np.where(none, -1, c1)
    c2 = np.where(none, -1, c2)
    elsewhere = absent | relative
    rel2 = np.where(absent, "PAR", np.where(relative, "REL", ""))

    def at_home(c: np.ndarray) -> np.ndarray:
        # A parent shares the pupil's surname more often than not; a different surname is
        # a step-parent or a parent who kept their own name.
        same = surname[np.maximum(c, 0)] == surname[pupils]
        return np.where(same | (rng.random(len(c)) < 0.4), "PAR", "STP")

    who = pl.DataFrame(
        {
            "pidx": pupils,
            "c1": c1,
            "c2": c2,
            "rel1": at_home(c1),
            "rel2": np.where(elsewhere, rel2, at_home(c2)),
        }
    )
    phone = _phones(rng, n_p)
    old_phone = _phones(rng, n_p)

    rows = school.select(
        pl.col("pidx").cast(pl.Int64), "census_day", pl.int_range(pl.len()).alias("_row")
    ).join(who, on="pidx", how="left")
    n = rows.height
    hist = (
        pop.address_history.join(
            county.addresses.select("address_id", "address_line1", "postcode"), on="address_id"
        )
        .select("household_index", "moved_in", "address_line1", "postcode")
        .sort("moved_in")
    )
    start = WINDOW_START.astype("datetime64[D]").item()
    out = school
    for k in (1, 2):
        c = rows[f"c{k}"].to_numpy()
        has = c >= 0
        cs = np.maximum(c, 0)
        stale = rng.random(n) < CONTACT_ADDRESS_OUT_OF_DATE
        back = np.where(stale, rng.integers(200, 1100, n), 0)
        when = pl.DataFrame(
            {
                "_row": np.arange(n),
                "household_index": p_hh[cs],
                "moved_in": pl.Series(rows["census_day"].to_numpy() - back).cast(pl.Int64),
            }
        ).with_columns((pl.lit(start) + pl.duration(days=pl.col("moved_in"))).alias("moved_in"))
        addr = (
            when.sort("moved_in")
            .join_asof(
                hist,
                on="moved_in",
                by="household_index",
                strategy="backward",
                check_sortedness=False,
            )
            .sort("_row")
        )
        f = forename[cs].copy()
        s = surname[cs].copy()
        pupil_surname = surname[rows["pidx"].to_numpy()]
        misspell_names(f, s, rates, rng)
        wrong = rng.random(n) < PUPIL_SURNAME_FOR_CONTACT
        s[wrong] = pupil_surname[wrong]
        upper = rng.random(n) < rates.upper_case_names
        f[upper] = np.char.upper(f[upper].astype(str))
        s[upper] = np.char.upper(s[upper].astype(str))
        pcs = addr["postcode"].to_numpy().astype(object)
        for i in np.flatnonzero(rng.random(n) < rates.postcode_format):
            pcs[i] = messy_postcode(pcs[i], rng)
        ph = np.where(rng.random(n) < PHONE_OUT_OF_DATE, old_phone[cs], phone[cs]).astype(object)
        for i in np.flatnonzero(rng.random(n) < PHONE_FORMAT):
            ph[i] = _messy_phone(ph[i], rng)
        ph[rng.random(n) < PHONE_MISSING] = None
        rel = rows[f"rel{k}"].to_numpy()

        def col(values: np.ndarray, has: np.ndarray = has) -> pl.Series:
            # Text where present, else null (never an object column: names are a mix of
            # str and numpy str after the noise steps).
            keep = has & (values != None)  # noqa: E711
            text = np.where(keep, values, "").astype(str)
            return pl.Series(text, dtype=pl.Utf8).set(pl.Series(~keep), None)

        out = out.with_columns(
            col(f).alias(f"contact{k}_forename"),
            col(s).alias(f"contact{k}_surname"),
            col(rel).alias(f"contact{k}_relationship"),
            col(addr["address_line1"].to_numpy()).alias(f"contact{k}_address_line1"),
            col(pcs).alias(f"contact{k}_postcode"),
            col(ph).alias(f"contact{k}_phone"),
        )
    return out
