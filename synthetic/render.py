"""Render unrendered events into source extracts, with noise, plus the truth map."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from pipelines.contracts import Kind, SourceContract, get_contract
from synthetic.events import STREAMS
from synthetic.geography import County
from synthetic.noise import NoiseRates, messy_postcode, misspell_names
from synthetic.population import Population

# Record-id prefixes and the event date that fixes which address applies.
SOURCE_SPEC: dict[str, tuple[str, str]] = {
    "early_help": ("EHM", "referral_date"),
    "front_door": ("FD", "contact_date"),
    "social_care": ("CSC", "referral_date"),
    "school_census": ("SC", "census_day"),
    "early_years": ("EY", "term_day"),
    "police": ("POL", "incident_date"),
    "youth_justice": ("YJ", "offence_date"),
    "dwp": ("DWP", "spell_start"),
    "adult_social_care": ("ASC", "service_start"),
    "housing": ("HSG", "case_start"),
    "neet": ("NEET", "month_day"),
    "health": ("HLT", "contact_date"),
    "objections": ("OBJ", "date_received"),
}


# The renderer's random streams: `SeedSequence(seed, spawn_key=(RENDER_STREAM, key))`, with
# the source's fixed key from synthetic.events.STREAMS, so that the noise of one extract
# does not depend on how many rows the extracts rendered before it hold.
RENDER_STREAM = 18


def render_stream(seed: int, name: str) -> np.random.Generator:
    """The generator that renders source `name` of the county with this seed."""
    return np.random.default_rng(
        np.random.SeedSequence(seed, spawn_key=(RENDER_STREAM, STREAMS[name]))
    )


# Sources whose optional columns the generator writes: the school's pupil address and
# parent/carer contacts (synthetic/contacts.py).
WRITES_OPTIONAL_COLUMNS = frozenset({"school_census"})


@dataclass(frozen=True)
class Rendered:
    extract: pl.DataFrame  # exactly the contract's columns, all text
    truth: pl.DataFrame  # source, record_id, person_id, family_id, duplicate_of
    # Per extract row, in its order: pidx, household_index, _anchor (the event date) and
    # the address the row was rendered at (address_line1, postcode, before noise), for
    # the household evidence added afterwards from its own stream (synthetic/household.py).
    rows: pl.DataFrame | None = None


def _anchor_date(df: pl.DataFrame, col: str) -> pl.Expr:
    from synthetic.population import WINDOW_START

    if df.schema[col] == pl.Date:
        return pl.col(col)
    start = WINDOW_START.astype("datetime64[D]").item()
    return pl.lit(start) + pl.duration(days=pl.col(col))


def render_source(
    name: str,
    events: pl.DataFrame,
    pop: Population,
    county: County,
    rates: NoiseRates,
    rng: np.random.Generator,
    extras: dict[str, pl.DataFrame],
) -> Rendered:
    contract = get_contract(name)
    prefix, anchor = SOURCE_SPEC[name]
    people = pop.people.with_row_index("pidx").with_columns(pl.col("pidx").cast(pl.Int64))
    df = events.with_columns(
        pl.col("pidx").cast(pl.Int64), _anchor_date(events, anchor).alias("_anchor")
    )

    # Duplicates within the source: a share of rows entered twice.
    n = df.height
    dup = rng.random(n) < rates.duplicate
    df = df.with_columns(pl.Series("_orig", np.arange(n)), pl.lit(False).alias("_is_dup"))
    dups = df.filter(pl.Series(dup)).with_columns(pl.lit(True).alias("_is_dup"))
    df = pl.concat([df, dups])
    n = df.height
    # Shuffle then order by date, so duplicates and family members interleave realistically.
    df = df.with_columns(pl.Series("_tie", rng.permutation(n))).sort("_anchor", "_tie")
    df = df.with_columns(
        pl.format(f"{prefix}{{}}", pl.int_range(1, n + 1).cast(pl.Utf8).str.zfill(7)).alias(
            "_record_id"
        )
    )
    df = df.join(
        people.select(
            "pidx",
            "person_id",
            "family_id",
            "household_index",
            "forename",
            "surname",
            "dob",
            "sex",
            "ethnicity",
            "nhs_number",
            "ni_number",
            "upn",
        ),
        on="pidx",
        how="left",
    )

    # Address as at the event, or (stale) as at an earlier date.
    stale = rng.random(n) < rates.stale_address
    lookback = rng.integers(200, 1200, n)
    df = df.with_columns(
        pl.when(pl.Series(stale))
        .then(pl.col("_anchor") - pl.duration(days=pl.lit(pl.Series(lookback))))
        .otherwise(pl.col("_anchor"))
        .alias("_addr_date")
    )
    hist = pop.address_history.join(
        county.addresses.select("address_id", "address_line1", "postcode"), on="address_id"
    ).sort("moved_in")
    df = (
        df.sort("_addr_date")
        .join_asof(
            hist.rename({"moved_in": "_addr_date"}),
            on="_addr_date",
            by="household_index",
            strategy="backward",
            check_sortedness=False,
        )
        .sort("_anchor", "_tie")
    )

    truth = df.select(
        pl.lit(name).alias("source"),
        pl.col("_record_id").alias("record_id"),
        "person_id",
        "family_id",
        "_orig",
        "_is_dup",
    )
    first_id = truth.filter(~pl.col("_is_dup")).select(
        "_orig", pl.col("record_id").alias("duplicate_of")
    )
    truth = (
        truth.join(first_id, on="_orig", how="left")
        .with_columns(
            pl.when(pl.col("_is_dup"))
            .then(pl.col("duplicate_of"))
            .otherwise(None)
            .alias("duplicate_of")
        )
        .select("source", "record_id", "person_id", "family_id", "duplicate_of")
    )

    cols: dict[str, pl.Series] = {}
    forename = df["forename"].to_numpy().astype(object)
    surname = df["surname"].to_numpy().astype(object)
    # Nicknames and variants, then keyboard slips, then shouting.
    misspell_names(forename, surname, rates, rng)
    upper = rng.random(n) < rates.upper_case_names
    forename[upper] = np.char.upper(forename[upper].astype(str))
    surname[upper] = np.char.upper(surname[upper].astype(str))

    dob = df["dob"]
    d_day = dob.dt.day().to_numpy()
    d_month = dob.dt.month().to_numpy()
    swap = (rng.random(n) < rates.dob_transposed) & (d_day <= 12) & (d_day != d_month)
    dob = (
        pl.DataFrame({"dob": dob, "_swap": swap})
        .select(
            pl.when(pl.col("_swap"))
            .then(
                pl.date(pl.col("dob").dt.year(), pl.col("dob").dt.day(), pl.col("dob").dt.month())
            )
            .otherwise(pl.col("dob"))
            .alias("dob")
        )
        .to_series()
    )

    written = contract.columns + (
        contract.optional_columns if name in WRITES_OPTIONAL_COLUMNS else ()
    )
    for col in written:
        c = col.name
        if col.kind is Kind.RECORD_ID:
            cols[c] = df["_record_id"]
        elif c == "forename":
            cols[c] = pl.Series(c, forename.astype(str))
        elif c == "surname":
            cols[c] = pl.Series(c, surname.astype(str))
        elif c == "dob":
            s = dob
            if not col.required:
                s = s.set(pl.Series(rng.random(n) < rates.dob_missing), None)
            cols[c] = s
        elif c == "postcode":
            pcs = df["postcode"].to_numpy().astype(object)
            for i in np.flatnonzero(rng.random(n) < rates.postcode_format):
                pcs[i] = messy_postcode(pcs[i], rng)
            miss = rng.random(n) < rates.postcode_missing
            pcs[miss] = None
            cols[c] = pl.Series(c, pcs.tolist(), dtype=pl.Utf8)
        elif c == "address_line1":
            cols[c] = df["address_line1"]
        elif c == "nhs_number":
            cols[c] = _nhs_noise(
                df["nhs_number"], rates.nhs_missing.get(name, 0.0), rates.nhs_invalid, rng
            )
        elif c == "ni_number":
            cols[c] = _flip_digit(df["ni_number"], rates.ni_invalid, rng, start=2, stop=8)
        elif c == "upn":
            s = _flip_digit(df["upn"], rates.upn_invalid, rng, start=1, stop=13)
            s = s.set(pl.Series(rng.random(n) < rates.upn_missing), None)
            cols[c] = s
        elif c == "sex":
            cols[c] = df["sex"]
        elif c == "ethnicity":
            cols[c] = df["ethnicity"]
        elif c in extras:
            ex = extras[c]
            cols[c] = df.select("pidx", "household_index").join(ex, on=ex.columns[0], how="left")[c]
        elif c in df.columns:
            s_ = df[c]
            if s_.dtype == pl.Object:  # numpy where() with None gives objects
                s_ = pl.Series(c, s_.to_list(), dtype=pl.Utf8)
            cols[c] = s_
        else:
            raise KeyError(f"generator has no values for {name}.{c}")

    out = pl.DataFrame(cols)
    out = _format_dates(out, contract, rates.mixed_dates.get(name, 0.0), rng)
    out = out.select([pl.col(col.name).cast(pl.Utf8) for col in written])
    rows = df.select("pidx", "household_index", "_anchor", "address_line1", "postcode")
    return Rendered(out, truth, rows)


def _nhs_noise(s: pl.Series, missing: float, invalid: float, rng: np.random.Generator) -> pl.Series:
    out = _flip_digit(s, invalid, rng, start=0, stop=9)
    n = len(s)
    return out.set(pl.Series(rng.random(n) < missing), None)


def _flip_digit(
    s: pl.Series, rate: float, rng: np.random.Generator, *, start: int, stop: int
) -> pl.Series:
    """Change one digit at random so the identifier's checksum (or format) fails."""
    vals = s.to_numpy().astype(object)
    from pipelines.identifiers import is_valid_nhs_number, is_valid_ni_number, is_valid_upn

    check = {
        "nhs_number": is_valid_nhs_number,
        "ni_number": is_valid_ni_number,
        "upn": is_valid_upn,
    }[s.name]
    for i in np.flatnonzero(rng.random(len(vals)) < rate):
        v = vals[i]
        if not v:
            continue
        for _ in range(10):
            j = int(rng.integers(start, stop))
            if not v[j].isdigit():
                continue
            cand = v[:j] + str((int(v[j]) + int(rng.integers(1, 10))) % 10) + v[j + 1 :]
            if s.name == "ni_number":
                # An NI number's only check is its format: make it unmistakably wrong.
                cand = cand[:8] + "E"
            if not check(cand):
                vals[i] = cand
                break
    out = pl.Series(s.name, vals.tolist(), dtype=pl.Utf8)
    return out.replace("", None)


def _format_dates(
    df: pl.DataFrame, contract: SourceContract, mixed: float, rng: np.random.Generator
) -> pl.DataFrame:
    n = df.height
    choice = np.zeros(n, dtype=np.int64)
    fmts = contract.date_formats
    if len(fmts) > 1 and mixed > 0:
        alt = rng.random(n) < mixed
        choice[alt] = rng.integers(1, len(fmts), alt.sum())
    pick = pl.Series("_fmt", choice)
    exprs = []
    for col in contract.columns:
        if col.kind is not Kind.DATE:
            continue
        e = pl.col(col.name).dt.strftime(fmts[0])
        for k in range(1, len(fmts)):
            e = pl.when(pick == k).then(pl.col(col.name).dt.strftime(fmts[k])).otherwise(e)
        exprs.append(e.alias(col.name))
    return df.with_columns(exprs) if exprs else df
