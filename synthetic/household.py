"""Household evidence the real systems hold and our first extracts left out.

- Early years: the funding system records the child's address, and for a claim that is
  checked (two-year-old places and the 30-hour extended entitlement) the parent or carer
  who claims: name, date of birth and National Insurance number, which the eligibility
  checking service matches against DWP and HMRC records. The claimant is a parent the
  child lives with: that is a condition of the entitlement.
- NEET tracking (CCIS) records the young person's address.
- DWP's data share carries the claimant's address.
- Health: a GP registration carries the patient's address and postcode.
- Adult social care and youth justice case systems record the person's address.

Each value comes from the address the row was rendered at (the household's address as at
the event, or an earlier one where the row is stale), with the noise real extracts carry,
and from this module's own random stream, so the required columns of every extract are
byte-identical to what they were without it. tests/test_synthetic_household.py measures
the rates.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from synthetic.noise import NoiseRates, messy_postcode, misspell_names
from synthetic.population import Population, first_two_adults
from synthetic.render import Rendered, _flip_digit

# The columns each source gains (all optional in its contract, pipelines/contracts.py).
CLAIMANT_COLUMNS = ("claimant_forename", "claimant_surname", "claimant_dob", "claimant_ni_number")
HOUSEHOLD_EVIDENCE: dict[str, tuple[str, ...]] = {
    "early_years": ("address_line1", *CLAIMANT_COLUMNS),
    "neet": ("address_line1",),
    "dwp": ("address_line1",),
    "health": ("address_line1", "postcode"),
    "adult_social_care": ("address_line1", "postcode"),
    "youth_justice": ("address_line1", "postcode"),
}
# Rates; tests/test_synthetic_household.py measures them.
ADDRESS_MISSING = 0.05  # no first line of address on the row
CHECKED_CLAIMS = ("2YO", "3-4YO_EXTENDED")  # the universal 15 hours checks no parent
CLAIMANT_SECOND_ADULT = 0.25  # in a two-adult home, the other adult claims
CLAIMANT_NI_MISSING = 0.15  # eligibility shown another way (e.g. asylum support)
CLAIMANT_DOB_MISSING = 0.05


def _text(values: np.ndarray, keep: np.ndarray, name: str) -> pl.Series:
    text = np.where(keep, values, "").astype(str)
    return pl.Series(name, text, dtype=pl.Utf8).set(pl.Series(~keep), None)


def with_household_evidence(
    name: str, rendered: Rendered, pop: Population, rates: NoiseRates, seed: int
) -> pl.DataFrame:
    """`rendered.extract` with the columns HOUSEHOLD_EVIDENCE lists for `name` added (in
    that order, after the contract's columns); unchanged for any other source."""
    cols = HOUSEHOLD_EVIDENCE.get(name)
    if not cols or rendered.rows is None:
        return rendered.extract
    rng = np.random.default_rng([seed, 16, sorted(HOUSEHOLD_EVIDENCE).index(name)])
    rows = rendered.rows
    n = rows.height
    added: dict[str, pl.Series] = {}
    line = rows["address_line1"].to_numpy().astype(object)
    has_line = (line != None) & (rng.random(n) >= ADDRESS_MISSING)  # noqa: E711
    upper = rng.random(n) < rates.upper_case_names
    line = np.where(upper & has_line, np.char.upper(line.astype(str)), line)
    added["address_line1"] = _text(line, has_line, "address_line1")
    if "postcode" in cols:
        pcs = rows["postcode"].to_numpy().astype(object)
        for i in np.flatnonzero(rng.random(n) < rates.postcode_format):
            pcs[i] = messy_postcode(pcs[i], rng)
        has_pc = (pcs != None) & (rng.random(n) >= rates.postcode_missing)  # noqa: E711
        added["postcode"] = _text(pcs, has_pc, "postcode")
    if "claimant_surname" in cols:
        added.update(_claimants(rendered, pop, rates, rng))
    return rendered.extract.with_columns(added[c] for c in cols)


def _claimants(
    rendered: Rendered, pop: Population, rates: NoiseRates, rng: np.random.Generator
) -> dict[str, pl.Series]:
    """The parent or carer on a checked early-years claim: one of the child's household's
    adults (stable per child), with the name noise every extract has."""
    people = pop.people
    p_hh = people["household_index"].to_numpy()
    # Each household's adults, a woman first: first and second claimant candidates.
    first, second = first_two_adults(pop, women_first=True)
    n_hh = pop.households.height
    swap = (second >= 0) & (rng.random(n_hh) < CLAIMANT_SECOND_ADULT)
    claimant_of_hh = np.where(swap, second, first)

    rows = rendered.rows
    assert rows is not None
    n = rows.height
    child = rows["pidx"].to_numpy().astype(np.int64)
    who = claimant_of_hh[p_hh[child]]
    checked = rendered.extract["funding_type"].is_in(list(CHECKED_CLAIMS)).to_numpy()
    has = checked & (who >= 0)
    w = np.maximum(who, 0)
    f = people["forename"].to_numpy().astype(object)[w]
    s = people["surname"].to_numpy().astype(object)[w]
    misspell_names(f, s, rates, rng)
    upper = rng.random(n) < rates.upper_case_names
    f[upper] = np.char.upper(f[upper].astype(str))
    s[upper] = np.char.upper(s[upper].astype(str))
    dob = people["dob"].dt.strftime("%Y-%m-%d").to_numpy().astype(object)[w]
    ni_true = pl.Series("ni_number", people["ni_number"].to_numpy()[w].tolist(), dtype=pl.Utf8)
    ni = _flip_digit(ni_true, rates.ni_invalid, rng, start=2, stop=8).to_numpy().astype(object)
    has_dob = has & (rng.random(n) >= CLAIMANT_DOB_MISSING)
    has_ni = has & (ni != None) & (rng.random(n) >= CLAIMANT_NI_MISSING)  # noqa: E711
    return {
        "claimant_forename": _text(f, has, "claimant_forename"),
        "claimant_surname": _text(s, has, "claimant_surname"),
        "claimant_dob": _text(dob, has_dob, "claimant_dob"),
        "claimant_ni_number": _text(ni, has_ni, "claimant_ni_number"),
    }
