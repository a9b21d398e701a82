"""Facts about other records that DfE's cross-record rules read, added as `@` columns.

A rule in `pipelines/returns/rules.py` is an expression over one table's rows. Rules that
compare a row with other records (a child's other referrals, the episode before this
one, the child's episodes when checking OC2 or a missing episode) read what they need
from context columns added here by the readers, before the rules run:

- CIN census: `@overlap` (this element's start falls inside another of the child's
  elements of the same kind: rules 8820, 4014, 8940, 8890) and `@open_cpp` (the CIN
  plan's referral has a child protection plan with no end date: rule 4001);
- SSDA903 Episodes: the previous and next episode of the same child in DECOM order
  (`@prev_DEC`, `@prev_REC`, `@prev_LS`, `@prev_PLACE`, ..., `@next_DECOM`, `@in_seq`,
  `@has_prev`, `@has_next`: rules 142, 501, 388, 431-437, 357);
- SSDA903 OC2: `@cla`, whether the child was looked after continuously for the 12
  months to 31 March, computed from the Episodes as DfE's guidance defines it (rules
  185, 190, 191, 198);
- SSDA903 OC3: `@in_care_on_birthday` (rule 1007);
- SSDA903 Missing: `@in_episode` (rule 581) and `@prev_MIS_END` (rule 574).

Pure functions over frames of raw text; dates are parsed here with the return's format.
Rows whose key dates are not dates take no part (their own schema rule quarantines them).
"""

from __future__ import annotations

from datetime import date

import polars as pl

from pipelines.returns.years import YearRules

# Placement fields whose change is a change of placement (rules 434-436).
PLACEMENT_FIELDS = ("PLACE", "PL_POST", "URN", "PLACE_PROVIDER")
_SEQUENCE_FIELDS = ("DEC", "REC", "LS", *PLACEMENT_FIELDS)


def _date(name: str, fmt: str) -> pl.Expr:
    return pl.col(name).str.strip_chars().str.to_date(fmt, strict=False)


def overlap(
    df: pl.DataFrame,
    *,
    group: str,
    start: pl.Expr,
    end: pl.Expr,
    open_: pl.Expr,
    reference: date,
    end_inclusive: bool = True,
) -> pl.Series:
    """True where a row's start falls within another row of the same `group`: on or
    after the other's start and before (or on, if `end_inclusive`) its end, or, when
    the other is open (`open_`), on or before the reference date. DfE's wording, e.g.
    rule 4014: "the CINPlanStartDate of each group cannot fall within either a) start to
    end, or b) start and ReferenceDate if the end date is not present"."""
    frame = df.select(
        pl.int_range(pl.len()).alias("@i"),
        pl.col(group).alias("@g"),
        start.alias("@s"),
        end.alias("@e"),
        open_.fill_null(False).alias("@open"),
    )
    keyed = frame.filter(pl.col("@g").is_not_null() & pl.col("@s").is_not_null())
    pairs = keyed.join(keyed, on="@g", suffix="_o").filter(pl.col("@i") != pl.col("@i_o"))
    s, s_o, e_o = pl.col("@s"), pl.col("@s_o"), pl.col("@e_o")
    before_end = (s <= e_o) if end_inclusive else (s < e_o)
    inside = (s >= s_o) & (
        (e_o.is_not_null() & before_end)
        | (e_o.is_null() & pl.col("@open_o") & (s <= pl.lit(reference)))
    )
    return frame["@i"].is_in(pairs.filter(inside)["@i"].implode())


# ------------------------------------------------------------------------ CIN census ---


def cin_context(frames: dict[str, pl.DataFrame], y: YearRules, fmt: str) -> dict[str, pl.DataFrame]:
    """Each CIN table with the context its cross-record rules read (see module doc)."""
    out = dict(frames)
    ref = y.end
    det = frames["CINdetails"]
    out["CINdetails"] = det.with_columns(
        overlap(
            det,
            group="LAchildID",
            start=_date("CINreferralDate", fmt),
            end=_date("CINclosureDate", fmt),
            open_=pl.col("ReferralNFA").is_in(["false", "0"]),
            reference=ref,
            # One referral may end on the day the next one starts (rule 8820's note).
            end_inclusive=False,
        ).alias("@overlap")
    )
    plans = frames["CINPlanDates"]
    cpp = frames["ChildProtectionPlans"]
    open_cpp = set(cpp.filter(pl.col("CPPendDate").is_null())["@details"].to_list())
    out["CINPlanDates"] = plans.with_columns(
        overlap(
            plans,
            group="LAchildID",
            start=_date("CINPlanStartDate", fmt),
            end=_date("CINPlanEndDate", fmt),
            open_=pl.lit(True),
            reference=ref,
        ).alias("@overlap"),
        pl.col("@details").is_in(list(open_cpp)).alias("@open_cpp"),
    )
    out["ChildProtectionPlans"] = cpp.with_columns(
        overlap(
            cpp,
            group="LAchildID",
            start=_date("CPPstartDate", fmt),
            end=_date("CPPendDate", fmt),
            open_=pl.lit(True),
            reference=ref,
        ).alias("@overlap")
    )
    s47 = frames["Section47"]
    out["Section47"] = s47.with_columns(
        overlap(
            s47,
            group="@details",
            start=_date("S47ActualStartDate", fmt),
            end=_date("DateOfInitialCPC", fmt),
            open_=~pl.col("ICPCnotRequired").is_in(["true", "1"]),
            reference=ref,
        ).alias("@overlap")
    )
    return out


# --------------------------------------------------------------------------- SSDA903 ---


def episode_sequence(episodes: pl.DataFrame, fmt: str) -> pl.DataFrame:
    """Episodes with the same child's previous and next episode (DECOM order, then file
    order): `@prev_<field>` for DEC, REC, LS and the placement fields, `@next_DECOM`,
    `@has_prev` and `@has_next`; `@in_seq` is False for episodes without a valid DECOM
    (left out of the sequence)."""
    dated = episodes.select("@line", "CHILD", "DECOM", *_SEQUENCE_FIELDS).with_columns(
        _date("DECOM", fmt).alias("@decom")
    )
    seq = (
        dated.filter(pl.col("@decom").is_not_null() & pl.col("CHILD").is_not_null())
        .sort("CHILD", "@decom", "@line")
        .select(
            "@line",
            *[pl.col(f).shift(1).over("CHILD").alias(f"@prev_{f}") for f in _SEQUENCE_FIELDS],
            pl.col("DECOM").shift(-1).over("CHILD").alias("@next_DECOM"),
            pl.lit(True).alias("@in_seq"),
            (pl.int_range(pl.len()).over("CHILD") > 0).alias("@has_prev"),
            (pl.int_range(pl.len()).over("CHILD") < pl.len().over("CHILD") - 1).alias("@has_next"),
        )
    )
    return episodes.join(seq, on="@line", how="left").with_columns(
        pl.col(c).fill_null(False) for c in ("@in_seq", "@has_prev", "@has_next")
    )


# Fields of a child's first episode that must equal last year's open episode (503A-F).
CARRIED_FIELDS = ("RNE", "LS", "CIN", "PLACE", "PLACE_PROVIDER", "URN")


def continued_from_last_year(
    episodes: pl.DataFrame, last_episodes: pl.DataFrame | None, fmt: str
) -> pl.DataFrame:
    """Episodes (with their sequence) and, on each child's first episode of the year whose
    latest episode in last year's return was still open (no DEC), `@last_open` and that
    episode's fields as `@last_<field>` (rules 502, 503A-F). An open episode at 31 March
    carries into the next return unchanged. Also, on every episode, `@in_last`: an episode
    of the same child starting the same day is in last year's return (562), and
    `@child_in_last`: the child has any episode there (NoE); both null without last
    year's return, so those rules do not run."""
    cols = ["DECOM", *CARRIED_FIELDS]
    if last_episodes is None:
        return episodes.with_columns(
            pl.lit(False).alias("@last_open"),
            *[pl.lit(None, pl.Utf8).alias(f"@last_{f}") for f in cols],
            pl.lit(None, pl.Boolean).alias("@in_last"),
            pl.lit(None, pl.Boolean).alias("@child_in_last"),
        )
    dated = last_episodes.with_columns(_date("DECOM", fmt).alias("@decom")).filter(
        pl.col("CHILD").is_not_null()
    )
    starts = (
        dated.filter(pl.col("@decom").is_not_null())
        .select("CHILD", pl.col("@decom").alias("@start"), pl.lit(True).alias("@in_last"))
        .unique(["CHILD", "@start"])
    )
    children = dated.select("CHILD", pl.lit(True).alias("@child_in_last")).unique("CHILD")
    episodes = (
        episodes.with_columns(_date("DECOM", fmt).alias("@start"))
        .join(starts, on=["CHILD", "@start"], how="left", nulls_equal=False)
        .join(children, on="CHILD", how="left")
        .with_columns(pl.col("@in_last", "@child_in_last").fill_null(False))
        .drop("@start")
    )
    latest = (
        last_episodes.with_columns(_date("DECOM", fmt).alias("@decom"))
        .filter(pl.col("CHILD").is_not_null() & pl.col("@decom").is_not_null())
        .sort("CHILD", "@decom")
        .group_by("CHILD", maintain_order=True)
        .last()
        .filter(pl.col("DEC").is_null())
        .select(
            "CHILD",
            pl.lit(True).alias("@last_open"),
            *[pl.col(f).alias(f"@last_{f}") for f in cols],
        )
    )
    first = pl.col("@in_seq") & ~pl.col("@has_prev")
    joined = episodes.join(latest, on="CHILD", how="left")
    return joined.with_columns((first & pl.col("@last_open").fill_null(False)).alias("@last_open"))


def continuously_looked_after(episodes: pl.DataFrame, y: YearRules, fmt: str) -> pl.DataFrame:
    """(CHILD, @cla): looked after continuously for the 12 months to 31 March, as DfE's
    903 guidance defines it and Data to Insight's validator computes it: in care at some
    point in the year, and no episode that starts a period of care after 1 April (RNE S),
    ends one before 31 March (REC other than X1), or is under a short-break legal status
    (V3, V4) in the year."""
    decom, dec = _date("DECOM", fmt), _date("DEC", fmt)
    start, end = pl.lit(y.start), pl.lit(y.end)
    during = (decom <= end) & (dec.is_null() | (dec >= start))
    enters = (pl.col("RNE") == "S") & (decom > start) & (decom <= end)
    leaves = (pl.col("REC") != "X1") & (dec >= start) & (dec < end)
    respite = pl.col("LS").is_in(["V3", "V4"]) & during
    return (
        episodes.filter(pl.col("CHILD").is_not_null())
        .group_by("CHILD")
        .agg(
            (
                during.fill_null(False).any() & ~(enters | leaves | respite).fill_null(False).any()
            ).alias("@cla")
        )
    )


def in_care_on_birthday(oc3: pl.DataFrame, episodes: pl.DataFrame, y: YearRules,
                        fmt: str) -> pl.Series:  # fmt: skip
    """For each OC3 row: the young person was 17 or 18 at 31 March and looked after on
    their birthday in the collection year (an episode began on or before it and had not
    ended by it). Open episodes count as in care."""
    dob = pl.col("@dob")
    years = pl.lit(y.year) - dob.dt.year()
    this_year = dob.dt.offset_by(pl.format("{}y", years))
    # The last birthday on or before 31 March (29 February: the 28th, as polars clips).
    bday = (
        pl.when(this_year > pl.lit(y.end))
        .then(dob.dt.offset_by(pl.format("{}y", years - 1)))
        .otherwise(this_year)
    )
    rows = (
        oc3.select(pl.int_range(pl.len()).alias("@i"), "CHILD", _date("DOB", fmt).alias("@dob"))
        .with_columns(bday.alias("@bday"))
        .filter((pl.col("@bday").dt.year() - dob.dt.year()).is_in([17, 18]))
    )
    eps = episodes.select("CHILD", _date("DECOM", fmt).alias("@s"), _date("DEC", fmt).alias("@e"))
    bday_in_care = (pl.col("@s") <= pl.col("@bday")) & (
        pl.col("@e").is_null() | (pl.col("@e") > pl.col("@bday"))
    )
    hit = rows.join(eps, on="CHILD").filter(bday_in_care)
    return pl.int_range(oc3.height, eager=True).is_in(hit["@i"].implode())


def missing_context(missing: pl.DataFrame, episodes: pl.DataFrame, fmt: str) -> pl.DataFrame:
    """Missing with `@in_episode` (its start falls in one of the child's episodes, from
    DECOM to DEC or still open: rule 581) and `@prev_MIS_END`/`@has_prev` (the child's
    previous missing episode in end-date order, as rule 574 orders them)."""
    rows = missing.with_columns(pl.int_range(pl.len()).alias("@i"))
    eps = episodes.select("CHILD", _date("DECOM", fmt).alias("@s"), _date("DEC", fmt).alias("@e"))
    start = _date("MIS_START", fmt)
    inside = (
        rows.select("@i", "CHILD", start.alias("@ms"))
        .join(eps, on="CHILD")
        .filter(
            (pl.col("@ms") >= pl.col("@s"))
            & (pl.col("@e").is_null() | (pl.col("@ms") <= pl.col("@e")))
        )
    )
    end = _date("MIS_END", fmt)
    seq = (
        rows.with_columns(start.alias("@ms"), end.alias("@me"))
        .filter(pl.col("@ms").is_not_null() & pl.col("CHILD").is_not_null())
        .sort("CHILD", pl.coalesce("@me", "@ms"), "@ms", "@line")
        .select(
            "@i",
            pl.col("MIS_END").shift(1).over("CHILD").alias("@prev_MIS_END"),
            (pl.int_range(pl.len()).over("CHILD") > 0).alias("@has_prev"),
        )
    )
    return (
        rows.join(seq, on="@i", how="left")
        .with_columns(
            pl.col("@i").is_in(inside["@i"].implode()).alias("@in_episode"),
            pl.col("@has_prev").fill_null(False),
        )
        .drop("@i")
    )


def ssda903_context(
    table: str,
    df: pl.DataFrame,
    episodes: pl.DataFrame,
    y: YearRules,
    fmt: str,
    last_episodes: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One 903 table with the context its cross-record rules read; `episodes` is the
    same return's Episodes table, `last_episodes` last year's (None when the folder holds
    no return for the year before)."""
    if table == "Episodes":
        return continued_from_last_year(episode_sequence(df, fmt), last_episodes, fmt)
    if table == "OC2":
        cla = continuously_looked_after(episodes, y, fmt)
        return df.join(cla, on="CHILD", how="left").with_columns(pl.col("@cla").fill_null(False))
    if table == "OC3":
        return df.with_columns(
            in_care_on_birthday(df, episodes, y, fmt).alias("@in_care_on_birthday")
        )
    if table == "Missing":
        return missing_context(df, episodes, fmt)
    return df
