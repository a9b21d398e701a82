"""Supporting Families as the programme runs it: claims against the council's target, the
claim rules, outcomes by headline, and the quarterly progress return.

Every figure is a protected count or percentage from the release layer (the measures of
`pipelines.derive` built on `pipelines.claims`). Two figures are computed here, from
published figures only: the financial year to date on the return (the sum of the published
quarterly counts: a suppressed quarter makes the sum `c`) and progress against the target
(published successful family outcomes as a percentage of the target in
`pipelines/planning/council.toml`).

The return's layout is data (`pipelines/planning/sf_return.toml`); `quarterly_return` fills
it for one financial quarter and `return_csv` writes it as the file to submit.
"""

from __future__ import annotations

import csv
import io
import tomllib
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from pipelines.claims import CLAIM_RULES
from pipelines.planning_config import PLANNING_DIR, PlanningConfig
from portal.protected import Figure, Tables, complete, figures
from registry.codes import NEED_LABELS
from registry.periods import FORMATS, financial_year, period_bounds

FY, QUARTER = "financial_year", "quarter"
RETURN_LAYOUT = PLANNING_DIR / "sf_return.toml"
WORKED_WITH, REVIEWS, CLAIMS = "sf_families_worked_with", "sf_claim_reviews", "sf_claims"
NEEDS_AT_ENTRY, NEEDS_REVIEWED, NEEDS_SUSTAINED = (
    "sf_needs_at_entry",
    "sf_needs_reviewed",
    "sf_needs_sustained",
)
PERIOD_KINDS = ("quarter", "year_to_date")


class ReturnError(ValueError):
    """The return cannot be made (bad layout, or a quarter the release cannot fill)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


# --- the layout -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReturnLine:
    id: str
    section: str
    label: str
    kind: str = "measure"  # "measure", "target" or "progress"
    measure: str | None = None
    period: str = "quarter"
    value: str = "count"  # "count" or "percentage"
    each_need: bool = False


@dataclass(frozen=True)
class ReturnLayout:
    title: str
    version: int
    lines: tuple[ReturnLine, ...]


def load_return_layout(
    path: Path = RETURN_LAYOUT, *, measures: set[str] | None = None
) -> ReturnLayout:
    """The return's layout, validated: every problem at once (ReturnError)."""
    problems: list[str] = []
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ReturnError([f"{path}: cannot be read as TOML ({exc})"]) from None
    head = raw.get("return") or {}
    lines: list[ReturnLine] = []
    ids: set[str] = set()
    for i, line in enumerate(raw.get("line") or [], start=1):
        where = f"{path}: [[line]] #{i}"
        kind = line.get("kind", "measure")
        if kind not in ("measure", "target", "progress"):
            problems.append(f"{where}: kind must be measure, target or progress")
            continue
        for key in ("id", "section", "label"):
            if not isinstance(line.get(key), str) or not line[key].strip():
                problems.append(f"{where}: {key} must be a non-empty text")
        if line.get("id") in ids:
            problems.append(f"{where}: id {line.get('id')!r} is used twice")
        ids.add(line.get("id"))
        measure = line.get("measure")
        if kind == "measure":
            if not isinstance(measure, str):
                problems.append(f"{where}: a measure line names its measure")
            elif measures is not None and measure not in measures:
                problems.append(f"{where}: no published measure {measure!r}")
        period = line.get("period", "quarter")
        if period not in PERIOD_KINDS:
            problems.append(f"{where}: period must be quarter or year_to_date")
        value = line.get("value", "count")
        if value not in ("count", "percentage"):
            problems.append(f"{where}: value must be count or percentage")
        if value == "percentage" and period != "quarter":
            problems.append(f"{where}: a percentage is returned for the quarter only")
        lines.append(
            ReturnLine(
                id=str(line.get("id", "")),
                section=str(line.get("section", "")),
                label=str(line.get("label", "")),
                kind=kind,
                measure=measure,
                period=period,
                value=value,
                each_need=bool(line.get("each_need", False)),
            )
        )
    if problems:
        raise ReturnError(problems)
    return ReturnLayout(str(head.get("title", "")), int(head.get("version", 1)), tuple(lines))


# --- quarters -------------------------------------------------------------------------------


def quarters_to_date(quarter: str) -> list[str]:
    """'2025/26 Q3' -> ['2025/26 Q1', '2025/26 Q2', '2025/26 Q3']."""
    fy, q = quarter.split(" Q")
    return [f"{fy} Q{i}" for i in range(1, int(q) + 1)]


def _sum(figs: list[Figure], confidential: str) -> Figure:
    if any(f.value is None for f in figs):
        return Figure(None, confidential)
    total = sum(f.value for f in figs if f.value is not None)
    return Figure(total, f"{int(total)}")


def _count_in(tables: Tables, measure: str, quarter: str) -> Figure:
    """The published count of `measure` in one quarter (0 where the quarter has none;
    x before the measure's data begin)."""
    table = tables.get(measure, (QUARTER,))
    got = figures(table, QUARTER, rate=False)
    if quarter in got:
        return got[quarter]
    bounds = period_bounds(QUARTER, quarter)
    if table.covers is None or bounds is None or bounds[1] < table.covers[0]:
        return Figure(None, tables.policy.symbols.unavailable)
    return Figure(0.0, "0")


def _need_figures(
    tables: Tables, measure: str, quarter: str, *, percentage: bool
) -> dict[str, Figure]:
    """Published count (or percentage) of `measure` by need in one quarter. The table by
    quarter and need is asked for whole (one table for every quarter's return) and the
    quarter's rows picked: a quarter with no rows is a count of 0, not an unknown value."""
    table = tables.get(measure, (QUARTER, "need"))
    rows = replace(table, data=table.data.filter(pl.col(QUARTER) == quarter))
    got = figures(rows, "need", rate=percentage)
    sym = tables.policy.symbols
    bounds = period_bounds(QUARTER, quarter)
    before_data = table.covers is None or bounds is None or bounds[1] < table.covers[0]
    absent = (
        Figure(None, sym.unavailable)
        if before_data
        else Figure(None, sym.not_applicable)
        if percentage
        else Figure(0.0, "0")
    )
    return {label: got.get(label, absent) for label in NEED_LABELS.values()}


def quarterly_return(
    tables: Tables,
    config: PlanningConfig,
    layout: ReturnLayout,
    *,
    quarter: str,
    release_id: str,
    data_as_at: date,
) -> dict[str, Any]:
    """The return for `quarter` ("2025/26 Q1"), line by line, from one release."""
    bounds = period_bounds(QUARTER, quarter) if FORMATS[QUARTER].match(quarter) else None
    if bounds is None:
        raise ReturnError([f"{quarter!r} is not a financial quarter like 2025/26 Q1"])
    if bounds[1] > data_as_at:
        raise ReturnError(
            [
                f"{quarter} had not ended by the release's data date ({data_as_at}): "
                "return a complete quarter"
            ]  # fmt: skip
        )
    sym = tables.policy.symbols
    fy = financial_year(bounds[0])
    rows: list[dict[str, Any]] = []
    ytd_claims: Figure | None = None

    def add(line_id: str, section: str, label: str, fig: Figure, note: str = "") -> None:
        rows.append(
            {
                "line": line_id,
                "section": section,
                "description": label,
                "value": fig.shown,
                "number": fig.value,
                "note": note,
            }  # fmt: skip
        )

    for line in layout.lines:
        if line.kind == "target":
            target = config.targets.get(fy)
            add(line.id, line.section, line.label,
                Figure(float(target), str(target)) if target else Figure(None, sym.unavailable),
                "" if target else f"no target for {fy} in the council's settings")  # fmt: skip
            continue
        if line.kind == "progress":
            target = config.targets.get(fy)
            if not target or ytd_claims is None:
                add(line.id, line.section, line.label, Figure(None, sym.unavailable))
            elif ytd_claims.value is None:
                add(line.id, line.section, line.label, Figure(None, sym.confidential))
            else:
                pct = round(ytd_claims.value / target * 100, 1)
                add(line.id, line.section, line.label, Figure(pct, f"{pct:.1f}"))
            continue
        assert line.measure is not None
        if line.each_need:
            figs = _need_figures(
                tables, line.measure, quarter, percentage=line.value == "percentage"
            )
            for i, (need, fig) in enumerate(figs.items(), start=1):
                add(f"{line.id}{i}", line.section, line.label.replace("{need}", need), fig)
            continue
        if line.period == "year_to_date":
            parts = [_count_in(tables, line.measure, q) for q in quarters_to_date(quarter)]
            fig = _sum(parts, sym.confidential)
            if line.measure == CLAIMS:
                ytd_claims = fig
            add(line.id, line.section, line.label, fig,
                "sum of the published quarterly figures")  # fmt: skip
            continue
        if line.value == "percentage":
            table = tables.get(line.measure, (QUARTER,))
            got = figures(table, QUARTER, rate=True)
            add(
                line.id,
                line.section,
                line.label,
                got.get(quarter, Figure(None, sym.not_applicable)),
            )
            continue
        add(line.id, line.section, line.label, _count_in(tables, line.measure, quarter))
    a = config.authority
    return {
        "title": layout.title,
        "layout_version": layout.version,
        "authority": {"name": a.name, "new_la_code": a.new_la_code, "old_la_code": a.old_la_code},
        "quarter": quarter,
        "financial_year": fy,
        "period": [bounds[0].isoformat(), bounds[1].isoformat()],
        "release_id": release_id,
        "data_as_at": data_as_at.isoformat(),
        "policy": tables.policy.ref,
        "lines": rows,
        "notes": [
            "Every count is protected by disclosure control (cell key perturbation, counts "
            f"under {tables.policy.threshold} shown as {sym.confidential}); percentages are "
            "computed from protected counts.",
            "Financial year to date is the sum of the published quarterly figures; the "
            "financial-year figure on the portal is protected separately and may differ by a "
            "few.",
            f"{sym.unavailable} = not available (before the data begin, or no target set); "
            f"{sym.not_applicable} = not applicable (no needs under that headline).",
            "Claim rules: Supporting Families programme guidance 2022 to 2025, chapters 4 and "
            "5; each rule's reading is in the portal's methodology.",
        ],
    }


def return_csv(doc: dict[str, Any]) -> str:
    """The return as CSV: the return's details, then one row per line."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["line", "section", "description", "value"])
    a = doc["authority"]
    details = [
        ("H1", "Local authority", a["name"]),
        ("H2", "Local authority code", a["new_la_code"]),
        ("H3", "Quarter", doc["quarter"]),
        ("H4", "Period", f"{doc['period'][0]} to {doc['period'][1]}"),
        ("H5", "Data as at", doc["data_as_at"]),
        ("H6", "Release", doc["release_id"]),
        ("H7", "Disclosure control policy", doc["policy"]),
    ]
    for line, desc, value in details:
        w.writerow([line, "Return details", desc, value])
    for r in doc["lines"]:
        w.writerow([r["line"], r["section"], r["description"], r["value"]])
    return out.getvalue()


# --- the claims view ------------------------------------------------------------------------


def _share(tables: Tables, measure: str, dim: str) -> dict[str, dict[str, Any]]:
    table = tables.get(measure, (dim,))
    counts = figures(table, dim, rate=False)
    rates = figures(table, dim, rate=True)
    return {k: {"count": counts[k].public(), "percent": rates[k].public()} for k in counts}


def _periods(tables: Tables, config: PlanningConfig, dim: str, as_at: date) -> list[dict[str, Any]]:
    reviews = tables.get(REVIEWS, (dim,))
    worked = figures(tables.get(WORKED_WITH, (dim,)), dim, rate=False)
    rev = figures(reviews, dim, rate=False)
    claims = _share(tables, CLAIMS, dim)
    rules = {r.key: _share(tables, f"sf_rule_{r.key}", dim) for r in CLAIM_RULES}
    whole = set(complete(reviews, dim))
    periods = sorted(set(rev) | set(worked), key=lambda p: period_bounds(dim, p) or (as_at, as_at))
    out = []
    sym = tables.policy.symbols
    for p in periods:
        row: dict[str, Any] = {
            "period": p,
            "complete": p in whole,
            # Why a period is not whole: still running at the data date, or begun before
            # the data do (its first weeks are missing).
            "partial": (
                None
                if p in whole
                else "to date"
                if (period_bounds(dim, p) or (as_at, as_at))[1] > as_at
                else "partial: begins before the data"
            ),
            "worked_with": worked.get(p, Figure(0.0, "0")).public(),
            "reviews": rev.get(p, Figure(0.0, "0")).public(),
            "claims": claims.get(p, {"count": Figure(0.0, "0").public(), "percent": None}),
            "rules": {k: v.get(p) for k, v in rules.items()},
        }
        if dim == FY:
            target = config.targets.get(p)
            count = row["claims"]["count"]["value"]
            row["target"] = target
            row["progress"] = (
                None if not target or count is None else round(count / target * 100, 1)
            )
            row["progress_shown"] = (
                sym.unavailable if not target else sym.confidential if count is None
                else f"{row['progress']:.1f}"
            )  # fmt: skip
        out.append(row)
    return out


def claims_document(
    tables: Tables, config: PlanningConfig, *, release_id: str, data_as_at: date
) -> dict[str, Any]:
    """Claims, claim rules, targets and outcomes by headline, by financial year and quarter."""
    years = _periods(tables, config, FY, data_as_at)
    quarters = _periods(tables, config, QUARTER, data_as_at)
    this_year = financial_year(data_as_at)
    current = next((y for y in years if y["period"] == this_year), None)
    start, end = period_bounds(FY, this_year) or (data_as_at, data_as_at)
    elapsed = round(((data_as_at - start).days + 1) / ((end - start).days + 1) * 100, 1)
    outcomes = []
    sustained = tables.get(NEEDS_SUSTAINED, (FY, "need"))
    full_years = set(complete(tables.get(REVIEWS, (FY,)), FY))
    for r in sustained.data.iter_rows(named=True):
        if r[FY] in full_years and r["need"] != "Total":
            outcomes.append(
                {
                    "period": r[FY],
                    "need": r["need"],
                    "reviewed": {"value": r["denominator_value"], "shown": r["denominator"]},
                    "sustained": {"value": r["count_value"], "shown": r["count"]},
                    "percent": {"value": r["rate_value"], "shown": r["rate"]},
                }
            )
    entry = tables.get(NEEDS_AT_ENTRY, (FY, "need"))
    needs = [
        {
            "period": r[FY],
            "need": r["need"],
            "count": {"value": r["count_value"], "shown": r["count"]},
        }
        for r in entry.data.iter_rows(named=True)
        if r["need"] != "Total"
    ]
    a = config.authority
    return {
        "release_id": release_id,
        "data_as_at": data_as_at.isoformat(),
        "authority": {"name": a.name, "code": a.new_la_code},
        "rules": [{"key": r.key, "title": r.title, "guidance": r.guidance} for r in CLAIM_RULES],
        "years": years,
        "quarters": quarters,
        "current_year": {
            "period": this_year,
            "share_of_year_elapsed": elapsed,
            "claims": None if current is None else current["claims"]["count"],
            "target": config.targets.get(this_year),
            "progress": None if current is None else current.get("progress"),
            "progress_shown": None if current is None else current.get("progress_shown"),
        },
        "targets": dict(config.targets),
        "outcomes_by_headline": outcomes,
        "needs_identified": needs,
        "notes": [
            "Successful family outcomes are families meeting every claim rule of the "
            "Supporting Families programme guidance 2022 to 2025, counted on the day the "
            "claim can first be made: six months after the episode closed.",
            "Every figure is protected by disclosure control; percentages and progress "
            "against the target are computed from protected counts.",
            f"Targets come from the council's settings ({config.source}).",
        ],
    }
