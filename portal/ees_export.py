"""Open data in the Explore Education Statistics format (`portal publish-ees`).

Every measure a release publishes becomes one EES tidy data file (`<measure>.csv`) and its
meta file (`<measure>.meta.csv`), written from protected tables only (the release layer's
`tabulate`, as every other output): the council's figures by financial year, in total and
by each of the measure's breakdowns in turn (age band, sex, ethnic group, need, ...), the
other breakdowns at "Total". Beside them: `footnotes.csv` (each file's footnotes, as EES
attaches footnotes to a data file), `data-guidance.md` (EES's mandatory data guidance: what
each file holds, its variables, coverage and the disclosure control) and `manifest.json`
(release, policy, files and their SHA-256).

The files follow the EES rules in `pipelines.ees` (tests check each with `ees.validate`):
the mandatory time and geography columns; a GSS symbol, and only one, in each cell that is
not published as a number (`c` suppressed by disclosure control, `z` a percentage of zero,
`x` not available); a label for every column and the unit of every indicator in the meta
file; no blank cell. Only complete financial years are written (a year still running is
not comparable). Localities and wards are the council's own geography and are not in the
files: EES publishes local authority figures; the portal has the rest.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from anonymise.safe_output import safe_frame
from pipelines.ees import (
    LOCAL_AUTHORITY,
    REQUIRED_META_COLUMNS,
    EesProblem,
    ees_financial_year,
    validate,
)
from pipelines.planning_config import PlanningConfig
from pipelines.store import Store
from portal.protected import Tables, complete
from registry.dimensions import dimension
from registry.measures import MeasureMeta
from registry.periods import TIME_DIMENSIONS

FY = "financial_year"
COUNCIL_GEOGRAPHY = ("locality", "ward", "lsoa")
TOTAL = "Total"


class ExportError(Exception):
    """The export cannot be written (the folder is not empty, ...)."""


@dataclass(frozen=True)
class ExportedFile:
    measure: str
    data_file: str
    meta_file: str
    rows: int
    filters: tuple[str, ...]
    indicators: tuple[str, ...]
    years: tuple[str, ...]


def filters_of(meta: MeasureMeta) -> list[str]:
    """A measure's breakdowns that become EES filters (not time, not council geography)."""
    return [d for d in meta.breakdowns if d not in TIME_DIMENSIONS and d not in COUNCIL_GEOGRAPHY]


def _indicator_columns(meta: MeasureMeta) -> list[dict[str, str]]:
    """The meta rows of a measure's indicators: the count, and for a rate its denominator
    and the rate."""
    rows = [
        {
            "col_name": "number",
            "label": f"Number of {meta.unit}",
            "indicator_unit": "",
            "indicator_dp": "0",
        }
    ]
    den = meta.denominator
    if den is not None:
        rows.append(
            {
                "col_name": "denominator",
                "label": f"Denominator: number of {meta.unit} in {den.measure.replace('_', ' ')}",
                "indicator_unit": "",
                "indicator_dp": "0",
            }
        )
        if den.per == 100:
            rows.append(
                {
                    "col_name": "percent",
                    "label": "Percentage",
                    "indicator_unit": "%",
                    "indicator_dp": str(den.decimals),
                }  # fmt: skip
            )
        else:
            rows.append(
                {
                    "col_name": f"rate_per_{den.per}",
                    "label": f"Rate per {den.per:,} children",
                    "indicator_unit": "",
                    "indicator_dp": str(den.decimals),
                }  # fmt: skip
            )
    return rows


def meta_frame(meta: MeasureMeta) -> pl.DataFrame:
    """The EES meta file of one measure."""
    rows = []
    for d in filters_of(meta):
        dim = dimension(d)
        rows.append(
            {
                "col_name": d,
                "col_type": "Filter",
                "label": dim.title,
                "filter_hint": dim.description,
            }
        )
    for ind in _indicator_columns(meta):
        rows.append({**ind, "col_type": "Indicator"})
    return pl.DataFrame(
        [{c: r.get(c, "") for c in REQUIRED_META_COLUMNS} for r in rows],
        schema={c: pl.String for c in REQUIRED_META_COLUMNS},
    )


def _values(frame: pl.DataFrame, meta: MeasureMeta) -> pl.DataFrame:
    """The release layer's value columns as EES indicator columns (symbols kept)."""
    cols = [pl.col("count").alias("number")]
    den = meta.denominator
    if den is not None:
        rate = "percent" if den.per == 100 else f"rate_per_{den.per}"
        cols += [pl.col("denominator").alias("denominator"), pl.col("rate").alias(rate)]
    return frame.select(*cols)


def data_frame(
    tables: Tables, meta: MeasureMeta, config: PlanningConfig
) -> tuple[pl.DataFrame, list[str], tuple[str, ...]]:
    """The EES data file of one measure (text cells), the footnotes of its tables, and the
    complete financial years it covers."""
    filters = filters_of(meta)
    total = tables.get(meta.name, (FY,))
    years = tuple(complete(total, FY))
    parts = [
        total.data.filter(pl.col(FY).is_in(years)).with_columns(
            pl.lit(TOTAL).alias(f) for f in filters
        )
    ]
    notes = list(total.footnotes)
    for f in filters:
        t = tables.get(meta.name, (FY, f))
        rows = t.data.filter(pl.col(FY).is_in(years) & (pl.col(f) != TOTAL))
        parts.append(rows.with_columns(pl.lit(TOTAL).alias(o) for o in filters if o != f))
        notes += [n for n in t.footnotes if n not in notes]
    body = pl.concat(
        [pl.concat([p.select(FY, *filters), _values(p, meta)], how="horizontal") for p in parts],
        how="vertical",
    )
    a = config.authority
    geo = {
        "time_period": body[FY].map_elements(ees_financial_year, return_dtype=pl.String),
        "time_identifier": "Financial year",
        "geographic_level": LOCAL_AUTHORITY,
        "country_code": a.country_code,
        "country_name": a.country_name,
        "region_code": a.region_code,
        "region_name": a.region_name,
        "new_la_code": a.new_la_code,
        "old_la_code": a.old_la_code,
        "la_name": a.name,
    }
    frame = body.with_columns(
        (v if isinstance(v, pl.Series) else pl.lit(v)).alias(k) for k, v in geo.items()
    )
    ordered = frame.select(*geo, *filters, *[c for c in body.columns if c not in (FY, *filters)])
    # Year by year; within a year the total first, then each breakdown in its documented order.
    ordered = ordered.sort("time_period", maintain_order=True)
    safe = safe_frame(ordered.select(*geo, *filters))
    return pl.concat([safe, ordered.drop(*geo, *filters)], how="horizontal"), notes, years


def _as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Every cell as the text written to the file (blank for null), as `ees.validate`
    reads files."""
    return frame.select(pl.col(c).cast(pl.String).fill_null("") for c in frame.columns)


def _csv(frame: pl.DataFrame) -> bytes:
    out = io.StringIO()
    frame.write_csv(out)
    return out.getvalue().encode("utf-8")


def _guidance(
    exported: list[ExportedFile],
    metas: dict[str, MeasureMeta],
    doc: dict[str, Any],
    skipped: dict[str, str],
) -> str:
    lines = [
        f"# Data guidance: {doc['authority']} children's services statistics",
        "",
        f"Release {doc['release_id']}, data as at {doc['data_as_at']}; disclosure control "
        f"policy {doc['policy']}. Written by the council's research and statistics portal "
        "(`portal publish-ees`) in the Explore Education Statistics data file format.",
        "",
        "## Disclosure control",
        "",
        "Every count is protected by the cell key method: each may differ from the true count "
        f"by up to {doc['max_noise']}, the same cell always shows the same value, and totals "
        "are protected separately from the cells inside them, so they may not equal the sum "
        "of the rows. Percentages and rates are computed from protected counts.",
        "",
        "Symbols: `c` confidential (fewer than "
        f"{doc['threshold']} after protection, suppressed); `z` not applicable (a percentage "
        "or rate of a zero denominator); `x` not available. `0` is a true zero.",
        "",
        "## Coverage",
        "",
        f"Geography: {doc['authority']} ({doc['la_code']}) as a local authority. Time: "
        "complete financial years (April to March) only. Each file has the total for each "
        "year and, in turn, each breakdown with the others at Total; breakdowns are not "
        "crossed.",
        "",
        "## Data files",
    ]
    for f in exported:
        m = metas[f.measure]
        lines += [
            "",
            f"### {f.data_file}: {m.title}",
            "",
            m.definition,
            "",
            f"Years: {', '.join(f.years) if f.years else 'none complete'}. Rows: {f.rows}.",
            "",
            "| column | type | label |",
            "|---|---|---|",
        ]
        meta_rows = meta_frame(m).iter_rows(named=True)
        for r in meta_rows:
            unit = f" ({r['indicator_unit']})" if r["indicator_unit"] else ""
            lines.append(f"| {r['col_name']} | {r['col_type']} | {r['label']}{unit} |")
    if skipped:
        lines += ["", "## Measures not in these files", ""]
        lines += [f"- {metas[n].title} (`{n}`): {why}." for n, why in sorted(skipped.items())]
    lines.append("")
    return "\n".join(lines)


def publish_ees(
    store: Store,
    tables: Tables,
    config: PlanningConfig,
    *,
    release_id: str,
    out: Path,
    force: bool = False,
) -> list[ExportedFile]:
    """Write every published measure of the release as EES files into `out`."""
    if out.exists() and any(out.iterdir()) and not force:
        raise ExportError(f"{out} is not empty: choose an empty folder (or --force)")
    info = store.get_release(release_id)
    metas = store.read_meta(release_id)
    exported: list[ExportedFile] = []
    footnotes: list[tuple[str, str]] = []
    files: dict[str, bytes] = {}
    problems: list[EesProblem] = []
    skipped: dict[str, str] = {}  # measure -> why it has no file
    for name in sorted(metas):
        m = metas[name]
        if FY not in m.breakdowns:
            skipped[name] = "it has no financial years"
            continue
        frame, notes, years = data_frame(tables, m, config)
        if not years:
            # EES refuses a file without data rows; a year still running is not written.
            skipped[name] = "no complete financial year yet"
            continue
        meta = meta_frame(m)
        data_name, meta_name = f"{name}.csv", f"{name}.meta.csv"
        problems += validate(
            _as_text(frame), _as_text(meta), data_name=data_name, meta_name=meta_name
        )
        files[data_name] = _csv(frame)
        files[meta_name] = _csv(meta)
        footnotes += [(data_name, n) for n in notes]
        exported.append(
            ExportedFile(
                measure=name,
                data_file=data_name,
                meta_file=meta_name,
                rows=frame.height,
                filters=tuple(filters_of(m)),
                indicators=tuple(meta.filter(pl.col("col_type") == "Indicator")["col_name"]),
                years=years,
            )
        )
    if problems:
        # Nothing is written: a file that breaks the EES rules would be refused on upload.
        raise ExportError(
            "the files would break the EES rules (nothing written):\n"
            + "\n".join(f"  - {p}" for p in problems)
        )
    notes_csv = io.StringIO()
    w = csv.writer(notes_csv, lineterminator="\n")
    w.writerow(["data_file", "footnote"])
    w.writerows(footnotes)
    files["footnotes.csv"] = notes_csv.getvalue().encode("utf-8")
    policy = tables.policy
    doc = {
        "authority": config.authority.name,
        "la_code": config.authority.new_la_code,
        "release_id": release_id,
        "data_as_at": info.data_as_at.isoformat(),
        "policy": policy.ref,
        "max_noise": policy.max_noise,
        "threshold": policy.threshold,
    }
    files["data-guidance.md"] = _guidance(exported, metas, doc, skipped).encode("utf-8")
    manifest = {
        **doc,
        "format": "Explore Education Statistics data files (tidy CSV with .meta.csv)",
        "files": {n: hashlib.sha256(b).hexdigest() for n, b in sorted(files.items())},
        "measures": [f.measure for f in exported],
        "not_written": skipped,
    }
    files["manifest.json"] = (json.dumps(manifest, indent=2) + "\n").encode("utf-8")
    out.mkdir(parents=True, exist_ok=True)
    for n, b in files.items():
        (out / n).write_bytes(b)
    return exported
