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

All events are produced as unrendered frames: truth person id, dates, codes.
`synthetic.render` turns them into extracts (names, addresses, noise).
"""

from __future__ import annotations

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


def build_events(pop: Population, rng: np.random.Generator) -> Events:
    people = pop.people
    hh = pop.households
    n_hh = hh.height
    p_hh = people["household_index"].to_numpy()
    p_role = people["role"].to_numpy()
    p_sex = people["sex"].to_numpy()
    dob_day = (people["dob"].to_numpy().astype("datetime64[D]") - WINDOW_START).astype(np.int64)
    risk = hh["risk"].to_numpy()
    n_p = people.height

    def age_at(pidx: np.ndarray, day: np.ndarray) -> np.ndarray:
        return (day - dob_day[pidx]) / YEAR

    # ---- families: which are complex, their needs, pathway and progress ----
    has_child = np.zeros(n_hh, bool)
    has_child[p_hh[p_role == "CHILD"]] = True
    p_complex = _sigmoid(COMPLEX_INTERCEPT + COMPLEX_SLOPE * risk)
    complex_ = has_child & (rng.random(n_hh) < p_complex)
    onset = rng.integers(-BURN_IN_DAYS, WINDOW_DAYS, n_hh)
    needs = np.zeros((n_hh, len(NEEDS)), bool)
    for j, need in enumerate(NEEDS):
        p = _sigmoid(_logit(NEED_BASE_RATES[need]) + 0.8 * (risk - 1.0))
        needs[:, j] = complex_ & (rng.random(n_hh) < p)
    # Age-specific needs only where a child of that age exists.
    young_kid = np.zeros(n_hh, bool)
    school_kid = np.zeros(n_hh, bool)
    onset_p = onset[p_hh]
    a_on = (onset_p - dob_day) / YEAR
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
    eh_len = rng.integers(90, 400, n_hh)
    eh_end = eh_start + eh_len
    progress_p = _sigmoid(0.7 - 0.6 * (risk - 1.0))
    step_up = eh & (rng.random(n_hh) < 0.12)
    progress = eh & ~step_up & (rng.random(n_hh) < progress_p)
    # CSC episodes: families that went straight there, and step-ups from EH.
    csc = csc_first | step_up
    csc_start = np.where(
        csc_first, onset + rng.integers(7, 60, n_hh), eh_end + rng.integers(1, 21, n_hh)
    )
    csc_len = rng.integers(60, 500, n_hh)
    csc_end = csc_start + csc_len
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

    need_active = needs & complex_[:, None]
    need_start = np.clip(onset - rng.integers(0, 365, n_hh), -365, None)
    need_end = np.minimum(resolved_day, WINDOW_DAYS)

    families = pl.DataFrame(
        {
            "family_id": hh["family_id"],
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

    members = people.with_row_index("pidx").select("pidx", "household_index", "role", "sex")
    m_idx = members["pidx"].to_numpy().astype(np.int64)
    m_hh = members["household_index"].to_numpy()

    def members_of(fam_mask: np.ndarray, who: np.ndarray | None = None) -> np.ndarray:
        sel = fam_mask[m_hh]
        if who is not None:
            sel &= who
        return m_idx[sel]

    adults = p_role == "ADULT"
    children = p_role == "CHILD"
    alive_at = lambda pidx, day: day >= dob_day[pidx]  # noqa: E731

    out: dict[str, pl.DataFrame] = {}

    # ---- Early Help episodes (EH, step-down, re-referral) ----
    eh_rows = []
    ep_counter = 0
    for mask, start, end, stepped, prog, kind in (
        (eh, eh_start, eh_end, False, progress, "eh"),
        (step_down, sd_start, sd_end, True, sd_progress, "sd"),
        (rereferral, rr_start, rr_end, False, np.zeros(n_hh, bool), "rr"),
    ):
        # In the extract: episodes open at any time in the window.
        fams = np.flatnonzero(mask & (start < WINDOW_DAYS) & (end >= 0))
        if len(fams) == 0:
            continue
        ep_ids = np.arange(ep_counter, ep_counter + len(fams))
        ep_counter += len(fams)
        fam_ep = np.full(n_hh, -1)
        fam_ep[fams] = ep_ids
        pidx = members_of(np.isin(np.arange(n_hh), fams))
        pidx = pidx[alive_at(pidx, start[p_hh[pidx]])]
        f = p_hh[pidx]
        s = start[f]
        e = end[f]
        closed = e < WINDOW_DAYS
        if kind == "eh":
            reason = np.where(
                step_up[f], "STEP_UP_CSC", np.where(prog[f], "OUTCOMES_MET", "DISENGAGED")
            )
        else:
            reason = np.where(prog[f], "OUTCOMES_MET", "UNIVERSAL_SERVICES")
        has_assess = rng.random(n_hh)[f] < 0.92
        source = np.array(
            ["SCHOOL", "HEALTH_VISITOR", "GP", "POLICE", "SELF", "FAMILY", "HOUSING", "OTHER"]
        )[rng.integers(0, 8, n_hh)[f]]
        if stepped:
            source = np.full(len(f), "SOCIAL_CARE")
        eh_rows.append(
            pl.DataFrame(
                {
                    "pidx": pidx,
                    "episode_no": fam_ep[f],
                    "referral_date": _date(s),
                    "referral_source": source,
                    "assessment_date": np.where(has_assess, _date(s + 20), np.datetime64("NaT")),
                    "plan_start": np.where(has_assess, _date(s + 35), np.datetime64("NaT")),
                    "tafreviews": np.where(
                        has_assess, np.maximum((np.minimum(e, WINDOW_DAYS) - s - 35) // 42, 0), 0
                    ),
                    "closure_date": np.where(
                        closed, _date(np.minimum(e, WINDOW_DAYS - 1)), np.datetime64("NaT")
                    ),
                    "closure_reason": _opt(closed, reason),
                    "stepped_down_from_csc": np.full(len(f), "Y" if stepped else "N"),
                    "needs": families["needs"].to_numpy()[f],
                }
            )
        )
    eh_df = pl.concat(eh_rows)
    eh_df = eh_df.with_columns(
        pl.col(c).cast(pl.Date)
        for c in ("referral_date", "assessment_date", "plan_start", "closure_date")
    )
    out["early_help"] = eh_df

    # ---- Social care referral episodes ----
    cp_fams = csc & (abuse | (rng.random(n_hh) < 0.2))
    csc_children = members_of(csc, children)
    csc_children = csc_children[alive_at(csc_children, csc_start[p_hh[csc_children]])]
    csc_children = csc_children[age_at(csc_children, csc_start[p_hh[csc_children]]) < 18]
    # Background referrals: concerns about children outside the complex families, at a
    # rate that rises with family risk, over each child's childhood within the span. Most
    # are assessed as in need and stay open for months; the rest close within weeks.
    bg_kids = np.flatnonzero(children & ~complex_[p_hh])
    tilt = np.exp(BACKGROUND_REFERRAL_RISK * risk[p_hh[bg_kids]])
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
    c_start = np.concatenate([csc_start[p_hh[csc_children]], bg_start]) + rng.integers(
        0, 5, len(c_pidx)
    )
    c_end = np.concatenate([csc_end[p_hh[csc_children]], bg_end])
    is_cp = np.concatenate([cp_fams[p_hh[csc_children]], bg_cp])
    was_step_down = np.concatenate(
        [step_down[p_hh[csc_children]], np.zeros(len(bg_children), bool)]
    )
    # Re-referrals: some children come back after their case closed, most within a year
    # (the CIN census re-referral measure); some of those on a plan go onto a second plan.
    back = (rng.random(len(c_pidx)) < 0.4) & ~was_step_down
    r_start = c_end[back] + rng.integers(7, 240, int(back.sum()))
    c_pidx = np.concatenate([c_pidx, c_pidx[back]])
    c_start = np.concatenate([c_start, r_start])
    c_end = np.concatenate([c_end, r_start + rng.integers(20, 400, int(back.sum()))])
    is_cp = np.concatenate([is_cp, is_cp[back] & (rng.random(int(back.sum())) < 0.4)])
    was_step_down = np.concatenate([was_step_down, np.zeros(int(back.sum()), bool)])
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
        & (age_at(c_pidx, c_start) < 18)
        & (c_start > dob_day[c_pidx])
    )
    from_front_door = np.r_[
        np.zeros(len(csc_children), bool),
        np.ones(len(bg_children), bool),
        np.ones(int(back.sum()), bool),
    ]
    c_pidx, c_start, c_end, is_cp, was_step_down, from_front_door = (
        a[keep] for a in (c_pidx, c_start, c_end, is_cp, was_step_down, from_front_door)
    )
    n_c = len(c_pidx)
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
    c_end = np.where(is_cp, np.maximum(c_end, cp_end + 1), c_end)
    c_end = np.where(cla, np.maximum(c_end, cla_end + 1), c_end)
    closed = c_end < WINDOW_DAYS
    in_w = lambda d: d < WINDOW_DAYS  # noqa: E731
    nat = np.datetime64("NaT")
    out["social_care"] = pl.DataFrame(
        {
            "pidx": c_pidx,
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
            "assessment_start": np.where(assessed & in_w(c_start + 2), _date(c_start + 2), nat),
            "assessment_authorised": np.where(
                assessed & in_w(c_start + 2 + assess_days), _date(c_start + 2 + assess_days), nat
            ),
            "s47_start": np.where(s47 & in_w(c_start + 5), _date(c_start + 5), nat),
            "cp_plan_start": np.where(is_cp & in_w(cp_start), _date(cp_start), nat),
            "cp_plan_end": np.where(is_cp & in_w(cp_end), _date(cp_end), nat),
            "cp_category": _opt(
                is_cp,
                np.array(["NEGLECT", "PHYSICAL", "EMOTIONAL", "SEXUAL", "MULTIPLE"])[
                    rng.choice(5, n_c, p=[0.48, 0.08, 0.35, 0.04, 0.05])
                ],
            ),
            "cla_start": np.where(cla & in_w(cla_start), _date(cla_start), nat),
            "cla_end": np.where(cla & in_w(cla_end), _date(cla_end), nat),
            "closure_date": np.where(closed, _date(np.minimum(c_end, WINDOW_DAYS - 1)), nat),
            "closure_reason": _opt(
                closed,
                np.where(
                    was_step_down,
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
    out["social_care"] = out["social_care"].filter(
        pl.col("closure_date").is_null()
        | (pl.col("closure_date") >= pl.lit(WINDOW_START.astype("datetime64[D]").item()))
    )

    # ---- Front Door contacts: before each EH/CSC episode, plus background ----
    fd_parts = []
    for mask, start, decision in (
        (eh, eh_start, "EARLY_HELP"),
        (csc_first, csc_start, "SOCIAL_CARE"),
    ):
        kids = members_of(mask, children)
        d = start[p_hh[kids]] - rng.integers(1, 14, len(kids))
        ok = (d >= 0) & (d < WINDOW_DAYS) & (d > dob_day[kids])
        fd_parts.append((kids[ok], d[ok], np.full(ok.sum(), decision)))
    # Every background referral and re-referral came through the Front Door.
    fd_parts.append(
        (
            c_pidx[from_front_door],
            c_start[from_front_door] - rng.integers(0, 3, int(from_front_door.sum())),
            np.full(int(from_front_door.sum()), "SOCIAL_CARE"),
        )
    )
    bg = np.flatnonzero(children & (rng.random(n_p) < 0.30))
    d = rng.integers(0, WINDOW_DAYS, len(bg))
    ok = d > dob_day[bg]
    fd_parts.append((bg[ok], d[ok], np.where(rng.random(ok.sum()) < 0.6, "NFA", "INFO_ADVICE")))

    # ---- Police ----
    pol_pidx, pol_day, pol_type, pol_role = [], [], [], []
    da = need_active[:, NEEDS.index("DOMESTIC_ABUSE")]
    fam_idx, inc_day = _spread(
        rng,
        np.flatnonzero(da),
        np.maximum(need_start[da], 0),
        np.minimum(need_end[da], WINDOW_DAYS),
        2.0,
    )
    # Everyone in the household at that incident: adults victim/suspect, children present.
    hh_members = _members_table(p_hh, n_hh)
    for f, day in zip(fam_idx, inc_day, strict=True):
        mem = hh_members[f]
        for p in mem:
            if dob_day[p] > day:
                continue
            if p_role[p] == "ADULT":
                role = "VICTIM" if p_sex[p] == "F" else "SUSPECT"
            elif (day - dob_day[p]) / YEAR < 18:
                if rng.random() > 0.7:
                    continue
                role = "CHILD_PRESENT"
            else:
                role = "WITNESS"
            pol_pidx.append(p)
            pol_day.append(day)
            pol_type.append("DOMESTIC_ABUSE")
            pol_role.append(role)
            if role == "CHILD_PRESENT" and rng.random() < 0.5:
                fd_parts.append(
                    (
                        np.array([p]),
                        np.array([day + 1]),
                        np.array(["NFA" if rng.random() < 0.5 else "INFO_ADVICE"]),
                    )
                )
    cr = need_active[:, NEEDS.index("CRIME")]
    offenders = members_of(cr, (p_role == "YOUNG_ADULT") | adults | children)
    off_age = age_at(offenders, np.maximum(onset[p_hh[offenders]], 0))
    offenders = offenders[(off_age >= 10) & (rng.random(len(offenders)) < 0.6)]
    o_idx, o_day = _spread(
        rng,
        offenders,
        np.maximum(need_start[p_hh[offenders]], 0),
        np.minimum(need_end[p_hh[offenders]], WINDOW_DAYS),
        1.5,
    )
    o_type = np.array(["VIOLENCE", "THEFT", "CRIMINAL_DAMAGE", "DRUGS", "ASB"])[
        rng.integers(0, 5, len(o_idx))
    ]
    pol_pidx.extend(o_idx.tolist())
    pol_day.extend(o_day.tolist())
    pol_type.extend(o_type.tolist())
    pol_role.extend(["SUSPECT"] * len(o_idx))
    su = need_active[:, NEEDS.index("SUBSTANCE")]
    users = members_of(su, adults)
    u_idx, u_day = _spread(
        rng,
        users,
        np.maximum(need_start[p_hh[users]], 0),
        np.minimum(need_end[p_hh[users]], WINDOW_DAYS),
        0.5,
    )
    pol_pidx.extend(u_idx.tolist())
    pol_day.extend(u_day.tolist())
    pol_type.extend(["DRUGS"] * len(u_idx))
    pol_role.extend(["SUSPECT"] * len(u_idx))
    grown = np.flatnonzero(p_role != "CHILD")
    b_idx, b_day = _spread(
        rng, grown, np.zeros(len(grown), np.int64), np.full(len(grown), WINDOW_DAYS), 0.03
    )
    pol_pidx.extend(b_idx.tolist())
    pol_day.extend(b_day.tolist())
    pol_type.extend(
        np.array(["ASB", "THEFT", "VIOLENCE", "CRIMINAL_DAMAGE", "OTHER"])[
            rng.integers(0, 5, len(b_idx))
        ].tolist()
    )
    pol_role.extend(
        np.array(["VICTIM", "WITNESS", "SUSPECT"])[
            rng.choice(3, len(b_idx), p=[0.5, 0.3, 0.2])
        ].tolist()
    )
    pol = pl.DataFrame(
        {
            "pidx": np.array(pol_pidx, dtype=np.int64),
            "day": np.array(pol_day, dtype=np.int64),
            "incident_type": pol_type,
            "role": pol_role,
        }
    ).filter((pl.col("day") >= 0) & (pl.col("day") < WINDOW_DAYS))
    # Incidents: DA incidents share a reference across the people involved.
    pol = pol.with_columns(pl.struct("day", "incident_type").rank("dense").alias("_inc"))
    out["police"] = pol.with_columns(
        incident_date=pl.lit(WINDOW_START.astype("datetime64[D]").item())
        + pl.duration(days=pl.col("day")),
    ).select("pidx", "_inc", "incident_date", "incident_type", "role")

    # ---- Youth justice: offences by 10-17 year olds ----
    yj_age = age_at(o_idx, o_day)
    yj_sel = (yj_age >= 10) & (yj_age < 18) & (rng.random(len(o_idx)) < 0.55)
    n_yj = int(yj_sel.sum())
    out["youth_justice"] = pl.DataFrame(
        {
            "pidx": o_idx[yj_sel],
            "offence_date": _date(o_day[yj_sel]),
            "offence_category": np.where(o_type[yj_sel] == "ASB", "OTHER", o_type[yj_sel]),
            "outcome": np.array(
                ["COMMUNITY_RESOLUTION", "YOUTH_CAUTION", "YCC", "REFERRAL_ORDER", "YRO", "CUSTODY"]
            )[rng.choice(6, n_yj, p=[0.35, 0.2, 0.15, 0.18, 0.1, 0.02])],
        }
    ).with_columns(pl.col("offence_date").cast(pl.Date))

    fd_p = np.concatenate([p[0] for p in fd_parts])
    fd_d = np.concatenate([p[1] for p in fd_parts])
    fd_dec = np.concatenate([p[2] for p in fd_parts])
    # The Front Door takes contacts about children: nobody 18 or over, nobody unborn.
    ok = (fd_d >= 0) & (fd_d < WINDOW_DAYS) & (fd_d > dob_day[fd_p]) & (age_at(fd_p, fd_d) < 18)
    n_fd = int(ok.sum())
    out["front_door"] = pl.DataFrame(
        {
            "pidx": fd_p[ok],
            "contact_date": _date(fd_d[ok]),
            "contact_source": np.array(
                ["SCHOOL", "POLICE", "HEALTH_VISITOR", "GP", "SELF", "FAMILY", "ANON", "OTHER"]
            )[rng.choice(8, n_fd, p=[0.25, 0.3, 0.1, 0.08, 0.07, 0.08, 0.04, 0.08])],
            "decision": fd_dec[ok],
        }
    ).with_columns(pl.col("contact_date").cast(pl.Date))

    # ---- School census: every child aged 4-15 on 31 August, per academic year ----
    edu = need_active[:, NEEDS.index("EDUCATION")]
    fsm_p = _sigmoid(-1.6 + 1.0 * risk)
    fsm_fam = rng.random(n_hh) < fsm_p
    sen_draw = rng.random(n_p)
    sen = np.where(sen_draw < 0.04, "E", np.where(sen_draw < 0.17, "K", "N"))
    urn_of_p = 100000 + rng.integers(0, max(8, n_p // 1200), n_p)
    sc_rows = []
    for y0 in range(2021, 2026):
        aug31 = int((np.datetime64(f"{y0}-08-31") - WINDOW_START).astype(int))
        age = (aug31 - dob_day) / YEAR
        pupils = np.flatnonzero(
            (age >= 4) & (age < 16) & (p_role == "CHILD") & (rng.random(n_p) < 0.98)
        )
        f = p_hh[pupils]
        ncyear = np.floor(age[pupils]).astype(np.int64) - 4
        ncyear = np.clip(ncyear, 0, 11)
        possible = rng.integers(318, 332, len(pupils))
        y_mid = aug31 + 180
        active = edu[f] & (need_start[f] <= y_mid) & (need_end[f] >= y_mid - 120)
        rate = np.where(active, rng.beta(4, 9, len(pupils)), rng.beta(1.2, 18, len(pupils)))
        missed = np.round(possible * rate).astype(np.int64)
        susp = np.where(active, rng.poisson(0.8, len(pupils)), rng.poisson(0.02, len(pupils)))
        perm = active & (rng.random(len(pupils)) < 0.03)
        sc_rows.append(
            pl.DataFrame(
                {
                    "pidx": pupils,
                    "academic_year": f"{y0}/{str(y0 + 1)[2:]}",
                    "census_day": np.full(len(pupils), aug31 + 150),
                    "school_urn": (urn_of_p[pupils] + (ncyear >= 7) * 5000).astype(str),
                    "ncyear": ncyear,
                    "fsm_eligible": np.where(
                        fsm_fam[f] | need_active[f, NEEDS.index("FINANCIAL")], "Y", "N"
                    ),
                    "sen_provision": sen[pupils],
                    "sessions_possible": possible,
                    "sessions_missed": missed,
                    "suspensions": susp,
                    "permanent_exclusion": np.where(perm, "Y", "N"),
                }
            )
        )
    out["school_census"] = pl.concat(sc_rows)

    # ---- Early years: funded terms ----
    ey_rows = []
    ey_need = need_active[:, NEEDS.index("EARLY_YEARS")]
    fin = need_active[:, NEEDS.index("FINANCIAL")]
    for y0 in range(2021, 2026):
        for term, mmdd, off in (("AUT", "09-01", 0), ("SPR", "01-01", 1), ("SUM", "04-15", 1)):
            tday = int((np.datetime64(f"{y0 + off}-{mmdd}") - WINDOW_START).astype(int))
            if tday >= WINDOW_DAYS:
                continue
            age = (tday - dob_day) / YEAR
            two = (age >= 2) & (age < 3) & (fsm_fam[p_hh] | fin[p_hh]) & (rng.random(n_p) < 0.7)
            three = (age >= 3) & (age < 4.6) & (rng.random(n_p) < 0.93)
            kids = np.flatnonzero((two | three) & (p_role == "CHILD"))
            f = p_hh[kids]
            ext = three[kids] & ~fin[f] & (rng.random(len(kids)) < 0.45)
            ftype = np.where(two[kids], "2YO", np.where(ext, "3-4YO_EXTENDED", "3-4YO_UNIVERSAL"))
            ey_rows.append(
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
                        "provider_urn": ("EY" + (500000 + urn_of_p[kids] % 400).astype(str)),
                    }
                )
            )
    out["early_years"] = pl.concat(ey_rows)

    # ---- DWP: out-of-work benefit spells ----
    wa = np.flatnonzero(p_role != "CHILD")
    wa_age = age_at(wa, np.full(len(wa), WINDOW_DAYS // 2))
    wa = wa[(wa_age >= 18) & (wa_age < 66)]
    fin_adults = wa[fin[p_hh[wa]]]
    bg_claim = wa[rng.random(len(wa)) < 0.07]
    claimants = np.concatenate([fin_adults, bg_claim])
    n_cl = len(claimants)
    s = np.where(
        np.arange(n_cl) < len(fin_adults),
        np.maximum(need_start[p_hh[claimants]], -200),
        rng.integers(-200, WINDOW_DAYS - 30, n_cl),
    )
    dur = rng.integers(60, 900, n_cl)
    e = s + dur
    e = np.where(
        np.arange(n_cl) < len(fin_adults), np.minimum(e, need_end[p_hh[claimants]] + 30), e
    )
    keep = (e > 0) & (s < WINDOW_DAYS)
    claimants, s, e = claimants[keep], s[keep], e[keep]
    out["dwp"] = pl.DataFrame(
        {
            "pidx": claimants,
            "benefit": np.array(["UC_NO_WORK", "ESA", "JSA", "IS"])[
                rng.choice(4, len(claimants), p=[0.7, 0.15, 0.1, 0.05])
            ],
            "spell_start": _date(s),
            "spell_end": np.where(e < WINDOW_DAYS, _date(np.minimum(e, WINDOW_DAYS - 1)), nat),
        }
    ).with_columns(pl.col("spell_start").cast(pl.Date), pl.col("spell_end").cast(pl.Date))

    # ---- Adult social care ----
    grown_age = age_at(grown, np.full(len(grown), WINDOW_DAYS // 2))
    asc_p = np.where(grown_age >= 65, 0.07 + 0.004 * (grown_age - 65), 0.01)
    asc_people = grown[rng.random(len(grown)) < asc_p]
    n_asc = len(asc_people)
    a_s = rng.integers(-300, WINDOW_DAYS - 20, n_asc)
    a_e = a_s + rng.integers(30, 1200, n_asc)
    out["adult_social_care"] = pl.DataFrame(
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
                a_e < WINDOW_DAYS, _date(np.clip(a_e, 0, WINDOW_DAYS - 1)), nat
            ),
        }
    ).with_columns(pl.col("service_start").cast(pl.Date), pl.col("service_end").cast(pl.Date))

    # ---- Housing: cases for the main applicant (first adult) ----
    first_adult = np.full(n_hh, -1)
    ad = np.flatnonzero(adults)
    first_adult[p_hh[ad[::-1]]] = ad[::-1]
    hs_need = need_active[:, NEEDS.index("HOUSING")] & (first_adult >= 0)
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
        np.clip(need_start[fams] + rng.integers(0, 400, n_hs), 0, WINDOW_DAYS - 1),
        rng.integers(0, WINDOW_DAYS, n_hs),
    )
    h_e = h_s + rng.integers(20, 400, n_hs)
    out["housing"] = pl.DataFrame(
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
            "case_end": np.where(h_e < WINDOW_DAYS, _date(np.minimum(h_e, WINDOW_DAYS - 1)), nat),
        }
    ).with_columns(pl.col("case_start").cast(pl.Date), pl.col("case_end").cast(pl.Date))

    # ---- NEET: quarterly status of 16-17 year olds ----
    nt_rows = []
    for y in range(2021, 2027):
        for m in (3, 6, 9, 12):
            mday = int((np.datetime64(f"{y}-{m:02d}-01") - WINDOW_START).astype(int))
            if mday < 0 or mday >= WINDOW_DAYS:
                continue
            age = (mday - dob_day) / YEAR
            yp = np.flatnonzero((age >= 16) & (age < 18))
            f = p_hh[yp]
            risky = edu[f] | cr[f]
            p_neet = np.where(risky, 0.35, 0.04)
            draw = rng.random(len(yp))
            act = np.where(
                draw < p_neet,
                "NEET",
                np.array(["EDUCATION", "APPRENTICESHIP", "EMPLOYMENT", "UNKNOWN"])[
                    rng.choice(4, len(yp), p=[0.84, 0.07, 0.05, 0.04])
                ],
            )
            nt_rows.append(
                pl.DataFrame(
                    {
                        "pidx": yp,
                        "status_month": f"{y}-{m:02d}",
                        "month_day": np.full(len(yp), mday),
                        "activity": act,
                    }
                )
            )
    out["neet"] = pl.concat(nt_rows)

    # ---- Health: mental health and substance-use contacts ----
    h_p, h_d, h_s2 = [], [], []
    hl = need_active[:, NEEDS.index("HEALTH")]
    health_groups: tuple[tuple[np.ndarray, str, float], ...] = (
        (members_of(hl, adults), "ADULT_MH", 5.0),
        (members_of(hl, children), "CAMHS", 4.0),
        (users, "SUBSTANCE_MISUSE", 6.0),
    )
    for who, svc, contact_rate in health_groups:
        if svc == "CAMHS":
            who = who[age_at(who, np.maximum(onset[p_hh[who]], 0)) >= 8]
        elif svc == "ADULT_MH":
            who = who[rng.random(len(who)) < 0.6]
        i, d = _spread(
            rng,
            who,
            np.maximum(need_start[p_hh[who]], 0),
            np.minimum(need_end[p_hh[who]], WINDOW_DAYS),
            contact_rate,
        )
        h_p.append(i)
        h_d.append(d)
        h_s2.append(np.full(len(i), svc))
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
    h_s2.append(np.full(len(i), "ADULT_MH"))
    out["health"] = pl.DataFrame(
        {
            "pidx": np.concatenate(h_p),
            "contact_date": _date(np.concatenate(h_d)),
            "service": np.concatenate(h_s2),
        }
    ).with_columns(pl.col("contact_date").cast(pl.Date))

    # ---- Objections: whole households (parents for their children) and individuals ----
    obj_fam = rng.random(n_hh) < 0.004
    obj_p = np.flatnonzero(obj_fam[p_hh] | ((p_role != "CHILD") & (rng.random(n_p) < 0.002)))
    out["objections"] = pl.DataFrame(
        {
            "pidx": obj_p,
            # Nobody objects before they are born (a parent objects for a child born later
            # only once the child exists).
            "date_received": _date(
                np.maximum(
                    rng.integers(0, WINDOW_DAYS, len(obj_p)),
                    np.minimum(dob_day[obj_p] + 30, WINDOW_DAYS - 1),
                )
            ),
            "scope": np.where(
                rng.random(len(obj_p)) < 0.8, "ALL_RESEARCH", "PLANNING_AND_RESEARCH"
            ),
        }
    ).with_columns(pl.col("date_received").cast(pl.Date))

    return Events(families=families, by_source=out)


def _members_table(p_hh: np.ndarray, n_hh: int) -> list[np.ndarray]:
    order = np.argsort(p_hh, kind="stable")
    bounds = np.searchsorted(p_hh[order], np.arange(n_hh + 1))
    return [order[bounds[i] : bounds[i + 1]] for i in range(n_hh)]
