"""The statutory returns the county's social care system produces from its own records.

- **CIN census** (`returns/cin_census/cin_census_YYYY.xml`): one XML file per collection
  year (YYYY is the year ending 31 March), in DfE's schema as Liquidlogic, Mosaic and
  Eclipse export it: a Header (Collection, Year, ReferenceDate, LEA, SoftwareCode) and
  one Child per child in need during the year (ChildIdentifiers, ChildCharacteristics,
  CINdetails with Assessments, CINPlanDates, Section47 and ChildProtectionPlans).
- **SSDA903** (`returns/ssda903/YYYY/*.csv`): one folder per collection year holding the
  return's ten tables (Header, Episodes, Reviews, UASC, OC2, OC3, AD1, PlacedAdoption,
  PrevPerm, Missing) with DfE's column names and codes.

Both are written from the generator's own truth: the same children, referrals,
assessments, section 47 enquiries and child protection plans as the social care extract,
and its looked-after periods (`cla_start`, `cla_end`). The 903 needs more than a start
and an end, so `plan_care` adds the detail a looked-after period has in a council's
system: legal statuses, placements and their providers, placement changes with a reason,
reviews, missing episodes, unaccompanied asylum-seeking children, the health and
conviction data of children looked after for a year (OC2), care leavers' activity and
accommodation (OC3), adoption decisions and adoptions, and whether a looked-after young
woman is a mother (MOTHER and MC_DOB).

Calibration. The events model started children looked after only from child protection
plans (about 8 per 10,000 children at 31 March, against England's 70). `plan_care`
starts more periods inside open children in need episodes (never changing an episode's
dates, so every children in need and child protection figure stays as calibrated) until
the county comes near England's rate of children looked after at 31 March (DfE,
"Children looked after in England including adoptions", reporting year 2024: 70 per
10,000 children). A period cannot outlast its episode, so periods are shorter and starts
more frequent than England's; docs/returns.md gives the measured figures (below England's
rate at 31 March, above it for starts).

Determinism. Every draw here comes from a stream of its own (`seed`, 903), so the other
twelve extracts stay byte-identical to a county generated without the returns; the
social care extract differs only in its `cla_start` and `cla_end` columns.

Simplifications (documented in docs/returns.md): unaccompanied asylum-seeking children
are drawn from the county's own teenagers in care; a looked-after mother's child is a
baby born into her household while she was 14 or older; placements are inside the
county (placement postcodes are county postcodes).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import polars as pl

from pipelines.returns.tables import RETURN_SOURCE, TABLE_COLUMNS, TABLE_FILES
from synthetic.geography import County
from synthetic.population import WINDOW_DAYS, WINDOW_START, YEAR, Population

COLLECTION_YEARS = (2022, 2023, 2024, 2025, 2026)  # the year ending 31 March
LA_NUMBER = "999"  # the fictional authority's DfE number (UPNs carry it too)
RETURNS_DIR = Path("returns")
CIN_DIR = RETURNS_DIR / "cin_census"
SSDA903_DIR = RETURNS_DIR / "ssda903"
STREAM = 903  # the returns' own random stream
# Share of long children in need episodes (open 90 days or more) in which the child
# starts to be looked after; abuse or neglect (N1) weighs more. Aimed at England's 70 per
# 10,000 at 31 March; measured 33 to 56 (20,000 people, seed 42, docs/returns.md): periods
# end with their episodes, so more of this share adds starts faster than children in care.
CARE_SHARE = 0.17
ABUSE_WEIGHT = 1.6
# Placement moves. England: about 1 in 10 children looked after at 31 March had three or
# more placements during the year (DfE, "Stability measures for children looked after in
# England", reporting year 2024), and the care plan's implementation is the commonest
# reason for a placement change (31% of changes in 2024: "Children looked after in England
# including adoptions"). Moves cluster at the start of care, and periods here are shorter
# than England's (they end with their children in need episodes): without the interim
# first placements 6.8% of the county's children at 31 March had three or more, with them
# 10.5% (docs/returns.md).
INTERIM_SHARE = 0.3  # first placements that are emergency or interim ones
INTERIM_DAYS = (7, 92)  # days before the planned move
_START = WINDOW_START.astype(object)


def _day(d: dt.date | None) -> int | None:
    return None if d is None else (d - _START).days


def _date(day: int) -> dt.date:
    return _START + dt.timedelta(days=int(day))


def _dmy(day: int | None) -> str:
    return "" if day is None else _date(day).strftime("%d/%m/%Y")


def _iso(day: int | None) -> str:
    return "" if day is None else _date(day).isoformat()


def birthday(dob_day: int, years: int) -> int:
    """The window day of someone's `years`th birthday (1 March for 29 February)."""
    born = _date(dob_day)
    try:
        return (born.replace(year=born.year + years) - _START).days
    except ValueError:
        return (dt.date(born.year + years, 3, 1) - _START).days


def year_bounds(year: int) -> tuple[int, int]:
    """First and last day (window days) of a collection year ending 31 March `year`."""
    return (dt.date(year - 1, 4, 1) - _START).days, (dt.date(year, 3, 31) - _START).days


@dataclass
class Episode:
    decom: int
    ls: str
    place: str
    provider: str | None
    rne: str
    pl_post: str
    urn: str | None
    dec: int | None = None
    rec: str | None = None
    reason_change: str | None = None


@dataclass
class Period:
    """One period of being looked after, with everything the 903 records about it."""

    pidx: int
    start: int
    end: int | None  # None: still looked after when the extracts were taken
    cin: str
    home_post: str
    episodes: list[Episode]
    reviews: list[tuple[int, str]]
    missing: list[tuple[str, int, int | None]]
    uasc: bool = False
    adopted: dict[str, Any] | None = None  # AD1 items, with "day" (the adoption)
    placed: list[tuple[int, int | None, str | None]] | None = None  # PlacedAdoption rows
    prev_perm: tuple[str, str | None, int | None] = ("Z1", None, None)


@dataclass(frozen=True)
class Care:
    periods: list[Period]
    mothers: dict[int, int]  # pidx -> the day her first child was born


# ------------------------------------------------------------------ planning care ---

_FOSTER = ("U1", "U2", "U3", "U4", "U5", "U6")
_FOSTER_P = (0.10, 0.06, 0.05, 0.42, 0.22, 0.15)
_CHANGE_REASONS = (
    "CARPL", "CREQB", "CREQO", "LAREQ", "CHILD", "STAND",
    "ALLEG", "CLOSE", "APPRR", "PLACE", "OTHER",
)  # fmt: skip
_CHANGE_P = (0.35, 0.15, 0.10, 0.10, 0.08, 0.05, 0.03, 0.04, 0.02, 0.03, 0.05)
_REVIEW_CODES = ("PN1", "PN2", "PN3", "PN4", "PN5", "PN6", "PN7")
_REVIEW_P = (0.60, 0.10, 0.08, 0.07, 0.05, 0.05, 0.05)


def _choice(rng: np.random.Generator, items: tuple[str, ...], p: tuple[float, ...]) -> str:
    return items[int(rng.choice(len(items), p=np.asarray(p) / sum(p)))]


def _place(rng: np.random.Generator, age: float) -> str:
    """Placement type at a placement start (DfE's 903 codes valid in every year here)."""
    r = rng.random()
    if age >= 16 and r < 0.12:
        return "S1"  # independent living
    if age >= 12 and r < 0.30:
        return "K2"  # children's home
    if r < 0.08:
        return "P1"  # placed with parents
    if r < 0.11:
        return "K2"
    if r < 0.12:
        return "R1"  # residential care home
    return _choice(rng, _FOSTER, _FOSTER_P)


def _provider(rng: np.random.Generator, place: str) -> str | None:
    if place == "P1":
        return "PR0"  # parents: rule 550, PR0 goes only with P1
    if place.startswith("A"):
        # Adoption placements are made by the council, another council or a voluntary
        # adoption agency, never another public body (rule 529: PR3 never with A3-A6).
        return _choice(rng, ("PR1", "PR2", "PR5"), (0.6, 0.2, 0.2))
    if place in ("K2", "S1"):
        return _choice(rng, ("PR1", "PR4", "PR5"), (0.25, 0.65, 0.10))
    if place == "R1":
        return "PR1"
    return _choice(rng, ("PR1", "PR4"), (0.6, 0.4))


def _initial_ls(rng: np.random.Generator, age: float) -> str:
    if age >= 10 and rng.random() < 0.03:
        return "J1"  # remanded to local authority accommodation
    return _choice(rng, ("C1", "V2", "L2", "L1", "C2"), (0.40, 0.35, 0.08, 0.07, 0.10))


def _final_rec(rng: np.random.Generator, age: float, at_18: bool) -> str:
    if at_18:
        return _choice(rng, ("E17", "E5", "E6", "E8", "E7"), (0.25, 0.30, 0.20, 0.20, 0.05))
    if age >= 16:
        return _choice(
            rng,
            ("E4A", "E13", "E5", "E6", "E8", "E9", "E3", "E45"),
            (0.25, 0.10, 0.15, 0.10, 0.25, 0.03, 0.02, 0.10),
        )
    return _choice(
        rng,
        ("E4A", "E4B", "E45", "E46", "E41", "E47", "E48", "E13", "E3", "E8"),
        (0.45, 0.08, 0.10, 0.07, 0.05, 0.03, 0.02, 0.08, 0.03, 0.09),
    )


def _ls_change(ls: str, rng: np.random.Generator) -> tuple[int, str] | None:
    """(days after the status started, the next status) or None."""
    if ls == "C1":
        return int(rng.integers(120, 300)), "C2"
    if ls in ("L1", "L2"):
        return int(rng.integers(1, 9)), _choice(rng, ("C1", "V2"), (0.6, 0.4))
    if ls == "J1":
        return int(rng.integers(20, 120)), "V2"
    return None


def plan_care(
    social_care: pl.DataFrame, pop: Population, county: County, seed: int
) -> tuple[pl.DataFrame, Care]:
    """More looked-after periods inside open children in need episodes, and the detail of
    every period. Returns the social care events with `cla_start`/`cla_end` updated (no
    other column changes) and the periods."""
    rng = np.random.default_rng([seed, STREAM])
    people = pop.people
    dob = (people["dob"].to_numpy().astype("datetime64[D]") - WINDOW_START).astype(np.int64)
    sex = people["sex"].to_numpy()
    hh = people["household_index"].to_numpy()
    sc = social_care
    n = sc.height
    pidx = sc["pidx"].to_numpy().astype(np.int64)

    def days(col: str) -> np.ndarray:
        v = sc[col].cast(pl.Date).to_numpy().astype("datetime64[D]")
        out = (v - WINDOW_START).astype("timedelta64[D]").astype(np.float64)
        out[np.isnat(v)] = np.nan
        return out

    ref, clo = days("referral_date"), days("closure_date")
    cla_s, cla_e = days("cla_start"), days("cla_end")
    assessed = ~np.isnan(days("assessment_start"))
    need = sc["primary_need"].to_numpy()
    age = (ref - dob[pidx]) / YEAR
    open_ = np.isnan(clo)
    span = np.where(open_, WINDOW_DAYS + 365 - ref, clo - ref)
    has = ~np.isnan(cla_s)
    cand = ~has & assessed & (need != "N9") & (span >= 90) & (age < 17.5) & (ref < WINDOW_DAYS)
    p = CARE_SHARE * np.where(need == "N1", ABUSE_WEIGHT, 1.0)
    pick = cand & (rng.random(n) < p)
    start = np.where(has, cla_s, ref + rng.integers(7, 60, n))
    end = np.where(has, cla_e, np.where(open_, np.nan, clo - rng.integers(0, 14, n)))
    keep = (has | pick) & (start < WINDOW_DAYS) & ((np.isnan(end)) | (end > start + 7))
    b18 = np.array([birthday(int(d), 18) for d in dob[pidx]], dtype=np.float64)
    # Nobody is looked after past their 18th birthday.
    over = keep & ((np.isnan(end) & (b18 < WINDOW_DAYS)) | (~np.isnan(end) & (end > b18)))
    end = np.where(over, b18, end)
    keep &= start < np.where(np.isnan(b18), np.inf, b18)
    at_18 = over.copy()

    new_s = np.where(keep, start, np.nan)
    new_e = np.where(keep & ~np.isnan(end) & (end < WINDOW_DAYS), end, np.nan)
    out = sc.with_columns(
        pl.Series("cla_start", _to_dates(new_s), dtype=pl.Date),
        pl.Series("cla_end", _to_dates(new_e), dtype=pl.Date),
    )

    addr = _address_frame(pop, county)
    postcodes = county.postcodes["postcode"].to_numpy()
    periods: list[Period] = []
    for i in np.flatnonzero(keep):
        periods.append(
            _period(
                rng,
                int(pidx[i]),
                int(start[i]),
                None if np.isnan(end[i]) else int(end[i]),
                bool(at_18[i]),
                float((start[i] - dob[pidx[i]]) / YEAR),
                int(dob[pidx[i]]),
                need[i] if need[i] != "N9" else "N1",
                _postcode_at(addr, int(hh[pidx[i]]), int(start[i])),
                postcodes,
            )
        )
    mothers = _mothers(rng, periods, people, dob, sex, hh)
    return out, Care(periods, mothers)


def _to_dates(days: np.ndarray) -> list[dt.date | None]:
    return [None if np.isnan(d) else _date(int(d)) for d in days]


def _address_frame(pop: Population, county: County) -> dict[int, list[tuple[int, str]]]:
    """household -> [(moved in day, postcode)] in date order."""
    hist = (
        pop.address_history.join(county.addresses.select("address_id", "postcode"), on="address_id")
        .with_columns(((pl.col("moved_in") - pl.lit(_START)).dt.total_days()).alias("day"))
        .sort("household_index", "day")
    )
    out: dict[int, list[tuple[int, str]]] = {}
    for h, d, pc in hist.select("household_index", "day", "postcode").iter_rows():
        out.setdefault(int(h), []).append((int(d), str(pc)))
    return out


def _postcode_at(addr: dict[int, list[tuple[int, str]]], household: int, day: int) -> str:
    spells = addr.get(household, [])
    pc = spells[0][1] if spells else ""
    for moved, p in spells:
        if moved <= day:
            pc = p
    return pc


def _period(
    rng: np.random.Generator,
    pidx: int,
    start: int,
    end: int | None,
    at_18: bool,
    age: float,
    dob: int,
    cin: str,
    home_post: str,
    postcodes: np.ndarray,
) -> Period:
    horizon = end if end is not None else WINDOW_DAYS  # nothing is known after the extract
    adopt = not at_18 and end is not None and age < 3 and end - start >= 400 and rng.random() < 0.55
    # Change points: (day, kind, value).
    changes: list[tuple[int, str, str]] = []
    ls = _initial_ls(rng, age)
    t, cur = start, ls
    while (nxt := _ls_change(cur, rng)) is not None:
        t += nxt[0]
        cur = nxt[1]
        if t >= horizon:
            break
        changes.append((t, "ls", cur))
    unstable = rng.random() < (0.30 if age >= 11 else 0.12)
    rate = 2.0 if unstable else 0.25
    n_moves = rng.poisson(rate * (horizon - start) / YEAR)
    for d in sorted(rng.integers(start + 1, max(horizon, start + 2), n_moves).tolist()):
        changes.append((int(d), "place", ""))
    # Moves cluster at the start of care: many a first placement is an emergency or
    # interim one, left for a planned placement within weeks.
    interim = rng.random() < INTERIM_SHARE
    planned = start + int(rng.integers(*INTERIM_DAYS))
    if interim and planned < horizon:
        changes.append((planned, "place", ""))
    adopted: dict[str, Any] | None = None
    placed: list[tuple[int, int | None, str | None]] | None = None
    if adopt:
        assert end is not None
        e1 = end - int(rng.integers(150, 280))
        e1 = max(e1, start + 120)
        changes = [c for c in changes if c[0] < e1]
        changes.append((e1, "adopt", "E1"))
        decided = max(start + 30, e1 - int(rng.integers(30, 120)))
        adopted = {
            "day": end,
            "date_int": decided,
            "date_match": max(decided, e1 - int(rng.integers(0, 21))),
            "foster_care": "1" if rng.random() < 0.15 else "0",
            "nb_adoptr": _choice(rng, ("1", "2"), (0.25, 0.75)),
            "ls_adoptr": _choice(
                rng, ("L0", "L11", "L12", "L2", "L4"), (0.15, 0.55, 0.1, 0.1, 0.1)
            ),
        }
        two = adopted["nb_adoptr"] == "2"
        adopted["sex_adoptr"] = (
            _choice(rng, ("MF", "MM", "FF"), (0.85, 0.07, 0.08))
            if two
            else _choice(rng, ("F1", "M1"), (0.9, 0.1))
        )
        placed = [(decided, None, None)]
    elif age < 4 and end is not None and end - start >= 300 and rng.random() < 0.05:
        # A decision to place for adoption, later reversed (the child went home).
        decided = start + int(rng.integers(60, max(61, (end - start) // 2)))
        ceased = min(end, decided + int(rng.integers(30, 200)))
        placed = [
            (decided, ceased, _choice(rng, ("RD1", "RD2", "RD3", "RD4"), (0.4, 0.3, 0.2, 0.1)))
        ]
    changes.sort()

    def new_place(day: int) -> tuple[str, str | None, str, str | None]:
        a = age + (day - start) / YEAR
        place = _place(rng, a)
        pc = home_post if place == "P1" else str(postcodes[int(rng.integers(0, len(postcodes)))])
        urn = f"SC{int(rng.integers(100000, 999999))}" if place in ("K2", "R1") else None
        return place, _provider(rng, place), pc, urn

    place, prov, pc, urn = new_place(start)
    episodes = [Episode(start, ls, place, prov, "S", pc, urn)]
    for day, kind, value in changes:
        prev = episodes[-1]
        if day <= prev.decom:
            continue
        if kind == "ls":
            ep = Episode(day, value, prev.place, prev.provider, "L", prev.pl_post, prev.urn)
        elif kind == "place":
            place, prov, pc, urn = new_place(day)
            ep = Episode(day, prev.ls, place, prov, "P", pc, urn)
        else:  # placed for adoption under a placement order
            place = _choice(rng, ("A5", "A6", "A3", "A4"), (0.45, 0.35, 0.12, 0.08))
            # The legal status (E1) and the placement change together: B, with new carers
            # (A5, A6), or U, placed with the current foster carers (A3, A4) (rule 436;
            # T is a change of placement and carer only, rule 435).
            ep = Episode(
                day, "E1", place, _provider(rng, place), "U" if place in ("A3", "A4") else "B",
                str(postcodes[int(rng.integers(0, len(postcodes)))]), None,
            )  # fmt: skip
        prev.dec, prev.rec = day, "X1"
        if ep.rne in ("P", "T", "U", "B"):
            prev.reason_change = _choice(rng, _CHANGE_REASONS, _CHANGE_P)
        episodes.append(ep)
    if end is not None:
        last = episodes[-1]
        last.dec = end
        if adopt:
            last.rec = _choice(rng, ("E11", "E12"), (0.6, 0.4))
        else:
            last.rec = _final_rec(rng, age + (end - start) / YEAR, at_18)

    reviews: list[tuple[int, str]] = []
    r = start + 28
    gap = 63
    while r < horizon:
        a = age + (r - start) / YEAR
        reviews.append((r, "PN0" if a < 4 else _choice(rng, _REVIEW_CODES, _REVIEW_P)))
        r += gap
        gap = 182
    missing: list[tuple[str, int, int | None]] = []
    m_rate = (4.0 if rng.random() < 0.25 else 0.15) if age >= 11 else 0.02
    for d in sorted(
        rng.integers(
            start + 1, max(horizon, start + 2), rng.poisson(m_rate * (horizon - start) / YEAR)
        ).tolist()
    ):
        back = int(d) + int(rng.integers(0, 4))
        kind = "M" if rng.random() < 0.8 else "A"
        # One absence at a time: one that would start before the last came back is the
        # same absence (DfE rule 574), and nothing follows one still open.
        last_back = missing[-1][2] if missing else None
        if missing and (last_back is None or d < last_back):
            continue
        missing.append((kind, int(d), back if back < WINDOW_DAYS else None))
    prev_perm: tuple[str, str | None, int | None] = ("Z1", None, None)
    if rng.random() < 0.06:
        kind = _choice(rng, ("P1", "P2", "P3"), (0.3, 0.5, 0.2))
        prev_perm = (kind, LA_NUMBER, max(dob + 30, start - int(rng.integers(200, 2000))))
    return Period(
        pidx=pidx,
        start=start,
        end=end,
        cin=cin,
        home_post=home_post,
        episodes=episodes,
        reviews=reviews,
        missing=missing,
        uasc=age >= 14 and rng.random() < 0.06,
        adopted=adopted,
        placed=placed,
        prev_perm=prev_perm,
    )


def _mothers(
    rng: np.random.Generator,
    periods: list[Period],
    people: pl.DataFrame,
    dob: np.ndarray,
    sex: np.ndarray,
    hh: np.ndarray,
) -> dict[int, int]:
    """A looked-after young woman is recorded as a mother (MOTHER=1, MC_DOB) when a baby
    was born into her household while she was 14 or older, before her care ended."""
    babies = np.flatnonzero(people["born_in_window"].to_numpy())
    by_hh: dict[int, list[int]] = {}
    for b in babies:
        by_hh.setdefault(int(hh[b]), []).append(int(b))
    out: dict[int, int] = {}
    for per in periods:
        g = per.pidx
        if sex[g] != "F" or g in out:
            continue
        horizon = per.end if per.end is not None else WINDOW_DAYS
        for b in by_hh.get(int(hh[g]), []):
            born = int(dob[b])
            if b != g and (born - dob[g]) / YEAR >= 14 and born <= horizon and rng.random() < 0.5:
                out[g] = born
                break
    return out


# ------------------------------------------------------------------- writing ---


@dataclass(frozen=True)
class ChildInfo:
    lcs: str
    dob: int
    sex: str  # F / M
    ethnicity: str
    upn: str
    person_id: str
    family_id: str


def _children(pop: Population, lcs_ids: pl.DataFrame) -> list[ChildInfo]:
    p = pop.people.with_row_index("pidx").join(
        lcs_ids.with_columns(pl.col("pidx").cast(pl.UInt32)), on="pidx", how="left"
    )
    dob = (p["dob"].to_numpy().astype("datetime64[D]") - WINDOW_START).astype(np.int64)
    return [
        ChildInfo(lcs, int(d), s, e, u or "", pid, fid)
        for lcs, d, s, e, u, pid, fid in zip(
            p["lcs_person_id"].to_list(), dob, p["sex"].to_list(), p["ethnicity"].to_list(),
            p["upn"].to_list(), p["person_id"].to_list(), p["family_id"].to_list(),
            strict=True,
        )
    ]  # fmt: skip


def write_returns(
    out: Path,
    care: Care,
    social_care: pl.DataFrame,
    pop: Population,
    lcs_ids: pl.DataFrame,
    seed: int,
) -> pl.DataFrame:
    """Write the CIN census and 903 returns for every collection year; return the truth
    rows (source, record_id, person_id, family_id, duplicate_of) of every row written,
    keyed exactly as ingest keys them."""
    rng = np.random.default_rng([seed, STREAM, 1])
    kids = _children(pop, lcs_ids)
    truth: list[dict[str, str | None]] = []
    (out / CIN_DIR).mkdir(parents=True, exist_ok=True)
    for year in COLLECTION_YEARS:
        truth += _write_cin(out / CIN_DIR / f"cin_census_{year}.xml", year, social_care, kids, rng)
        truth += _write_903(out / SSDA903_DIR / str(year), year, care, kids, rng)
    return pl.DataFrame(
        truth,
        schema={
            "source": pl.Utf8,
            "record_id": pl.Utf8,
            "person_id": pl.Utf8,
            "family_id": pl.Utf8,
            "duplicate_of": pl.Utf8,
        },
    )


def _truth(source: str, record_id: str, kid: ChildInfo) -> dict[str, str | None]:
    return {
        "source": source,
        "record_id": record_id,
        "person_id": kid.person_id,
        "family_id": kid.family_id,
        "duplicate_of": None,
    }


# --- CIN census ---

_CIN_SOURCE = {
    "SCHOOL": "2A", "POLICE": "6", "HEALTH_VISITOR": "3B", "GP": "3A", "FAMILY": "1A",
    "ANON": "9", "OTHER": "8", "SELF": "1C", "HOUSING": "4", "SOCIAL_CARE": "5A",
}  # fmt: skip
_ABUSE = {
    "NEGLECT": "NEG", "PHYSICAL": "PHY", "EMOTIONAL": "EMO", "SEXUAL": "SAB", "MULTIPLE": "MUL",
}  # fmt: skip
_FACTORS = ("1A", "2A", "2B", "3A", "3B", "4A", "4B", "5A", "6A", "8B", "14A", "16A", "17A", "21")


def _write_cin(
    path: Path, year: int, sc: pl.DataFrame, kids: list[ChildInfo], rng: np.random.Generator
) -> list[dict[str, str | None]]:
    first, last = year_bounds(year)
    ev = sc.with_columns(
        ((pl.col(c).cast(pl.Date) - pl.lit(_START)).dt.total_days()).alias(c)
        for c in (
            "referral_date", "assessment_start", "assessment_authorised", "s47_start",
            "cp_plan_start", "cp_plan_end", "closure_date",
        )
    ).sort("pidx", "referral_date")  # fmt: skip
    ev = _as_a_case_system_returns(ev)
    # Previous plans per child, counted from every plan in the records.
    ev = ev.with_columns(
        pl.col("cp_plan_start").is_not_null().cast(pl.Int64).cum_sum().over("pidx").alias("_plans")
    )
    in_year = ev.filter(
        (pl.col("referral_date") <= last)
        & (pl.col("closure_date").is_null() | (pl.col("closure_date") >= first))
    )
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        "<Message>",
        "  <Header>",
        "    <CollectionDetails>",
        "      <Collection>CIN</Collection>",
        f"      <Year>{year}</Year>",
        f"      <ReferenceDate>{year}-03-31</ReferenceDate>",
        "    </CollectionDetails>",
        "    <Source>",
        "      <SourceLevel>L</SourceLevel>",
        f"      <LEA>{LA_NUMBER}</LEA>",
        "      <SoftwareCode>Synthetic LCS</SoftwareCode>",
        "      <Release>1.0</Release>",
        "      <SerialNo>001</SerialNo>",
        f"      <DateTime>{year}-05-01T09:00:00</DateTime>",
        "    </Source>",
        "  </Header>",
        "  <Children>",
    ]
    truth: list[dict[str, str | None]] = []
    stem = path.stem

    def add(text: str, source: str | None = None, kid: ChildInfo | None = None) -> None:
        lines.append(text)
        if source is not None and kid is not None:
            truth.append(_truth(source, f"{stem}:{len(lines)}", kid))

    for pidx, rows in in_year.group_by("pidx", maintain_order=True):
        kid = kids[int(pidx[0])]
        add("    <Child>")
        add("      <ChildIdentifiers>")
        add(f"        <LAchildID>{escape(kid.lcs)}</LAchildID>")
        if kid.upn:
            add(f"        <UPN>{kid.upn}</UPN>")
        else:
            add("        <UPNunknown>UN1</UPNunknown>")
        add(f"        <PersonBirthDate>{_iso(kid.dob)}</PersonBirthDate>")
        if year >= 2025:
            add(f"        <Sex>{kid.sex}</Sex>")
        else:
            add(f"        <GenderCurrent>{'1' if kid.sex == 'M' else '2'}</GenderCurrent>")
        add("      </ChildIdentifiers>")
        add("      <ChildCharacteristics>")
        add(f"        <Ethnicity>{kid.ethnicity}</Ethnicity>")
        add("        <Disabilities>")
        disabled = bool((rows["primary_need"] == "N2").any()) or rng.random() < 0.05
        for code in ["LD", "COMM"][: 1 + int(rng.random() < 0.3)] if disabled else ["NONE"]:
            add(f"          <Disability>{code}</Disability>")
        add("        </Disabilities>")
        add("      </ChildCharacteristics>")
        for r in rows.iter_rows(named=True):
            _cin_details(add, r, year, first, last, kid, rng)
        add("    </Child>")
    lines += ["  </Children>", "</Message>", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return truth


def _as_a_case_system_returns(ev: pl.DataFrame) -> pl.DataFrame:
    """The referrals (sorted by child and referral day) as a council's case system would
    let it return them, where the events model is looser:

    - a referral closed with nothing done under it was closed on the day (no further
      action);
    - a referral closes on or after everything done under it: an assessment still open
      at closure is authorised then (rules 8565, 8867), a protection plan ends then, and
      the closure is no earlier than the last activity or the initial conference, which
      is held up to two days after the plan starts (8565);
    - a child has one referral open at a time: a referral made while an earlier one is
      open is part of that one and is not returned (rules 8820, 8815, 8816, and the
      overlapping or doubly open protection plans of 8940, 8935)."""
    closed = pl.col("closure_date").is_not_null()
    no_activity = pl.all_horizontal(
        pl.col(c).is_null() for c in ("assessment_start", "s47_start", "cp_plan_start")
    )
    ev = ev.with_columns(
        # A referral closed with nothing done under it is a no-further-action decision,
        # made on the day (rule 8569Q: such a referral never stays open into a later year).
        pl.when(closed & no_activity)
        .then(pl.col("referral_date"))
        .otherwise(pl.col("closure_date"))
        .alias("closure_date")
    )
    closed = pl.col("closure_date").is_not_null()
    ev = ev.with_columns(
        pl.when(
            closed
            & pl.col("assessment_start").is_not_null()
            & pl.col("assessment_authorised").is_null()
        )
        .then(pl.max_horizontal("closure_date", "assessment_start"))
        .otherwise(pl.col("assessment_authorised"))
        .alias("assessment_authorised"),
        pl.when(closed & pl.col("cp_plan_start").is_not_null() & pl.col("cp_plan_end").is_null())
        .then(pl.max_horizontal("closure_date", pl.col("cp_plan_start") + 1))
        .otherwise(pl.col("cp_plan_end"))
        .alias("cp_plan_end"),
    ).with_columns(
        pl.when(closed)
        .then(
            pl.max_horizontal(
                "closure_date",
                "referral_date",
                "assessment_authorised",
                "s47_start",
                "cp_plan_end",
                pl.col("cp_plan_start") + 2,
            )
        )
        .otherwise(None)
        .alias("closure_date")
    )
    # The latest end of the child's earlier referrals (open: never ends).
    end = pl.col("closure_date").fill_null(np.iinfo(np.int64).max)
    earlier_end = end.cum_max().shift(1).over("pidx")
    return ev.filter(~(pl.col("referral_date") <= earlier_end).fill_null(False))


def _cin_details(
    add: Callable[..., None],
    r: dict[str, Any],
    year: int,
    first: int,
    last: int,
    kid: ChildInfo,
    rng: np.random.Generator,
) -> None:
    ref = r["referral_date"]
    # The events model can close an episode the day before its referral; a council's
    # system would not let that be returned (rule 8630).
    if r["closure_date"] is not None and r["closure_date"] < ref:
        r = {**r, "closure_date": ref}
    closed = r["closure_date"] is not None and r["closure_date"] <= last
    a_start, a_auth = r["assessment_start"], r["assessment_authorised"]
    nfa = a_start is None and r["s47_start"] is None and r["cp_plan_start"] is None and closed
    add("      <CINdetails>", "cin_census", kid)
    add(f"        <CINreferralDate>{_iso(ref)}</CINreferralDate>")
    add(f"        <ReferralSource>{_CIN_SOURCE.get(r['referral_source'], '8')}</ReferralSource>")
    if not nfa:
        add(f"        <PrimaryNeedCode>{r['primary_need']}</PrimaryNeedCode>")
    if closed:
        add(f"        <CINclosureDate>{_iso(r['closure_date'])}</CINclosureDate>")
        reason = r["closure_reason"] or "RC8"
        if reason == "STEP_DOWN_EH":
            reason = "RC9" if year >= 2023 else "RC7"
        if nfa:
            reason = "RC8"
        add(f"        <ReasonForClosure>{reason}</ReasonForClosure>")
    # Assessments started or completed in the year.
    if a_start is not None and a_start <= last and (a_auth is None or a_auth >= first):
        done = a_auth is not None and a_auth <= last
        if done or a_start >= first:
            add("        <Assessments>", "cin_assessments", kid)
            add(f"          <AssessmentActualStartDate>{_iso(a_start)}</AssessmentActualStartDate>")
            if done:
                add(
                    f"          <AssessmentAuthorisationDate>{_iso(a_auth)}</AssessmentAuthorisationDate>"
                )
                add("          <FactorsIdentifiedAtAssessment>")
                for f in sorted(set(rng.choice(_FACTORS, 1 + int(rng.integers(0, 3))).tolist())):
                    add(f"            <AssessmentFactors>{f}</AssessmentFactors>")
                add("          </FactorsIdentifiedAtAssessment>")
            add("        </Assessments>")
    cp_s, cp_e = r["cp_plan_start"], r["cp_plan_end"]
    # A child in need plan follows a completed assessment when no protection plan does.
    if cp_s is None and a_auth is not None and not nfa:
        p_start = a_auth + 3
        p_end = r["closure_date"] if closed else None
        if (
            p_start <= last
            and (p_end is None or p_end >= first)
            and (p_end is None or p_end >= p_start)
        ):
            add("        <CINPlanDates>", "cin_plans", kid)
            add(f"          <CINPlanStartDate>{_iso(p_start)}</CINPlanStartDate>")
            if p_end is not None:
                add(f"          <CINPlanEndDate>{_iso(p_end)}</CINPlanEndDate>")
            add("        </CINPlanDates>")
    s47 = r["s47_start"]
    if s47 is not None and first <= s47 <= last:
        add("        <Section47>", "cin_section47", kid)
        add(f"          <S47ActualStartDate>{_iso(s47)}</S47ActualStartDate>")
        add(f"          <InitialCPCtarget>{_iso(s47 + 21)}</InitialCPCtarget>")
        if cp_s is not None and cp_s <= last:
            # Conferences sit on working days (rule 8875): a weekend plan start is
            # returned with the conference on the Monday after.
            icpc = cp_s + {5: 2, 6: 1}.get(_date(cp_s).weekday(), 0)
            add(f"          <DateOfInitialCPC>{_iso(icpc)}</DateOfInitialCPC>")
            add("          <ICPCnotRequired>false</ICPCnotRequired>")
        else:
            add("          <ICPCnotRequired>true</ICPCnotRequired>")
        add("        </Section47>")
    add(f"        <ReferralNFA>{'true' if nfa else 'false'}</ReferralNFA>")
    if cp_s is not None and cp_s <= last and (cp_e is None or cp_e >= first):
        add("        <ChildProtectionPlans>", "cin_cp_plans", kid)
        add(f"          <CPPstartDate>{_iso(cp_s)}</CPPstartDate>")
        if cp_e is not None and cp_e <= last:
            add(f"          <CPPendDate>{_iso(cp_e)}</CPPendDate>")
        cat = _ABUSE.get(r["cp_category"] or "NEGLECT", "NEG")
        add(f"          <InitialCategoryOfAbuse>{cat}</InitialCategoryOfAbuse>")
        add(f"          <LatestCategoryOfAbuse>{cat}</LatestCategoryOfAbuse>")
        add(f"          <NumberOfPreviousCPP>{max(int(r['_plans']) - 1, 0)}</NumberOfPreviousCPP>")
        reviews = [d for d in range(cp_s + 90, (cp_e or last) + 1, 182) if first <= d <= last]
        if reviews:
            add("          <Reviews>")
            for d in reviews:
                add(f"            <CPPreviewDate>{_iso(d)}</CPPreviewDate>")
            add("          </Reviews>")
        add("        </ChildProtectionPlans>")
    add("      </CINdetails>")


# --- SSDA903 ---

_ACTIV_EET = ("F1", "P1", "F2", "P2", "F4", "P4", "F5", "P5")
_ACTIV_NEET = ("G4", "G5", "G6")
_ACCOM = ("B", "D", "E", "K", "T", "U", "Z", "V", "W", "Y")


def _sex_903(kid: ChildInfo, year: int) -> str:
    if year >= 2025:
        return kid.sex
    return "1" if kid.sex == "M" else "2"


def _years_old(kid: ChildInfo, day: int) -> float:
    return (day - kid.dob) / YEAR


def _birthday(kid: ChildInfo, age: int) -> int:
    return birthday(kid.dob, age)


def _write_903(
    folder: Path, year: int, care: Care, kids: list[ChildInfo], rng: np.random.Generator
) -> list[dict[str, str | None]]:
    first, last = year_bounds(year)
    rows: dict[str, list[dict[str, str]]] = {t: [] for t in TABLE_FILES}
    kid_of: dict[str, list[ChildInfo]] = {t: [] for t in TABLE_FILES}
    in_header: dict[int, ChildInfo] = {}

    def emit(table: str, pidx: int, row: dict[str, str]) -> None:
        rows[table].append(row)
        kid_of[table].append(kids[pidx])

    by_child: dict[int, list[Period]] = {}
    for per in care.periods:
        by_child.setdefault(per.pidx, []).append(per)
    for pidx, pers in sorted(by_child.items()):
        kid = kids[pidx]
        looked_after = False
        for per in pers:
            eps = [
                e for e in per.episodes
                if e.decom <= last and (e.dec is None or e.dec >= first) and e.decom < WINDOW_DAYS
            ]  # fmt: skip
            for e in eps:
                looked_after = True
                done = e.dec is not None and e.dec <= last
                emit("Episodes", pidx, {
                    "CHILD": kid.lcs, "DECOM": _dmy(e.decom), "RNE": e.rne, "LS": e.ls,
                    "CIN": per.cin, "PLACE": e.place, "PLACE_PROVIDER": e.provider or "",
                    "DEC": _dmy(e.dec) if done else "", "REC": (e.rec or "") if done else "",
                    "REASON_PLACE_CHANGE": (e.reason_change or "") if done else "",
                    "HOME_POST": per.home_post, "PL_POST": e.pl_post, "URN": e.urn or "",
                })  # fmt: skip
                if e.rne == "S" and first <= e.decom <= last:
                    kind, la, when = per.prev_perm
                    emit("PrevPerm", pidx, {
                        "CHILD": kid.lcs, "DOB": _dmy(kid.dob), "PREV_PERM": kind,
                        "LA_PERM": la or "", "DATE_PERM": _dmy(when),
                    })  # fmt: skip
            for d, code in per.reviews:
                if first <= d <= last:
                    emit("Reviews", pidx, {
                        "CHILD": kid.lcs, "DOB": _dmy(kid.dob), "REVIEW": _dmy(d),
                        "REVIEW_CODE": code,
                    })  # fmt: skip
            for kind, d, back in per.missing:
                if first <= d <= last:
                    emit("Missing", pidx, {
                        "CHILD": kid.lcs, "DOB": _dmy(kid.dob), "MISSING": kind,
                        "MIS_START": _dmy(d), "MIS_END": _dmy(back) if back is not None and back <= last else "",
                    })  # fmt: skip
            if per.adopted and first <= int(per.adopted["day"]) <= last:
                ad = per.adopted
                emit("AD1", pidx, {
                    "CHILD": kid.lcs, "DOB": _dmy(kid.dob),
                    "DATE_INT": _dmy(ad["date_int"]),
                    "DATE_MATCH": _dmy(ad["date_match"]),
                    "FOSTER_CARE": str(ad["foster_care"]), "NB_ADOPTR": str(ad["nb_adoptr"]),
                    "SEX_ADOPTR": str(ad["sex_adoptr"]), "LS_ADOPTR": str(ad["ls_adoptr"]),
                })  # fmt: skip
            for decided, ceased, why in per.placed or []:
                live_until = ceased if ceased is not None else (per.end or WINDOW_DAYS)
                if decided <= last and live_until >= first and eps:
                    emit("PlacedAdoption", pidx, {
                        "CHILD": kid.lcs, "DOB": _dmy(kid.dob), "DATE_PLACED": _dmy(decided),
                        "DATE_PLACED_CEASED": _dmy(ceased) if ceased is not None and ceased <= last else "",
                        "REASON_PLACED_CEASED": (why or "") if ceased is not None and ceased <= last else "",
                    })  # fmt: skip
        if looked_after:
            in_header[pidx] = kid
            uasc = next((p for p in pers if p.uasc and p.start <= last), None)
            if uasc is not None:
                b18 = _birthday(kid, 18)
                emit("UASC", pidx, {
                    "CHILD": kid.lcs, "SEX": _sex_903(kid, year), "DOB": _dmy(kid.dob),
                    "DUC": _dmy(b18) if b18 <= last else "",
                })  # fmt: skip
            # OC2: looked after continuously for the 12 months to 31 March.
            if any(p.start <= last - 365 and (p.end is None or p.end > last) for p in pers):
                a = _years_old(kid, last)
                sdq = 4 <= a < 17
                scored = sdq and rng.random() < 0.8
                misuse = a >= 10 and rng.random() < 0.05
                received = misuse and rng.random() < 0.7
                emit("OC2", pidx, {
                    "CHILD": kid.lcs, "DOB": _dmy(kid.dob),
                    "SDQ_SCORE": str(int(rng.integers(0, 41))) if scored else "",
                    "SDQ_REASON": _choice(rng, ("SDQ1", "SDQ2", "SDQ3", "SDQ4", "SDQ5"), (0.4, 0.2, 0.2, 0.1, 0.1)) if sdq and not scored else "",
                    "CONVICTED": ("1" if rng.random() < 0.03 else "0") if a >= 10 else "",
                    "HEALTH_CHECK": ("1" if rng.random() < 0.9 else "0") if a < 5 else "",
                    "IMMUNISATIONS": "1" if rng.random() < 0.88 else "0",
                    "TEETH_CHECK": "1" if rng.random() < 0.75 else "0",
                    "HEALTH_ASSESSMENT": "1" if rng.random() < 0.9 else "0",
                    "SUBSTANCE_MISUSE": "1" if misuse else "0",
                    "INTERVENTION_RECEIVED": ("1" if received else "0") if misuse else "",
                    "INTERVENTION_OFFERED": ("1" if rng.random() < 0.8 else "0") if misuse and not received else "",
                })  # fmt: skip
        # OC3: care leavers whose 17th to 21st birthday falls in the year.
        leaver = _care_leaver(kid, pers)
        if leaver is not None:
            for age in range(17, 22):
                bday = _birthday(kid, age)
                if first <= bday <= last and leaver < bday:
                    eet = rng.random() < (0.55 if age >= 19 else 0.65)
                    suitable = rng.random() < 0.88
                    emit("OC3", pidx, {
                        "CHILD": kid.lcs, "DOB": _dmy(kid.dob),
                        "IN_TOUCH": _choice(rng, ("YES", "NO", "REFU", "NREQ"), (0.9, 0.05, 0.02, 0.03)),
                        "ACTIV": _choice(rng, _ACTIV_EET if eet else _ACTIV_NEET, (1.0,) * (8 if eet else 3)),
                        "ACCOM": _choice(rng, _ACCOM, (1.0,) * len(_ACCOM)) + ("1" if suitable else "2"),
                    })  # fmt: skip
                    in_header[pidx] = kid
    for pidx, kid in sorted(in_header.items()):
        mother = care.mothers.get(pidx)
        is_mother = mother is not None and mother <= last
        emit("Header", pidx, {
            "CHILD": kid.lcs, "SEX": _sex_903(kid, year), "DOB": _dmy(kid.dob),
            "ETHNIC": kid.ethnicity, "UPN": kid.upn or ("UN1" if _years_old(kid, last) < 5 else "UN2"),
            "MOTHER": ("1" if is_mother else "0") if kid.sex == "F" else "",
            "MC_DOB": _dmy(mother) if is_mother else "",
        })  # fmt: skip
    truth: list[dict[str, str | None]] = []
    if not rows["Episodes"]:
        # Nobody looked after in the year (a small county can have such a year): no return,
        # as a 903 without episodes is not one (ingest refuses an empty Episodes table).
        return truth
    folder.mkdir(parents=True, exist_ok=True)
    for table, file in TABLE_FILES.items():
        frame = pl.DataFrame(rows[table], schema={c: pl.Utf8 for c in TABLE_COLUMNS[table]})
        frame.write_csv(folder / file)
        source = RETURN_SOURCE[table]
        for i, kid in enumerate(kid_of[table]):
            truth.append(_truth(source, f"{year}/{file}:{i + 2}", kid))
    return truth


def _care_leaver(kid: ChildInfo, pers: list[Period]) -> int | None:
    """The day a young person left care as a 'former relevant child' (looked after for at
    least 13 weeks after their 14th birthday, some of it after their 16th, and ceased
    aged 16 or over), else None."""
    b14, b16 = _birthday(kid, 14), _birthday(kid, 16)
    ended = [p for p in pers if p.end is not None]
    if not ended:
        return None
    last = max(ended, key=lambda p: p.end or 0)
    assert last.end is not None
    if last.end < b16 or any(p.end is None for p in pers):
        return None
    after14 = sum(max(0, (p.end or 0) - max(p.start, b14)) for p in ended)
    return last.end if after14 >= 91 else None


def add_returns(
    out: Path,
    social_care: pl.DataFrame,
    pop: Population,
    county: County,
    lcs_ids: pl.DataFrame,
    seed: int,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The generator's one call: plan the looked-after periods, write both returns under
    `out/returns/`, and give back the social care events (with the planned `cla_start` and
    `cla_end`) and the truth rows of every return row written."""
    social_care, care = plan_care(social_care, pop, county, seed)
    truth = write_returns(out, care, social_care, pop, lcs_ids, seed)
    return social_care, truth
