"""Looked-after children and care leavers, from the SSDA903 return tables."""

from __future__ import annotations

from datetime import date

import polars as pl

from pipelines.derive.children_in_need import (
    SNAPSHOT_DIMS,
    _empty,
    _snapshot,
)
from pipelines.derive.common import (
    GEO,
    PERSON,
    TIME,
    ZoneBFrames,
    _dedupe,
    _label,
    _per_person,
    _select,
    _unit,
    _upto_as_at,
    count_dates,
    with_person_dims,
)
from registry.codes import (
    CIN_NEED_LABELS,
    LAC_CEASED_LABELS,
)
from registry.periods import financial_year

# From the SSDA903 return (pipelines/returns): each collection year's files are DfE's
# record of that year, so a 31 March count reads that year's file only; events (starts,
# ceases, adoptions, missing incidents) are read from every year's files, an episode
# returned in two years counted once. Without a 903 every measure here is empty.

LAC_SOURCE = "ssda903_episodes"
CARE_LEAVER_DIMS = (*GEO, "sex", "financial_year")
# Care leavers' main activity codes that are education, employment or training (903 ACTIV).
EET_ACTIVITIES = ("F1", "P1", "F2", "P2", "F4", "P4", "F5", "P5")
LAC_UNIT = "lac31"


def _return_table(zb: ZoneBFrames, source: str) -> pl.DataFrame | None:
    ev = zb.events.get(source)
    return ev if ev is not None and not ev.is_empty() else None


def _lac_window(df: pl.DataFrame, col: str, zb: ZoneBFrames, years: pl.Series) -> pl.DataFrame:
    """Rows dated from 1 April of the first collection year returned to the data date: the
    903's coverage (its first year's files hold every episode open in that year)."""
    first = date(int(years.min()) - 1, 4, 1)  # type: ignore[arg-type]
    return _upto_as_at(df, col, zb).filter(pl.col(col) >= pl.lit(first))


def _lac_dates(zb: ZoneBFrames, eps: pl.DataFrame) -> list[date]:
    """31 March of every collection year returned, where the rate has a denominator."""
    years = set(eps["collection_year"].unique().to_list())
    return [d for d in count_dates(zb, "social_care") if d.year in years]


def _lac_on_31_march(zb: ZoneBFrames) -> pl.DataFrame | None:
    """Episodes open on 31 March of their own collection year, each with the number of
    placements the child had during that year (every episode that is not only a change
    of legal status, RNE L, starts a placement; the first of the year counts, being the
    placement the child was in on 1 April)."""
    eps = _return_table(zb, LAC_SOURCE)
    if eps is None:
        return None
    frames = []
    for d in _lac_dates(zb, eps):
        year = eps.filter(pl.col("collection_year") == d.year).sort("person_id", "decom")
        placements = (
            year.with_columns(
                ((pl.col("rne") != "L") | (pl.int_range(pl.len()).over("person_id") == 0))
                .fill_null(True)
                .alias("_new")
            )
            .group_by("person_id")
            .agg(pl.col("_new").sum().alias("placements"))
        )
        open_ = year.filter(
            (pl.col("decom") <= pl.lit(d)) & (pl.col("dec").is_null() | (pl.col("dec") > pl.lit(d)))
        )
        frames.append(
            open_.join(placements, on="person_id", how="left").with_columns(
                pl.lit(d).alias("snapshot")
            )
        )
    return pl.concat(frames) if frames else None


def lac_at_31_march(zb: ZoneBFrames) -> pl.DataFrame:
    rows = _lac_on_31_march(zb)
    return _empty(SNAPSHOT_DIMS) if rows is None else _snapshot(rows, zb, LAC_UNIT)


def lac_3_placements(zb: ZoneBFrames) -> pl.DataFrame:
    """Children looked after at 31 March with three or more placements during the year
    (the same units as `lac_at_31_march`, so it is a share of it)."""
    rows = _lac_on_31_march(zb)
    if rows is None:
        return _empty(SNAPSHOT_DIMS)
    return _snapshot(rows.filter(pl.col("placements") >= 3), zb, LAC_UNIT)


def _lac_events(zb: ZoneBFrames, at: str, keep: pl.Expr) -> pl.DataFrame | None:
    eps = _return_table(zb, LAC_SOURCE)
    if eps is None:
        return None
    rows = _dedupe(eps.filter(keep), ["person_id", at])
    return _lac_window(rows, at, zb, eps["collection_year"])


def lac_started(zb: ZoneBFrames) -> pl.DataFrame:
    """Children who started to be looked after (a new period: RNE S), by category of need."""
    rows = _lac_events(zb, "decom", pl.col("rne") == "S")
    if rows is None:
        return _empty((*GEO, *PERSON, *TIME, "cin_category"))
    rows = rows.with_columns(_label("cin", CIN_NEED_LABELS).alias("cin_category"))
    return _per_person(
        rows, zb, at="decom", unit=("lacstart", "person_id", "decom"), source=LAC_SOURCE,
        extra=("cin_category",), snapshot=True,  # the 903's window is applied above
    )  # fmt: skip


def _ceased(zb: ZoneBFrames, codes: tuple[str, ...] | None = None) -> pl.DataFrame | None:
    ended = pl.col("rec").is_not_null() & (pl.col("rec") != "X1")
    if codes is not None:
        ended &= pl.col("rec").is_in(list(codes))
    rows = _lac_events(zb, "dec", ended)
    if rows is None:
        return None
    return rows.with_columns(_label("rec", LAC_CEASED_LABELS).alias("outcome"))


def lac_ceased(zb: ZoneBFrames) -> pl.DataFrame:
    """Children who ceased to be looked after (the period ended: REC other than X1), by
    reason."""
    rows = _ceased(zb)
    if rows is None:
        return _empty((*GEO, *PERSON, *TIME, "outcome"))
    return _per_person(
        rows, zb, at="dec", unit=("lacend", "person_id", "dec"), source=LAC_SOURCE,
        extra=("outcome",), snapshot=True,
    )  # fmt: skip


def adoptions(zb: ZoneBFrames) -> pl.DataFrame:
    """Children who ceased to be looked after because they were adopted (REC E11, E12)."""
    rows = _ceased(zb, ("E11", "E12"))
    if rows is None:
        return _empty((*GEO, *PERSON, *TIME))
    return _per_person(
        rows, zb, at="dec", unit=("adopted", "person_id", "dec"), source=LAC_SOURCE,
        snapshot=True,
    )  # fmt: skip


def _missing(zb: ZoneBFrames) -> pl.DataFrame | None:
    mis = _return_table(zb, "ssda903_missing")
    eps = _return_table(zb, LAC_SOURCE)
    if mis is None or eps is None:
        return None
    rows = _dedupe(mis.filter(pl.col("missing") == "M"), ["person_id", "mis_start"])
    return _lac_window(rows, "mis_start", zb, eps["collection_year"])


def lac_missing_incidents(zb: ZoneBFrames) -> pl.DataFrame:
    """Incidents of a looked-after child going missing from placement (903 Missing, M)."""
    rows = _missing(zb)
    if rows is None:
        return _empty((*GEO, *PERSON, *TIME))
    return _per_person(
        rows, zb, at="mis_start", unit=("missing", "person_id", "mis_start"),
        source="ssda903_missing", snapshot=True,
    )  # fmt: skip


def lac_went_missing(zb: ZoneBFrames) -> pl.DataFrame:
    """Looked-after children who went missing at least once in the financial year, each
    counted once a year (dated by their first incident of the year)."""
    rows = _missing(zb)
    dims = (*GEO, *PERSON, "financial_year")
    if rows is None:
        return _empty(dims)
    first = (
        rows.with_columns(pl.col("mis_start").map_elements(financial_year, pl.Utf8).alias("_fy"))
        .sort("mis_start")
        .unique(["person_id", "_fy"], keep="first", maintain_order=True)
    )
    return _per_person(
        first, zb, at="mis_start", unit=("wentmissing", "person_id", "_fy"),
        source="ssda903_missing", time=("financial_year",), snapshot=True,
    )  # fmt: skip


def _care_leavers(zb: ZoneBFrames) -> pl.DataFrame | None:
    """Care leavers aged 19 to 21 on their birthday in the collection year (903 OC3)."""
    oc3 = _return_table(zb, "ssda903_oc3")
    if oc3 is None:
        return None
    born = zb.persons.select("person_id", "birth_month")
    year = pl.col("collection_year")
    bm = pl.col("birth_month")
    # The birthday in April to March: in calendar year Y-1 for April to December births.
    age = year - bm.str.slice(0, 4).cast(pl.Int32) - (bm.str.slice(5, 2).cast(pl.Int32) >= 4)
    rows = (
        oc3.join(born, on="person_id", how="inner")
        .with_columns(age.alias("_age"), pl.date(year, 3, 31).alias("snapshot"))
        .filter(pl.col("_age").is_between(19, 21) & (pl.col("snapshot") <= pl.lit(zb.as_at)))
        .drop("birth_month")
        .unique(["person_id", "collection_year"], keep="first", maintain_order=True)
    )
    return with_person_dims(rows, zb.persons, "snapshot").with_columns(
        _unit("oc3", pl.col("person_id"), year.cast(pl.Utf8))
    )


def care_leavers(zb: ZoneBFrames) -> pl.DataFrame:
    rows = _care_leavers(zb)
    return _empty(CARE_LEAVER_DIMS) if rows is None else _select(rows, CARE_LEAVER_DIMS)


def care_leavers_eet(zb: ZoneBFrames) -> pl.DataFrame:
    rows = _care_leavers(zb)
    if rows is None:
        return _empty(CARE_LEAVER_DIMS)
    return _select(rows.filter(pl.col("activ").is_in(list(EET_ACTIVITIES))), CARE_LEAVER_DIMS)


def care_leavers_suitable_accommodation(zb: ZoneBFrames) -> pl.DataFrame:
    rows = _care_leavers(zb)
    if rows is None:
        return _empty(CARE_LEAVER_DIMS)
    # ACCOM's second character: 1 suitable, 2 not suitable (903 guide).
    return _select(rows.filter(pl.col("accom").str.ends_with("1")), CARE_LEAVER_DIMS)
