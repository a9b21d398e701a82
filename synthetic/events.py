"""Needs and the events they leave in each source system.

The model: every household has a latent risk (part deprivation of where it
lives, part the family itself). Families with children whose risk tips them
into difficulty (a "complex" family) acquire some of the ten Supporting
Families needs at an onset date; each need leaves traces in the systems that
would see it (police for domestic abuse, schools for attendance, DWP for
worklessness, ...). Most complex families meet Early Help, some go straight to
social care, some step up or down between them. A share make significant and
sustained progress: their need-driven events stop after the episode closes.
On top of this, background events happen to everyone (every child is in the
school census, most 3-4 year olds take a funded place, some adults claim
benefits, some incidents are unrelated to any need).

Two kinds of stage, each a function drawing from a random stream of its own:
- **what happened** (`Shared`): the families' needs and pathways, children's referrals to
  social care, offending and domestic abuse incidents. More than one system sees these
  (an offence reaches the police and youth justice; a child present at a domestic abuse
  incident may be the subject of a Front Door contact), so they are drawn once, before
  any source, and passed to every source explicitly;
- **what each system recorded** (`SOURCES`, one function per source extract).

Each stream is `SeedSequence(seed, spawn_key=(EVENTS_STREAM, key))` with `key` a fixed
constant per stage (`STREAMS`), not its position: adding, removing or changing one
source's function leaves every other source's events as they were
(tests/test_synthetic_streams.py proves it). A new source takes a new constant.

All events are produced as unrendered frames: truth person id, dates, codes.
`synthetic.render` turns them into extracts (names, addresses, noise).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from pipelines.contracts import NEEDS
from synthetic.population import WINDOW_DAYS, WINDOW_START, YEAR, Population

# Marginal share of complex families with each need (before risk tilts them).
NEED_BASE_RATES: dict[str, float] = {
    "EDUCATION": 0.45,
    "EARLY_YEARS": 0.35,
    "HEALTH": 0.45,
    "SUBSTANCE": 0.15,
    "RELATIONSHIPS": 0.45,
    "ABUSE_EXPLOITATION": 0.15,
    "CRIME": 0.20,
    "DOMESTIC_ABUSE": 0.30,
    "HOUSING": 0.20,
    "FINANCIAL": 0.40,
}
COMPLEX_INTERCEPT = -1.85
COMPLEX_SLOPE = 1.2
# Years of history before the window: families whose difficulties began earlier are
# still open to services when the extracts start, as in a real council, so the first
# year of the window is not a ramp-up from zero.
BURN_IN_DAYS = int(3 * 365.25)
# Calibration to England's published rates (DfE, "Children in need", reporting year
# 2024): referrals about 520 per 10,000 children a year, children in need at 31 March
# about 330 per 10,000, child protection plans at 31 March about 42 per 10,000.
# tests/test_synthetic_rates.py measures what the county publishes against them.
BACKGROUND_REFERRAL_RATE = 0.04  # referrals per child-year at average family risk
BACKGROUND_REFERRAL_RISK = 0.8  # log-rate per unit of family risk
BACKGROUND_IN_NEED = 0.6  # share of background referrals assessed as in need
BACKGROUND_CP = 0.06  # share of those in need who go onto a child protection plan

# The events' random streams. The first element of every spawn key names the events
# (the renderer and other generators use other first elements); the second is the
# stage's constant below. Never reuse or renumber a constant: that would change the
# county for every seed.
EVENTS_STREAM = 17
STREAMS: dict[str, int] = {
    # what happened
    "families": 1,
    "referrals": 2,
    "offending": 3,
    "domestic_abuse": 4,
    # what each system recorded
    "early_help": 101,
    "social_care": 102,
    "front_door": 103,
    "police": 104,
    "youth_justice": 105,
    "school_census": 106,
    "early_years": 107,
    "dwp": 108,
    "adult_social_care": 109,
    "housing": 110,
    "neet": 111,
    "health": 112,
    "objections": 113,
}
if len(set(STREAMS.values())) != len(STREAMS):  # pragma: no cover - a coding error
    raise RuntimeError("synthetic.events.STREAMS: two stages share a stream")

NAT = np.datetime64("NaT")


def stream(seed: int, stage: str) -> np.random.Generator:
    """The random generator of one stage (a key of `STREAMS`) for a county's seed."""
    return np.random.default_rng(
        np.random.SeedSequence(seed, spawn_key=(EVENTS_STREAM, STREAMS[stage]))
    )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


@dataclass(frozen=True)
class Events:
    families: pl.DataFrame  # truth: needs, pathway, progress per family
    by_source: dict[str, pl.DataFrame]  # unrendered events per source, with person_id


def _date(day: np.ndarray) -> np.ndarray:
    return WINDOW_START + np.asarray(day, dtype=np.int64).astype("timedelta64[D]")


def _opt(mask: np.ndarray, values: np.ndarray | str) -> pl.Series:
    """A text column that is blank where mask is False (never an object column)."""
    vals = np.broadcast_to(np.asarray(values, dtype=object), mask.shape)
    return pl.Series([v if m else None for m, v in zip(mask, vals, strict=True)], dtype=pl.Utf8)


def _spread(
    rng: np.random.Generator, idx: np.ndarray, start: np.ndarray, end: np.ndarray, rate: float
) -> tuple[np.ndarray, np.ndarray]:
    """Poisson events at `rate` per year for each (idx, [start, end)) interval."""
    span = np.maximum(end - start, 0)
    n = rng.poisson(rate * span / YEAR)
    rep = np.repeat(np.arange(len(idx)), n)
    day = start[rep] + (rng.random(len(rep)) * span[rep]).astype(np.int64)
    return idx[rep], day


def _spread_in_need(
    rng: np.random.Generator, people: People, families: Families, who: np.ndarray, rate: float
) -> tuple[np.ndarray, np.ndarray]:
    """Poisson events at `rate` per year for each of `who` while their household is in need
    (its need interval, clipped to the window)."""
    hh = people.p_hh[who]
    start = np.maximum(families.need_start[hh], 0)
    return _spread(rng, who, start, np.minimum(families.need_end[hh], WINDOW_DAYS), rate)


# ---------------------------------------------------------------------------------------
# What happened (shared by several sources)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class People:
    """The population as arrays indexed by person (pidx) or household (household index)."""

    p_hh: np.ndarray  # household index of each person
    p_role: np.ndarray  # ADULT, YOUNG_ADULT, CHILD
    p_sex: np.ndarray
    dob_day: np.ndarray  # date of birth, days from the window start
    risk: np.ndarray  # per household

    @classmethod
    def of(cls, pop: Population) -> People:
        people = pop.people
        dob = people["dob"].to_numpy().astype("datetime64[D]")
        return cls(
            p_hh=people["household_index"].to_numpy(),
            p_role=people["role"].to_numpy(),
            p_sex=people["sex"].to_numpy(),
            dob_day=(dob - WINDOW_START).astype(np.int64),
            risk=pop.households["risk"].to_numpy(),
        )

    @property
    def n_p(self) -> int:
        return len(self.p_hh)

    @property
    def n_hh(self) -> int:
        return len(self.risk)

    @property
    def adults(self) -> np.ndarray:
        return self.p_role == "ADULT"

    @property
    def children(self) -> np.ndarray:
        return self.p_role == "CHILD"

    def age_at(self, pidx: np.ndarray, day: np.ndarray) -> np.ndarray:
        return (day - self.dob_day[pidx]) / YEAR

    def alive_at(self, pidx: np.ndarray, day: np.ndarray) -> np.ndarray:
        return day >= self.dob_day[pidx]

    def members_of(self, fam_mask: np.ndarray, who: np.ndarray | None = None) -> np.ndarray:
        """The people (pidx, ascending) of the households in `fam_mask`, among `who`."""
        sel = fam_mask[self.p_hh]
        if who is not None:
            sel = sel & who
        return np.flatnonzero(sel)


@dataclass(frozen=True, eq=False)
class Families:
    """Per household: complex or not, its needs, its pathway through services, progress,
    and when its needs are active (days from the window start)."""

    truth: pl.DataFrame  # the families frame of the ground truth
    complex_: np.ndarray
    needs: np.ndarray  # household x NEEDS
    onset: np.ndarray
    eh: np.ndarray
    eh_start: np.ndarray
    eh_end: np.ndarray
    progress: np.ndarray
    step_up: np.ndarray
    csc_first: np.ndarray
    csc: np.ndarray
    csc_start: np.ndarray
    csc_end: np.ndarray
    step_down: np.ndarray
    sd_start: np.ndarray
    sd_end: np.ndarray
    sd_progress: np.ndarray
    rereferral: np.ndarray
    rr_start: np.ndarray
    rr_end: np.ndarray
    need_start: np.ndarray
    need_end: np.ndarray
    # Circumstances two sources see: low income (free school meals, funded two-year-old
    # places) and the school or setting each person's area is served by.
    fsm_fam: np.ndarray
    urn_of_p: np.ndarray  # per person

    def active(self, need: str) -> np.ndarray:
        return self.needs[:, NEEDS.index(need)] & self.complex_


def families(p: People, rng: np.random.Generator) -> Families:
    n_hh, risk, p_hh, p_role = p.n_hh, p.risk, p.p_hh, p.p_role
    has_child = np.zeros(n_hh, bool)
    has_child[p_hh[p_role == "CHILD"]] = True
    p_complex = _sigmoid(COMPLEX_INTERCEPT + COMPLEX_SLOPE * risk)
    complex_ = has_child & (rng.random(n_hh) < p_complex)
    onset = rng.integers(-BURN_IN_DAYS, WINDOW_DAYS, n_hh)
    needs = np.zeros((n_hh, len(NEEDS)), bool)
    for j, need in enumerate(NEEDS):
        prob = _sigmoid(_logit(NEED_BASE_RATES[need]) + 0.8 * (risk - 1.0))
        needs[:, j] = complex_ & (rng.random(n_hh) < prob)
    # Age-specific needs only where a child of that age exists.
    young_kid = np.zeros(n_hh, bool)
    school_kid = np.zeros(n_hh, bool)
    a_on = (onset[p_hh] - p.dob_day) / YEAR
    young_kid[p_hh[(p_role == "CHILD") & (a_on < 5)]] = True
    school_kid[p_hh[(p_role == "CHILD") & (a_on >= 4) & (a_on < 17)]] = True
    needs[:, NEEDS.index("EARLY_YEARS")] &= young_kid
    needs[:, NEEDS.index("EDUCATION")] &= school_kid
    none = complex_ & ~needs.any(axis=1)
    needs[none, NEEDS.index("RELATIONSHIPS")] = True

    abuse = needs[:, NEEDS.index("ABUSE_EXPLOITATION")]
    p_csc_only = np.where(abuse, 0.55, 0.12)
    csc_first = complex_ & (rng.random(n_hh) < p_csc_only)
    eh = complex_ & ~csc_first
    eh_start = onset + rng.integers(14, 120, n_hh)
    eh_end = eh_start + rng.integers(90, 400, n_hh)
    progress_p = _sigmoid(0.7 - 0.6 * (risk - 1.0))
    step_up = eh & (rng.random(n_hh) < 0.12)
    progress = eh & ~step_up & (rng.random(n_hh) < progress_p)
    # CSC episodes: families that went straight there, and step-ups from EH.
    csc = csc_first | step_up
    csc_start = np.where(
        csc_first, onset + rng.integers(7, 60, n_hh), eh_end + rng.integers(1, 21, n_hh)
    )
    csc_end = csc_start + rng.integers(60, 500, n_hh)
    step_down = csc_first & (rng.random(n_hh) < 0.35)
    sd_start = csc_end + rng.integers(1, 30, n_hh)
    sd_end = sd_start + rng.integers(90, 300, n_hh)
    sd_progress = step_down & (rng.random(n_hh) < progress_p)
    # When need-driven events stop: sustained progress ends them after closure.
    resolved_day = np.full(n_hh, WINDOW_DAYS + 1000)
    resolved_day = np.where(progress, eh_end + rng.integers(0, 60, n_hh), resolved_day)
    resolved_day = np.where(sd_progress, sd_end + rng.integers(0, 60, n_hh), resolved_day)
    # Re-referral to Early Help within the window for some families without progress.
    rereferral = eh & ~progress & ~step_up & (rng.random(n_hh) < 0.25)
    rr_start = eh_end + rng.integers(60, 540, n_hh)
    rr_end = rr_start + rng.integers(90, 300, n_hh)
    need_start = np.clip(onset - rng.integers(0, 365, n_hh), -365, None)
    need_end = np.minimum(resolved_day, WINDOW_DAYS)
    fsm_fam = rng.random(n_hh) < _sigmoid(-1.6 + 1.0 * risk)
    urn_of_p = 100000 + rng.integers(0, max(8, p.n_p // 1200), p.n_p)

    truth = pl.DataFrame(
        {
            "complex": complex_,
            "needs": [";".join(n for n, f in zip(NEEDS, row, strict=True) if f) for row in needs],
            "onset": _date(onset),
            "early_help": eh,
            "csc": csc,
            "step_up": step_up,
            "step_down": step_down,
            "sustained_progress": progress | sd_progress,
            "rereferral": rereferral,
        }
    ).with_columns(pl.col("onset").cast(pl.Date))
    return Families(
        truth=truth,
        complex_=complex_,
        needs=needs,
        onset=onset,
        eh=eh,
        eh_start=eh_start,
        eh_end=eh_end,
        progress=progress,
        step_up=step_up,
        csc_first=csc_first,
        csc=csc,
        csc_start=csc_start,
        csc_end=csc_end,
        step_down=step_down,
        sd_start=sd_start,
        sd_end=sd_end,
        sd_progress=sd_progress,
        rereferral=rereferral,
        rr_start=rr_start,
        rr_end=rr_end,
        need_start=need_start,
        need_end=need_end,
        fsm_fam=fsm_fam,
        urn_of_p=urn_of_p,
    )


@dataclass(frozen=True, eq=False)
class Referrals:
    """Children's referrals to social care (one row per episode, days from the window
    start), before what the case system recorded about each."""

    pidx: np.ndarray
    start: np.ndarray
    end: np.ndarray
    is_cp: np.ndarray  # goes onto a child protection plan
    was_step_down: np.ndarray  # stepped down to Early Help at closure
    from_front_door: np.ndarray  # came in through the Front Door as a contact


def referrals(p: People, fam: Families, rng: np.random.Generator) -> Referrals:
    n_hh, p_hh, dob_day = p.n_hh, p.p_hh, p.dob_day
    abuse = fam.needs[:, NEEDS.index("ABUSE_EXPLOITATION")]
    cp_fams = fam.csc & (abuse | (rng.random(n_hh) < 0.2))
    csc_children = p.members_of(fam.csc, p.children)
    csc_children = csc_children[p.alive_at(csc_children, fam.csc_start[p_hh[csc_children]])]
    csc_children = csc_children[p.age_at(csc_children, fam.csc_start[p_hh[csc_children]]) < 18]
    # Background referrals: concerns about children outside the complex families, at a
    # rate that rises with family risk, over each child's childhood within the span. Most
    # are assessed as in need and stay open for months; the rest close within weeks.
    bg_kids = np.flatnonzero(p.children & ~fam.complex_[p_hh])
    tilt = np.exp(BACKGROUND_REFERRAL_RISK * p.risk[p_hh[bg_kids]])
    rate = BACKGROUND_REFERRAL_RATE * tilt / tilt.mean()
    lo = np.maximum(-BURN_IN_DAYS, dob_day[bg_kids] + 1)
    hi = np.minimum(WINDOW_DAYS, dob_day[bg_kids] + int(18 * YEAR))
    span = np.maximum(hi - lo, 0)
    n_refs = rng.poisson(rate * span / YEAR)
    rep = np.repeat(np.arange(len(bg_kids)), n_refs)
    bg_children = bg_kids[rep]
    bg_start = lo[rep] + (rng.random(len(rep)) * span[rep]).astype(np.int64)
    bg_need = rng.random(len(rep)) < BACKGROUND_IN_NEED
    bg_end = bg_start + np.where(
        bg_need, rng.integers(60, 640, len(rep)), rng.integers(2, 40, len(rep))
    )
    bg_cp = bg_need & (rng.random(len(rep)) < BACKGROUND_CP)
    c_pidx = np.concatenate([csc_children, bg_children])
    c_start = np.concatenate([fam.csc_start[p_hh[csc_children]], bg_start]) + rng.integers(
        0, 5, len(c_pidx)
    )
    c_end = np.concatenate([fam.csc_end[p_hh[csc_children]], bg_end])
    is_cp = np.concatenate([cp_fams[p_hh[csc_children]], bg_cp])
    was_step_down = np.concatenate(
        [fam.step_down[p_hh[csc_children]], np.zeros(len(bg_children), bool)]
    )
    # Re-referrals: some children come back after their case closed, most within a year
    # (the CIN census re-referral measure); some of those on a plan go onto a second plan.
    back = (rng.random(len(c_pidx)) < 0.4) & ~was_step_down
    n_back = int(back.sum())
    r_start = c_end[back] + rng.integers(7, 240, n_back)
    c_pidx = np.concatenate([c_pidx, c_pidx[back]])
    c_start = np.concatenate([c_start, r_start])
    c_end = np.concatenate([c_end, r_start + rng.integers(20, 400, n_back)])
    is_cp = np.concatenate([is_cp, is_cp[back] & (rng.random(n_back) < 0.4)])
    was_step_down = np.concatenate([was_step_down, np.zeros(n_back, bool)])
    # Episodes of one child do not overlap: a referral while a case is open is not a new
    # referral. Children are referred only while under 18.
    episodes = pl.DataFrame({"p": c_pidx, "s": c_start, "e": c_end}).with_row_index("i")
    open_until = (
        episodes.sort("p", "s")
        .with_columns(pl.col("e").shift(1).cum_max().over("p").fill_null(-(10**9)).alias("m"))
        .sort("i")["m"]
        .to_numpy()
    )
    keep = (
        (c_start > open_until)
        & (c_start < WINDOW_DAYS - 5)
        & (p.age_at(c_pidx, c_start) < 18)
        & (c_start > dob_day[c_pidx])
    )
    from_front_door = np.r_[
        np.zeros(len(csc_children), bool), np.ones(len(bg_children), bool), np.ones(n_back, bool)
    ]
    return Referrals(
        pidx=c_pidx[keep],
        start=c_start[keep],
        end=c_end[keep],
        is_cp=is_cp[keep],
        was_step_down=was_step_down[keep],
        from_front_door=from_front_door[keep],
    )


@dataclass(frozen=True, eq=False)
class Offences:
    """Offences committed by members of families with the crime need."""

    pidx: np.ndarray
    day: np.ndarray
    kind: np.ndarray  # VIOLENCE, THEFT, CRIMINAL_DAMAGE, DRUGS, ASB


def offending(p: People, fam: Families, rng: np.random.Generator) -> Offences:
    offenders = p.members_of(
        fam.active("CRIME"), (p.p_role == "YOUNG_ADULT") | p.adults | p.children
    )
    off_age = p.age_at(offenders, np.maximum(fam.onset[p.p_hh[offenders]], 0))
    offenders = offenders[(off_age >= 10) & (rng.random(len(offenders)) < 0.6)]
    o_idx, o_day = _spread_in_need(rng, p, fam, offenders, 1.5)
    kinds = np.array(["VIOLENCE", "THEFT", "CRIMINAL_DAMAGE", "DRUGS", "ASB"])
    return Offences(pidx=o_idx, day=o_day, kind=kinds[rng.integers(0, 5, len(o_idx))])


@dataclass(frozen=True, eq=False)
class AbuseIncidents:
    """Domestic abuse incidents: one row per person involved, in incident then person
    order. Adults are victim or suspect; a child is present at some of them."""

    pidx: np.ndarray
    day: np.ndarray
    role: np.ndarray  # VICTIM, SUSPECT, CHILD_PRESENT, WITNESS


def domestic_abuse(p: People, fam: Families, rng: np.random.Generator) -> AbuseIncidents:
    da = fam.active("DOMESTIC_ABUSE")
    fam_idx, inc_day = _spread(
        rng,
        np.flatnonzero(da),
        np.maximum(fam.need_start[da], 0),
        np.minimum(fam.need_end[da], WINDOW_DAYS),
        2.0,
    )
    # Everyone in the household at the incident, born by then.
    order = np.argsort(p.p_hh, kind="stable")
    bounds = np.searchsorted(p.p_hh[order], np.arange(p.n_hh + 1))
    size = bounds[fam_idx + 1] - bounds[fam_idx]
    inc = np.repeat(np.arange(len(fam_idx)), size)
    offset = np.arange(len(inc)) - np.repeat(np.cumsum(size) - size, size)
    who = order[bounds[fam_idx][inc] + offset]
    day = inc_day[inc]
    born = p.dob_day[who] <= day
    who, day = who[born], day[born]
    minor = (day - p.dob_day[who]) / YEAR < 18
    role = np.where(
        p.p_role[who] == "ADULT",
        np.where(p.p_sex[who] == "F", "VICTIM", "SUSPECT"),
        np.where(minor, "CHILD_PRESENT", "WITNESS"),
    )
    # Children are at most incidents, not all of them.
    keep = (role != "CHILD_PRESENT") | (rng.random(len(who)) <= 0.7)
    return AbuseIncidents(pidx=who[keep], day=day[keep], role=role[keep])


@dataclass(frozen=True, eq=False)
class Shared:
    """What happened, drawn before any source and read by the sources' functions."""

    people: People
    families: Families
    referrals: Referrals
    offences: Offences
    abuse: AbuseIncidents


def what_happened(pop: Population, seed: int) -> Shared:
    p = People.of(pop)
    fam = families(p, stream(seed, "families"))
    return Shared(
        people=p,
        families=fam,
        referrals=referrals(p, fam, stream(seed, "referrals")),
        offences=offending(p, fam, stream(seed, "offending")),
        abuse=domestic_abuse(p, fam, stream(seed, "domestic_abuse")),
    )


# ---------------------------------------------------------------------------------------
# What each system recorded: one function per source, (Shared, its generator) -> events
# ---------------------------------------------------------------------------------------


def early_help(s: Shared, rng: np.random.Generator) -> pl.DataFrame:
    """EHM: Early Help episodes (first, stepped down from social care, re-referred), one
    row per family member per episode."""
    p, fam = s.people, s.families
    n_hh, p_hh = p.n_hh, p.p_hh
    needs_text = fam.truth["needs"].to_numpy()
    rows = []
    ep_counter = 0
    for mask, start, end, stepped, prog, kind in (
        (fam.eh, fam.eh_start, fam.eh_end, False, fam.progress, "eh"),
        (fam.step_down, fam.sd_start, fam.sd_end, True, fam.sd_progress, "sd"),
        (fam.rereferral, fam.rr_start, fam.rr_end, False, np.zeros(n_hh, bool), "rr"),
    ):
        # In the extract: episodes open at any time in the window.
        fams = np.flatnonzero(mask & (start < WINDOW_DAYS) & (end >= 0))
        if len(fams) == 0:
            continue
        fam_ep = np.full(n_hh, -1)
        fam_ep[fams] = np.arange(ep_counter, ep_counter + len(fams))
        ep_counter += len(fams)
        in_ep = np.zeros(n_hh, bool)
        in_ep[fams] = True
        pidx = p.members_of(in_ep)
        pidx = pidx[p.alive_at(pidx, start[p_hh[pidx]])]
        f = p_hh[pidx]
        st = start[f]
        e = end[f]
        closed = e < WINDOW_DAYS
        if kind == "eh":
            reason = np.where(
                fam.step_up[f], "STEP_UP_CSC", np.where(prog[f], "OUTCOMES_MET", "DISENGAGED")
            )
        else:
            reason = np.where(prog[f], "OUTCOMES_MET", "UNIVERSAL_SERVICES")
        has_assess = rng.random(n_hh)[f] < 0.92
        source = np.array(
            ["SCHOOL", "HEALTH_VISITOR", "GP", "POLICE", "SELF", "FAMILY", "HOUSING", "OTHER"]
        )[rng.integers(0, 8, n_hh)[f]]
        if stepped:
            source = np.full(len(f), "SOCIAL_CARE")
        rows.append(
            pl.DataFrame(
                {
                    "pidx": pidx,
                    "episode_no": fam_ep[f],
                    "referral_date": _date(st),
                    "referral_source": source,
                    "assessment_date": np.where(has_assess, _date(st + 20), NAT),
                    "plan_start": np.where(has_assess, _date(st + 35), NAT),
                    "tafreviews": np.where(
                        has_assess, np.maximum((np.minimum(e, WINDOW_DAYS) - st - 35) // 42, 0), 0
                    ),
                    "closure_date": np.where(closed, _date(np.minimum(e, WINDOW_DAYS - 1)), NAT),
                    "closure_reason": _opt(closed, reason),
                    "stepped_down_from_csc": np.full(len(f), "Y" if stepped else "N"),
                    "needs": needs_text[f],
                }
            )
        )
    return pl.concat(rows).with_columns(
        pl.col(c).cast(pl.Date)
        for c in ("referral_date", "assessment_date", "plan_start", "closure_date")
    )


def social_care(s: Shared, rng: np.random.Generator) -> pl.DataFrame:
    """The case system: each referral's assessment, section 47 enquiry, child protection
    plan and care episode."""
    r = s.referrals
    c_start = r.start
    is_cp = r.is_cp
    n_c = len(r.pidx)
    assessed = rng.random(n_c) < 0.93
    assess_days = np.where(
        rng.random(n_c) < 0.85, rng.integers(10, 45, n_c), rng.integers(46, 90, n_c)
    )
    s47 = is_cp | (rng.random(n_c) < 0.08)
    cp_start = c_start + rng.integers(20, 50, n_c)
    cp_len = np.where(
        rng.random(n_c) < 0.05, rng.integers(730, 900, n_c), rng.integers(120, 600, n_c)
    )
    cp_end = cp_start + cp_len
    cla = is_cp & (rng.random(n_c) < 0.12)
    cla_start = cp_start + rng.integers(30, 200, n_c)
    cla_end = cla_start + rng.integers(60, 700, n_c)
    # An episode stays open while its plans and care last.
    c_end = np.where(is_cp, np.maximum(r.end, cp_end + 1), r.end)
    c_end = np.where(cla, np.maximum(c_end, cla_end + 1), c_end)
    closed = c_end < WINDOW_DAYS

    def in_w(d: np.ndarray) -> np.ndarray:
        return d < WINDOW_DAYS

    out = pl.DataFrame(
        {
            "pidx": r.pidx,
            "referral_date": _date(c_start),
            "referral_source": np.array(
                ["SCHOOL", "POLICE", "HEALTH_VISITOR", "GP", "FAMILY", "ANON", "OTHER"]
            )[rng.integers(0, 7, n_c)],
            "primary_need": np.where(
                is_cp,
                "N1",
                np.array(["N1", "N2", "N3", "N4", "N5", "N6", "N7", "N8", "N9"])[
                    rng.integers(0, 9, n_c)
                ],
            ),
            "assessment_start": np.where(assessed & in_w(c_start + 2), _date(c_start + 2), NAT),
            "assessment_authorised": np.where(
                assessed & in_w(c_start + 2 + assess_days), _date(c_start + 2 + assess_days), NAT
            ),
            "s47_start": np.where(s47 & in_w(c_start + 5), _date(c_start + 5), NAT),
            "cp_plan_start": np.where(is_cp & in_w(cp_start), _date(cp_start), NAT),
            "cp_plan_end": np.where(is_cp & in_w(cp_end), _date(cp_end), NAT),
            "cp_category": _opt(
                is_cp,
                np.array(["NEGLECT", "PHYSICAL", "EMOTIONAL", "SEXUAL", "MULTIPLE"])[
                    rng.choice(5, n_c, p=[0.48, 0.08, 0.35, 0.04, 0.05])
                ],
            ),
            "cla_start": np.where(cla & in_w(cla_start), _date(cla_start), NAT),
            "cla_end": np.where(cla & in_w(cla_end), _date(cla_end), NAT),
            "closure_date": np.where(closed, _date(np.minimum(c_end, WINDOW_DAYS - 1)), NAT),
            "closure_reason": _opt(
                closed,
                np.where(
                    r.was_step_down,
                    "STEP_DOWN_EH",
                    np.array(["RC1", "RC2", "RC4", "RC8"])[rng.integers(0, 4, n_c)],
                ),
            ),
        }
    ).with_columns(
        pl.col(c).cast(pl.Date)
        for c in (
            "referral_date",
            "assessment_start",
            "assessment_authorised",
            "s47_start",
            "cp_plan_start",
            "cp_plan_end",
            "cla_start",
            "cla_end",
            "closure_date",
        )
    )
    # In the extract: episodes open at any time in the window (earlier ones are history).
    return out.filter(
        pl.col("closure_date").is_null()
        | (pl.col("closure_date") >= pl.lit(WINDOW_START.astype("datetime64[D]").item()))
    )


def front_door(s: Shared, rng: np.random.Generator) -> pl.DataFrame:
    """Front Door contacts about children: before each Early Help or social care episode,
    every referral that came through it, some after a domestic abuse incident a child was
    present at, and background contacts that go no further."""
    p, fam, r = s.people, s.families, s.referrals
    dob_day, p_hh = p.dob_day, p.p_hh
    parts = []
    for mask, start, decision in (
        (fam.eh, fam.eh_start, "EARLY_HELP"),
        (fam.csc_first, fam.csc_start, "SOCIAL_CARE"),
    ):
        kids = p.members_of(mask, p.children)
        d = start[p_hh[kids]] - rng.integers(1, 14, len(kids))
        ok = (d >= 0) & (d < WINDOW_DAYS) & (d > dob_day[kids])
        parts.append((kids[ok], d[ok], np.full(ok.sum(), decision)))
    ffd = r.from_front_door
    n_ffd = int(ffd.sum())
    parts.append(
        (r.pidx[ffd], r.start[ffd] - rng.integers(0, 3, n_ffd), np.full(n_ffd, "SOCIAL_CARE"))
    )
    bg = np.flatnonzero(p.children & (rng.random(p.n_p) < 0.30))
    d = rng.integers(0, WINDOW_DAYS, len(bg))
    ok = d > dob_day[bg]
    parts.append((bg[ok], d[ok], np.where(rng.random(ok.sum()) < 0.6, "NFA", "INFO_ADVICE")))
    # Half the children present at a domestic abuse incident are the subject of a contact
    # the next day (a police notification).
    present = np.flatnonzero(s.abuse.role == "CHILD_PRESENT")
    present = present[rng.random(len(present)) < 0.5]
    parts.append(
        (
            s.abuse.pidx[present],
            s.abuse.day[present] + 1,
            np.where(rng.random(len(present)) < 0.5, "NFA", "INFO_ADVICE"),
        )
    )
    fd_p = np.concatenate([x[0] for x in parts])
    fd_d = np.concatenate([x[1] for x in parts])
    fd_dec = np.concatenate([x[2] for x in parts])
    # The Front Door takes contacts about children: nobody 18 or over, nobody unborn.
    ok = (fd_d >= 0) & (fd_d < WINDOW_DAYS) & (fd_d > dob_day[fd_p]) & (p.age_at(fd_p, fd_d) < 18)
    n_fd = int(ok.sum())
    return pl.DataFrame(
        {
            "pidx": fd_p[ok],
            "contact_date": _date(fd_d[ok]),
            "contact_source": np.array(
                ["SCHOOL", "POLICE", "HEALTH_VISITOR", "GP", "SELF", "FAMILY", "ANON", "OTHER"]
            )[rng.choice(8, n_fd, p=[0.25, 0.3, 0.1, 0.08, 0.07, 0.08, 0.04, 0.08])],
            "decision": fd_dec[ok],
        }
    ).with_columns(pl.col("contact_date").cast(pl.Date))


def _substance_users(s: Shared) -> np.ndarray:
    return s.people.members_of(s.families.active("SUBSTANCE"), s.people.adults)


def police(s: Shared, rng: np.random.Generator) -> pl.DataFrame:
    """Police incidents: domestic abuse (everyone involved, one incident reference),
    offences, drug incidents of adults with the substance need, and background incidents."""
    p, fam, o, da = s.people, s.families, s.offences, s.abuse
    users = _substance_users(s)
    u_idx, u_day = _spread_in_need(rng, p, fam, users, 0.5)
    grown = np.flatnonzero(p.p_role != "CHILD")
    b_idx, b_day = _spread(
        rng, grown, np.zeros(len(grown), np.int64), np.full(len(grown), WINDOW_DAYS), 0.03
    )
    b_type = np.array(["ASB", "THEFT", "VIOLENCE", "CRIMINAL_DAMAGE", "OTHER"])[
        rng.integers(0, 5, len(b_idx))
    ]
    b_role = np.array(["VICTIM", "WITNESS", "SUSPECT"])[
        rng.choice(3, len(b_idx), p=[0.5, 0.3, 0.2])
    ]
    pol = pl.DataFrame(
        {
            "pidx": np.concatenate([da.pidx, o.pidx, u_idx, b_idx]).astype(np.int64),
            "day": np.concatenate([da.day, o.day, u_day, b_day]).astype(np.int64),
            "incident_type": np.concatenate(
                [
                    np.full(len(da.pidx), "DOMESTIC_ABUSE"),
                    o.kind,
                    np.full(len(u_idx), "DRUGS"),
                    b_type,
                ]
            ).astype(str),
            "role": np.concatenate(
                [da.role, np.full(len(o.pidx), "SUSPECT"), np.full(len(u_idx), "SUSPECT"), b_role]
            ).astype(str),
        }
    ).filter((pl.col("day") >= 0) & (pl.col("day") < WINDOW_DAYS))
    # Incidents: DA incidents share a reference across the people involved.
    pol = pol.with_columns(pl.struct("day", "incident_type").rank("dense").alias("_inc"))
    return pol.with_columns(
        incident_date=pl.lit(WINDOW_START.astype("datetime64[D]").item())
        + pl.duration(days=pl.col("day")),
    ).select("pidx", "_inc", "incident_date", "incident_type", "role")


def youth_justice(s: Shared, rng: np.random.Generator) -> pl.DataFrame:
    """Youth justice: a share of the offences by 10-17 year olds."""
    o = s.offences
    yj_age = s.people.age_at(o.pidx, o.day)
    sel = (yj_age >= 10) & (yj_age < 18) & (rng.random(len(o.pidx)) < 0.55)
    n_yj = int(sel.sum())
    return pl.DataFrame(
        {
            "pidx": o.pidx[sel],
            "offence_date": _date(o.day[sel]),
            "offence_category": np.where(o.kind[sel] == "ASB", "OTHER", o.kind[sel]),
            "outcome": np.array(
                ["COMMUNITY_RESOLUTION", "YOUTH_CAUTION", "YCC", "REFERRAL_ORDER", "YRO", "CUSTODY"]
            )[rng.choice(6, n_yj, p=[0.35, 0.2, 0.15, 0.18, 0.1, 0.02])],
        }
    ).with_columns(pl.col("offence_date").cast(pl.Date))


def school_census(s: Shared, rng: np.random.Generator) -> pl.DataFrame:
    """School census: every child aged 4-15 on 31 August, per academic year."""
    p, fam = s.people, s.families
    n_p, p_hh, dob_day = p.n_p, p.p_hh, p.dob_day
    edu = fam.active("EDUCATION")
    fin = fam.active("FINANCIAL")
    sen_draw = rng.random(n_p)
    sen = np.where(sen_draw < 0.04, "E", np.where(sen_draw < 0.17, "K", "N"))
    rows = []
    for y0 in range(2021, 2026):
        aug31 = int((np.datetime64(f"{y0}-08-31") - WINDOW_START).astype(int))
        age = (aug31 - dob_day) / YEAR
        pupils = np.flatnonzero(
            (age >= 4) & (age < 16) & (p.p_role == "CHILD") & (rng.random(n_p) < 0.98)
        )
        f = p_hh[pupils]
        ncyear = np.clip(np.floor(age[pupils]).astype(np.int64) - 4, 0, 11)
        possible = rng.integers(318, 332, len(pupils))
        y_mid = aug31 + 180
        active = edu[f] & (fam.need_start[f] <= y_mid) & (fam.need_end[f] >= y_mid - 120)
        rate = np.where(active, rng.beta(4, 9, len(pupils)), rng.beta(1.2, 18, len(pupils)))
        missed = np.round(possible * rate).astype(np.int64)
        susp = np.where(active, rng.poisson(0.8, len(pupils)), rng.poisson(0.02, len(pupils)))
        perm = active & (rng.random(len(pupils)) < 0.03)
        rows.append(
            pl.DataFrame(
                {
                    "pidx": pupils,
                    "academic_year": f"{y0}/{str(y0 + 1)[2:]}",
                    "census_day": np.full(len(pupils), aug31 + 150),
                    "school_urn": (fam.urn_of_p[pupils] + (ncyear >= 7) * 5000).astype(str),
                    "ncyear": ncyear,
                    "fsm_eligible": np.where(fam.fsm_fam[f] | fin[f], "Y", "N"),
                    "sen_provision": sen[pupils],
                    "sessions_possible": possible,
                    "sessions_missed": missed,
                    "suspensions": susp,
                    "permanent_exclusion": np.where(perm, "Y", "N"),
                }
            )
        )
    return pl.concat(rows)


def early_years(s: Shared, rng: np.random.Generator) -> pl.DataFrame:
    """Early years: funded terms (two-year-old places for low-income families, the
    universal and extended 3-4 year old hours)."""
    p, fam = s.people, s.families
    n_p, p_hh, dob_day = p.n_p, p.p_hh, p.dob_day
    ey_need = fam.active("EARLY_YEARS")
    fin = fam.active("FINANCIAL")
    rows = []
    for y0 in range(2021, 2026):
        for term, mmdd, off in (("AUT", "09-01", 0), ("SPR", "01-01", 1), ("SUM", "04-15", 1)):
            tday = int((np.datetime64(f"{y0 + off}-{mmdd}") - WINDOW_START).astype(int))
            if tday >= WINDOW_DAYS:
                continue
            age = (tday - dob_day) / YEAR
            low_income = fam.fsm_fam[p_hh] | fin[p_hh]
            two = (age >= 2) & (age < 3) & low_income & (rng.random(n_p) < 0.7)
            three = (age >= 3) & (age < 4.6) & (rng.random(n_p) < 0.93)
            kids = np.flatnonzero((two | three) & (p.p_role == "CHILD"))
            f = p_hh[kids]
            ext = three[kids] & ~fin[f] & (rng.random(len(kids)) < 0.45)
            ftype = np.where(two[kids], "2YO", np.where(ext, "3-4YO_EXTENDED", "3-4YO_UNIVERSAL"))
            rows.append(
                pl.DataFrame(
                    {
                        "pidx": kids,
                        "term": f"{y0 + off}-{term}",
                        "term_day": np.full(len(kids), tday),
                        "funding_type": ftype,
                        "funded_hours": np.where(ext, 30, 15),
                        "daf": np.where(ey_need[f] & (rng.random(len(kids)) < 0.15), "Y", "N"),
                        "sen_support": np.where(
                            (ey_need[f] & (rng.random(len(kids)) < 0.5))
                            | (rng.random(len(kids)) < 0.05),
                            "Y",
                            "N",
                        ),
                        "provider_urn": ("EY" + (500000 + fam.urn_of_p[kids] % 400).astype(str)),
                    }
                )
            )
    return pl.concat(rows)


def _working_age(p: People) -> np.ndarray:
    wa = np.flatnonzero(p.p_role != "CHILD")
    wa_age = p.age_at(wa, np.full(len(wa), WINDOW_DAYS // 2))
    return wa[(wa_age >= 18) & (wa_age < 66)]


def dwp(s: Shared, rng: np.random.Generator) -> pl.DataFrame:
    """DWP: out-of-work benefit spells, for adults of families with the financial need
    (while it lasts) and a background share of everyone of working age."""
    p, fam = s.people, s.families
    wa = _working_age(p)
    fin_adults = wa[fam.active("FINANCIAL")[p.p_hh[wa]]]
    bg_claim = wa[rng.random(len(wa)) < 0.07]
    claimants = np.concatenate([fin_adults, bg_claim])
    n_cl = len(claimants)
    need_driven = np.arange(n_cl) < len(fin_adults)
    st = np.where(
        need_driven,
        np.maximum(fam.need_start[p.p_hh[claimants]], -200),
        rng.integers(-200, WINDOW_DAYS - 30, n_cl),
    )
    e = st + rng.integers(60, 900, n_cl)
    e = np.where(need_driven, np.minimum(e, fam.need_end[p.p_hh[claimants]] + 30), e)
    keep = (e > 0) & (st < WINDOW_DAYS)
    claimants, st, e = claimants[keep], st[keep], e[keep]
    return pl.DataFrame(
        {
            "pidx": claimants,
            "benefit": np.array(["UC_NO_WORK", "ESA", "JSA", "IS"])[
                rng.choice(4, len(claimants), p=[0.7, 0.15, 0.1, 0.05])
            ],
            "spell_start": _date(st),
            "spell_end": np.where(e < WINDOW_DAYS, _date(np.minimum(e, WINDOW_DAYS - 1)), NAT),
        }
    ).with_columns(pl.col("spell_start").cast(pl.Date), pl.col("spell_end").cast(pl.Date))


def adult_social_care(s: Shared, rng: np.random.Generator) -> pl.DataFrame:
    """Adult social care services, mostly for people over 65."""
    p = s.people
    grown = np.flatnonzero(p.p_role != "CHILD")
    grown_age = p.age_at(grown, np.full(len(grown), WINDOW_DAYS // 2))
    asc_p = np.where(grown_age >= 65, 0.07 + 0.004 * (grown_age - 65), 0.01)
    asc_people = grown[rng.random(len(grown)) < asc_p]
    n_asc = len(asc_people)
    a_s = rng.integers(-300, WINDOW_DAYS - 20, n_asc)
    a_e = a_s + rng.integers(30, 1200, n_asc)
    return pl.DataFrame(
        {
            "pidx": asc_people,
            "service_type": np.array(
                [
                    "HOME_CARE",
                    "RESIDENTIAL",
                    "DIRECT_PAYMENT",
                    "DAY_CARE",
                    "REABLEMENT",
                    "CARER_SUPPORT",
                ]
            )[rng.choice(6, n_asc, p=[0.35, 0.12, 0.15, 0.1, 0.2, 0.08])],
            "primary_support_reason": np.array(
                [
                    "PHYSICAL",
                    "MENTAL_HEALTH",
                    "LEARNING_DISABILITY",
                    "MEMORY",
                    "SUBSTANCE",
                    "SOCIAL",
                ]
            )[rng.choice(6, n_asc, p=[0.5, 0.15, 0.12, 0.15, 0.03, 0.05])],
            "service_start": _date(np.maximum(a_s, 0)),
            "service_end": np.where(
                a_e < WINDOW_DAYS, _date(np.clip(a_e, 0, WINDOW_DAYS - 1)), NAT
            ),
        }
    ).with_columns(pl.col("service_start").cast(pl.Date), pl.col("service_end").cast(pl.Date))


def housing(s: Shared, rng: np.random.Generator) -> pl.DataFrame:
    """Housing: cases for the main applicant (first adult) of families with the housing
    need (some twice) and a background share of households."""
    p, fam = s.people, s.families
    n_hh = p.n_hh
    first_adult = np.full(n_hh, -1)
    ad = np.flatnonzero(p.adults)
    first_adult[p.p_hh[ad[::-1]]] = ad[::-1]
    hs_need = fam.active("HOUSING") & (first_adult >= 0)
    hs_bg = (first_adult >= 0) & ~hs_need & (rng.random(n_hh) < 0.02)
    fams = np.concatenate(
        [
            np.flatnonzero(hs_need),
            np.flatnonzero(hs_need & (rng.random(n_hh) < 0.5)),
            np.flatnonzero(hs_bg),
        ]
    )
    n_hs = len(fams)
    h_s = np.where(
        np.arange(n_hs) < hs_need.sum() * 1.5,
        np.clip(fam.need_start[fams] + rng.integers(0, 400, n_hs), 0, WINDOW_DAYS - 1),
        rng.integers(0, WINDOW_DAYS, n_hs),
    )
    h_e = h_s + rng.integers(20, 400, n_hs)
    return pl.DataFrame(
        {
            "pidx": first_adult[fams],
            "case_type": np.array(
                [
                    "PREVENTION_DUTY",
                    "RELIEF_DUTY",
                    "MAIN_DUTY",
                    "RENT_ARREARS",
                    "TEMP_ACCOMMODATION",
                ]
            )[rng.choice(5, n_hs, p=[0.35, 0.2, 0.1, 0.25, 0.1])],
            "case_start": _date(h_s),
            "case_end": np.where(h_e < WINDOW_DAYS, _date(np.minimum(h_e, WINDOW_DAYS - 1)), NAT),
        }
    ).with_columns(pl.col("case_start").cast(pl.Date), pl.col("case_end").cast(pl.Date))


def neet(s: Shared, rng: np.random.Generator) -> pl.DataFrame:
    """NEET tracking: quarterly activity of 16-17 year olds."""
    p, fam = s.people, s.families
    risky_fam = fam.active("EDUCATION") | fam.active("CRIME")
    rows = []
    for y in range(2021, 2027):
        for m in (3, 6, 9, 12):
            mday = int((np.datetime64(f"{y}-{m:02d}-01") - WINDOW_START).astype(int))
            if mday < 0 or mday >= WINDOW_DAYS:
                continue
            age = (mday - p.dob_day) / YEAR
            yp = np.flatnonzero((age >= 16) & (age < 18))
            p_neet = np.where(risky_fam[p.p_hh[yp]], 0.35, 0.04)
            draw = rng.random(len(yp))
            act = np.where(
                draw < p_neet,
                "NEET",
                np.array(["EDUCATION", "APPRENTICESHIP", "EMPLOYMENT", "UNKNOWN"])[
                    rng.choice(4, len(yp), p=[0.84, 0.07, 0.05, 0.04])
                ],
            )
            rows.append(
                pl.DataFrame(
                    {
                        "pidx": yp,
                        "status_month": f"{y}-{m:02d}",
                        "month_day": np.full(len(yp), mday),
                        "activity": act,
                    }
                )
            )
    return pl.concat(rows)


def health(s: Shared, rng: np.random.Generator) -> pl.DataFrame:
    """Health: mental health (adults, and CAMHS for children 8 and over) and substance
    misuse contacts while a need lasts, and background adult mental health contacts."""
    p, fam = s.people, s.families
    hl = fam.active("HEALTH")
    grown = np.flatnonzero(p.p_role != "CHILD")
    h_p, h_d, h_s = [], [], []
    groups: tuple[tuple[np.ndarray, str, float], ...] = (
        (p.members_of(hl, p.adults), "ADULT_MH", 5.0),
        (p.members_of(hl, p.children), "CAMHS", 4.0),
        (_substance_users(s), "SUBSTANCE_MISUSE", 6.0),
    )
    for who, svc, contact_rate in groups:
        if svc == "CAMHS":
            who = who[p.age_at(who, np.maximum(fam.onset[p.p_hh[who]], 0)) >= 8]
        elif svc == "ADULT_MH":
            who = who[rng.random(len(who)) < 0.6]
        i, d = _spread_in_need(rng, p, fam, who, contact_rate)
        h_p.append(i)
        h_d.append(d)
        h_s.append(np.full(len(i), svc))
    bgmh = grown[rng.random(len(grown)) < 0.03]
    i, d = _spread(
        rng,
        bgmh,
        rng.integers(0, WINDOW_DAYS - 200, len(bgmh)),
        np.full(len(bgmh), WINDOW_DAYS),
        1.5,
    )
    h_p.append(i)
    h_d.append(d)
    h_s.append(np.full(len(i), "ADULT_MH"))
    return pl.DataFrame(
        {
            "pidx": np.concatenate(h_p),
            "contact_date": _date(np.concatenate(h_d)),
            "service": np.concatenate(h_s),
        }
    ).with_columns(pl.col("contact_date").cast(pl.Date))


def objections(s: Shared, rng: np.random.Generator) -> pl.DataFrame:
    """Objections: whole households (parents for their children) and individuals."""
    p = s.people
    obj_fam = rng.random(p.n_hh) < 0.004
    obj_p = np.flatnonzero(obj_fam[p.p_hh] | ((p.p_role != "CHILD") & (rng.random(p.n_p) < 0.002)))
    return pl.DataFrame(
        {
            "pidx": obj_p,
            # Nobody objects before they are born (a parent objects for a child born later
            # only once the child exists).
            "date_received": _date(
                np.maximum(
                    rng.integers(0, WINDOW_DAYS, len(obj_p)),
                    np.minimum(p.dob_day[obj_p] + 30, WINDOW_DAYS - 1),
                )
            ),
            "scope": np.where(
                rng.random(len(obj_p)) < 0.8, "ALL_RESEARCH", "PLANNING_AND_RESEARCH"
            ),
        }
    ).with_columns(pl.col("date_received").cast(pl.Date))


SourceEvents = Callable[[Shared, np.random.Generator], pl.DataFrame]
SOURCES: dict[str, SourceEvents] = {
    "early_help": early_help,
    "social_care": social_care,
    "front_door": front_door,
    "police": police,
    "youth_justice": youth_justice,
    "school_census": school_census,
    "early_years": early_years,
    "dwp": dwp,
    "adult_social_care": adult_social_care,
    "housing": housing,
    "neet": neet,
    "health": health,
    "objections": objections,
}


def build_events(
    pop: Population, seed: int, sources: Mapping[str, SourceEvents] = SOURCES
) -> Events:
    """What happened to the county, then each source's events from its own stream.

    `sources` maps a source to its function; every name needs a constant in `STREAMS`."""
    shared = what_happened(pop, seed)
    unknown = sorted(set(sources) - set(STREAMS))
    if unknown:
        raise ValueError(f"synthetic.events: no random stream for source(s) {unknown}")
    by_source = {name: fn(shared, stream(seed, name)) for name, fn in sources.items()}
    truth = pl.concat([pop.households.select("family_id"), shared.families.truth], how="horizontal")
    return Events(families=truth, by_source=by_source)
