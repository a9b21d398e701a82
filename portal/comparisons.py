"""The council beside England, its region and its statistical neighbours, as DfE's Local
Authority Interactive Tool (LAIT) shows an authority.

For every published measure with a national equivalent (`pipelines/planning/comparisons.toml`)
the document gives, per financial year, the council's **protected** figure (from the release
layer: a rate or percentage the release publishes, or a rate per 10,000 children computed
from two protected counts), the region's and England's published figures and the simple
mean of the statistical neighbours that have one; and for the latest year with both, the
change on last year with its trend, the national rank and the quartile band, by LAIT's rules
(`pipelines.benchmarking`). The comparator file's own figure for the council (from its
statutory return) is never used for the council: it is reported beside ours, and the rank
and quartiles are taken over the other authorities' published figures and our protected one.

Measures without a true national equivalent are listed with the reason, rather than
compared with something unlike them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from anonymise.policy import Policy
from pipelines.benchmarking import (
    TRENDS,
    change_on_last_year,
    direction,
    neighbour_average,
    standing,
    trend,
)
from pipelines.ees import LOCAL_AUTHORITY, NATIONAL, REGIONAL
from pipelines.planning_config import Comparison, PlanningConfig
from pipelines.store import Store
from pipelines.store_comparators import Dataset, list_datasets, read_values
from portal.protected import Figure, Tables, complete, figures, rate_from_counts
from registry.measures import MeasureMeta

FY = "financial_year"
POPULATION = "child_population"
NO_MAPPING = (
    "No national equivalent is mapped for this measure (pipelines/planning/comparisons.toml)."
)


def _previous_year(label: str) -> str:
    start = int(label[:4]) - 1
    return f"{start}/{(start + 1) % 100:02d}"


def find_dataset(datasets: Sequence[Dataset], c: Comparison) -> Dataset | None:
    """The data set a comparison reads: the one it names, else the newest loaded file that
    has its indicator."""
    if c.dataset is not None:
        return next((d for d in datasets if d.dataset == c.dataset), None)
    return next((d for d in datasets if c.indicator in d.indicators), None)


def _select_filters(values: pl.DataFrame, ds: Dataset, c: Comparison) -> pl.DataFrame:
    wanted = {f: c.filters.get(f, "Total") for f in ds.filters}
    key = json.dumps(wanted, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return values.filter(pl.col("filters") == key)


def our_figures(tables: Tables, meta: MeasureMeta, c: Comparison) -> tuple[dict[str, Figure], str]:
    """The council's protected figure per complete financial year, and what it is."""
    sym = tables.policy.symbols
    table = tables.get(meta.name, (FY,))
    years = complete(table, FY)
    if c.value == "rate":
        if meta.denominator is None:
            raise ValueError(
                f"{meta.name} publishes a count, not a rate: map it as per_10000_children"
            )
        per = meta.denominator.per
        unit = "%" if per == 100 else f"per {per:,}"
        got = figures(table, FY, rate=True)
        return {y: got[y] for y in years if y in got}, unit
    pop = tables.get(POPULATION, (FY,))
    counts, den = figures(table, FY, rate=False), figures(pop, FY, rate=False)
    pop_years = set(complete(pop, FY))
    out = {
        y: rate_from_counts(
            counts[y],
            den[y],
            per=10_000,
            decimals=1,
            confidential=sym.confidential,
            not_applicable=sym.not_applicable,
        )  # fmt: skip
        for y in years
        if y in counts and y in den and y in pop_years
    }
    return out, "per 10,000"


@dataclass(frozen=True)
class _Comparators:
    england: dict[str, Figure]
    region: dict[str, Figure]
    authorities: dict[str, dict[str, float | None]]  # year -> LA code -> value
    published_for_us: dict[str, Figure]


def _figure(row: dict[str, Any], dp: int) -> Figure:
    if row["value"] is None:
        return Figure(None, row["symbol"] or "x")
    return Figure(float(row["value"]), f"{row['value']:.{dp}f}")


def comparator_figures(values: pl.DataFrame, config: PlanningConfig, dp: int) -> _Comparators:
    a = config.authority
    england: dict[str, Figure] = {}
    region: dict[str, Figure] = {}
    las: dict[str, dict[str, float | None]] = {}
    ours: dict[str, Figure] = {}
    for row in values.filter(pl.col("financial_year").is_not_null()).iter_rows(named=True):
        fy, level, code = row["financial_year"], row["geographic_level"], row["area_code"]
        if level == NATIONAL and code == a.country_code:
            england[fy] = _figure(row, dp)
        elif level == REGIONAL and code == a.region_code:
            region[fy] = _figure(row, dp)
        elif level == LOCAL_AUTHORITY:
            if code == a.new_la_code:
                ours[fy] = _figure(row, dp)
            else:
                las.setdefault(fy, {})[code] = row["value"]
    return _Comparators(england, region, las, ours)


def _compare_one(
    tables: Tables,
    meta: MeasureMeta,
    c: Comparison,
    ds: Dataset,
    store: Store,
    config: PlanningConfig,
) -> dict[str, Any]:
    col = ds.column(c.indicator) or {}
    dp = int(col.get("indicator_dp") or 1) if str(col.get("indicator_dp") or "").isdigit() else 1
    values = _select_filters(read_values(store, c.indicator, ds.dataset), ds, c)
    comp = comparator_figures(values, config, dp)
    ours, unit = our_figures(tables, meta, c)
    code = config.authority.new_la_code
    years = sorted(set(ours) | set(comp.england) | set(comp.region) | set(comp.authorities))
    series = []
    for y in years:
        avg, n = neighbour_average(comp.authorities.get(y, {}), config.neighbours)
        us = ours.get(y)
        series.append(
            {
                "period": y,
                "ours": us.public() if us else None,
                "region": comp.region[y].public() if y in comp.region else None,
                "neighbours": None if avg is None else round(avg, dp),
                "neighbours_with_data": n,
                "england": comp.england[y].public() if y in comp.england else None,
                "published_for_us": (
                    comp.published_for_us[y].public() if y in comp.published_for_us else None
                ),
            }
        )
    latest = None
    judged = [
        y for y in years if y in ours and ours[y].value is not None and comp.authorities.get(y)
    ]
    if judged:
        y = judged[-1]
        prev = _previous_year(y)
        mine = ours[y].value
        before = ours[prev].value if prev in ours else None
        change = change_on_last_year(mine, before)
        everyone = {**comp.authorities[y], code: mine}
        where = standing(everyone, code, c.polarity)
        t = trend(change)
        latest = {
            "period": y,
            "ours": mine,
            "change": None if change is None else round(change, dp),
            "trend": t,
            "arrow": TRENDS.get(t or "", ""),
            "direction": direction(change, c.polarity),
            "rank": where.rank,
            "of": where.of,
            "band": where.band,
            "quartiles": None if where.bounds is None else [round(b, dp) for b in where.bounds],
        }
    return {
        "measure": meta.name,
        "title": meta.title,
        "indicator": c.indicator,
        "indicator_label": col.get("label", c.indicator),
        "dataset": ds.dataset,
        "filters": {f: c.filters.get(f, "Total") for f in ds.filters},
        "value": c.value,
        "unit": unit,
        "decimals": dp,
        "polarity": c.polarity,
        "series": series,
        "latest": latest,
    }


def comparisons_document(
    store: Store, tables: Tables, config: PlanningConfig, *, release_id: str
) -> dict[str, Any]:
    """Every mapped measure beside its comparators, and every other measure with the
    reason it is not compared."""
    meta = store.read_meta(release_id)
    datasets = list_datasets(store)
    compared, missing = [], []
    used: dict[str, Dataset] = {}
    mapped = set()
    for c in config.comparisons:
        if c.measure not in meta:
            continue
        mapped.add(c.measure)
        ds = find_dataset(datasets, c)
        if ds is None or c.indicator not in ds.indicators:
            where = f"data set {c.dataset!r}" if c.dataset else "any loaded comparator file"
            missing.append(
                {
                    "measure": c.measure,
                    "title": meta[c.measure].title,
                    "reason": f"Its national equivalent ({c.indicator}) is not in {where}: "
                    "an administrator loads it with `portal comparators load`.",
                }
            )
            continue
        used[ds.dataset] = ds
        compared.append(_compare_one(tables, meta[c.measure], c, ds, store, config))
    not_compared = [
        {
            "measure": name,
            "title": m.title,
            "reason": config.why_not_compared(name) or NO_MAPPING,
        }
        for name, m in sorted(meta.items(), key=lambda kv: kv[1].title)
        if name not in mapped
    ]
    a = config.authority
    policy: Policy = tables.policy
    return {
        "release_id": release_id,
        "authority": {
            "name": a.name,
            "code": a.new_la_code,
            "region": a.region_name,
            "country": a.country_name,
        },
        "neighbours": {"codes": list(config.neighbours), "source": config.neighbours_source},
        "datasets": [d.public() for d in used.values()],
        "datasets_loaded": len(datasets),
        "compared": compared,
        "not_loaded": missing,
        "not_compared": not_compared,
        "notes": [
            f"{a.name}'s figures are the portal's published figures, protected by "
            f"disclosure control (policy {policy.ref}): each count may differ from the true "
            f"count by up to {policy.max_noise}, and rates are computed from protected counts.",
            "The comparators are the published figures in the loaded files. The files' own "
            f"figure for {a.name} (from its statutory return, which may count differently) is "
            "shown for reference and is not used: rank and quartiles are taken over the other "
            f"authorities' figures and {a.name}'s protected one.",
            "Statistical neighbours: the simple mean of the neighbours with a figure that "
            "year (LAIT's rule). Rank: 1 is the best by the measure's polarity; ties share "
            "the lower rank. Quartile band A is the best quarter of authorities, D the worst; "
            "measures with no polarity (neither higher nor lower is better) have no rank or "
            "band, as in LAIT.",
            "Only complete financial years are compared.",
        ],
    }
