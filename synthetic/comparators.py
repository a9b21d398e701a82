"""A fictional comparator file in the EES layout, for the demo county (Wealdmoor).

Councils compare themselves with England, their region and their statistical neighbours
using DfE's published data files (Explore Education Statistics). The demo cannot ship
real national statistics beside a synthetic county, and must not pretend to: this
module writes a small file in exactly the EES layout whose every geography and figure
is made up. Its names say so ("England (fictional)", "... (fictional)", file names
starting `fictional_`), its codes start with X like the synthetic county's (no real
geography code does), and its footnotes say so again.

The figures sit around England's published levels (DfE, *Children in need*, 2024: about
520 referrals, 330 children in need and 42 children on a child protection plan per 10,000
children) so that the synthetic county's own figures fall among them. The same seed gives
the same bytes; `portal comparators load --demo` loads the copy shipped in
`synthetic/fictional_comparators/`, and a test checks that copy is what this writes.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthetic.geography import COUNTY_CODE, COUNTY_NAME

DATASET = "fictional_children_in_need_comparators"
SHIPPED = Path(__file__).resolve().parent / "fictional_comparators"
SEED = 20251
YEARS = (2022, 2023, 2024, 2025, 2026)  # reporting years ending 31 March
COUNTRY = ("X92000001", "England (fictional)")
REGIONS = {
    "X12000001": "Wealdmoor Region (fictional)",
    "X12000002": "North Fictional Region",
    "X12000003": "East Fictional Region",
}
# Invented places; every name says it is fictional.
_PLACES = (
    "Ashcombe", "Barrowdale", "Coldmere", "Dunstrow", "Elmsworth", "Farrowby", "Glenhurst",
    "Hartleigh", "Ivybridge Vale", "Kestermoor", "Lintonshire", "Marrowfield", "Northcote Fen",
    "Oakhaven", "Pellingham", "Quarrington", "Ravensholt", "Saltmarsh Down", "Thornbury Wold",
    "Upperdale", "Wexcombe", "Yarrowby", "Brackenshire", "Cinderford Vale", "Dovemoor",
    "Fernleigh", "Greystone", "Hollowmere", "Kingsmere",
)  # fmt: skip
# Wealdmoor's statistical neighbours in the demo (closest first): ten of the authorities.
NEIGHBOURS = (
    "X10000004", "X10000009", "X10000012", "X10000002", "X10000017",
    "X10000021", "X10000006", "X10000025", "X10000014", "X10000029",
)  # fmt: skip
AGE_GROUPS = ("Under 1", "1 to 4", "5 to 9", "10 to 15", "16 and over")
AGE_FACTOR = (1.15, 0.85, 0.9, 1.05, 1.2)  # children in need by age, relative to all ages


@dataclass(frozen=True)
class Indicator:
    col_name: str
    label: str
    unit: str  # EES indicator_unit: "%" or blank
    dp: int
    england: float  # the fictional England figure in the first year
    trend: float  # change a year
    spread: float  # between authorities: relative (rates) or points (percentages)
    by_age: bool = False


INDICATORS = (
    Indicator("referrals_rate", "Referrals per 10,000 children (fictional)", "", 1,
              530.0, -4.0, 0.18),
    Indicator("rereferrals_percent", "Re-referrals within 12 months (%) (fictional)", "%", 1,
              21.5, -0.2, 3.5),
    Indicator("assessments_45_days_percent",
              "Assessments completed within 45 working days (%) (fictional)", "%", 1,
              83.0, 0.4, 6.0),
    Indicator("s47_rate", "Section 47 enquiries started per 10,000 children (fictional)", "", 1,
              172.0, 2.0, 0.22),
    Indicator("cin_at_31_march_rate",
              "Children in need at 31 March per 10,000 children (fictional)", "", 1,
              334.0, -1.0, 0.15, by_age=True),
    Indicator("cpp_at_31_march_rate",
              "Children on a child protection plan at 31 March per 10,000 children (fictional)",
              "", 1, 42.5, 0.3, 0.2, by_age=True),
    Indicator("cpp_starts_rate",
              "Child protection plans started per 10,000 children (fictional)", "", 1,
              51.0, 0.2, 0.2),
    Indicator("cpp_second_percent",
              "Plans started that were second or subsequent plans (%) (fictional)", "%", 1,
              23.5, 0.1, 4.0),
    Indicator("cpp_ended_2_years_percent",
              "Plans ended that had lasted two years or more (%) (fictional)", "%", 1,
              3.6, 0.0, 1.2),
)  # fmt: skip

FOOTNOTES = (
    "FICTIONAL DATA FOR THE DEMO. Every authority, region and figure in this file is made "
    "up; they are not national statistics and must not be quoted.",
    "Written by synthetic/comparators.py in the layout of DfE's Explore Education Statistics "
    "data files, so that the demo county (Wealdmoor, itself synthetic) has comparators. A "
    "council loads DfE's real files instead.",
    "Codes start with X, like the synthetic county's: no real geography code does.",
)


def authorities() -> list[tuple[str, str, str]]:
    """(code, name, region code) of every fictional authority; Wealdmoor is the first."""
    regions = list(REGIONS)
    out = [(COUNTY_CODE, f"{COUNTY_NAME} (fictional)", regions[0])]
    for i, place in enumerate(_PLACES, start=2):
        out.append((f"X100000{i:02d}", f"{place} (fictional)", regions[i % len(regions)]))
    return out


def _values(rng: np.random.Generator, ind: Indicator, n: int) -> np.ndarray:
    """Figures for n authorities and every year: a level per authority, a shared trend and
    a little noise a year."""
    years = np.arange(len(YEARS))
    base = ind.england + ind.trend * years
    if ind.unit == "%":
        level = rng.normal(0.0, ind.spread, n)
        vals = base[None, :] + level[:, None] + rng.normal(0, ind.spread / 5, (n, len(YEARS)))
        return np.clip(vals, 0.0, 100.0)
    level = np.exp(rng.normal(0.0, ind.spread, n))
    return base[None, :] * level[:, None] * np.exp(rng.normal(0, 0.04, (n, len(YEARS))))


def _fmt(value: float, dp: int) -> str:
    return f"{value:.{dp}f}"


def _indicator_cells(age: str, vals: dict[str, float], symbols: dict[str, str]) -> list[str]:
    """One row's indicator cells: the figure, its symbol, or z where the file does not
    break the indicator down by age."""
    out = []
    for ind in INDICATORS:
        if age != "Total" and not ind.by_age:
            out.append("z")  # not collected by age in this file
        else:
            out.append(symbols.get(ind.col_name) or _fmt(vals[ind.col_name], ind.dp))
    return out


def build() -> tuple[str, str, str]:
    """The data file, meta file and footnotes file, as text."""
    rng = np.random.default_rng(SEED)
    las = authorities()
    n = len(las)
    values = {ind.col_name: _values(rng, ind, n) for ind in INDICATORS}
    # A few cells a real file would hold back: an authority that did not submit one year
    # (x), small counts suppressed (c) for the rarest indicator.
    missing = {(5, 2), (11, 0)}  # (authority index, year index) -> x for every indicator
    suppressed = {(i, y) for i in (7, 19, 23) for y in range(len(YEARS)) if (i + y) % 2 == 0}

    geo_cols = [
        "time_period", "time_identifier", "geographic_level", "country_code", "country_name",
        "region_code", "region_name", "new_la_code", "old_la_code", "la_name", "age_group",
    ]  # fmt: skip
    rows: list[list[str]] = []

    for y, year in enumerate(YEARS):
        period = (str(year), "Reporting year")
        for age_i, age in enumerate(("Total", *AGE_GROUPS)):
            factor = 1.0 if age == "Total" else AGE_FACTOR[age_i - 1]

            # England and the regions: the mean of their authorities (every authority in
            # the country, symbols aside), as if aggregated from the same returns.
            def mean_of(idx: list[int], y: int = y, factor: float = factor) -> dict[str, float]:
                return {
                    ind.col_name: float(np.mean(values[ind.col_name][idx, y])) * factor
                    for ind in INDICATORS
                }

            rows.append(
                [*period, "National", *COUNTRY, "", "", "", "", "", age]
                + _indicator_cells(age, mean_of(list(range(n))), {})
            )
            for code, name in REGIONS.items():
                idx = [i for i, la in enumerate(las) if la[2] == code]
                rows.append(
                    [*period, "Regional", *COUNTRY, code, name, "", "", "", age]
                    + _indicator_cells(age, mean_of(idx), {})
                )
            for i, (code, name, region) in enumerate(las):
                symbols: dict[str, str] = {}
                if (i, y) in missing:
                    symbols = {ind.col_name: "x" for ind in INDICATORS}
                elif (i, y) in suppressed:
                    symbols = {"cpp_ended_2_years_percent": "c"}
                vals = {
                    ind.col_name: float(values[ind.col_name][i, y]) * factor for ind in INDICATORS
                }
                rows.append(
                    [*period, "Local authority", *COUNTRY, region, REGIONS[region], code,
                     f"X{i + 1:02d}", name, age]
                    + _indicator_cells(age, vals, symbols)
                )  # fmt: skip

    data = io.StringIO()
    w = csv.writer(data, lineterminator="\n")
    w.writerow([*geo_cols, *(ind.col_name for ind in INDICATORS)])
    w.writerows(rows)

    meta = io.StringIO()
    w = csv.writer(meta, lineterminator="\n")
    w.writerow(
        ["col_name", "col_type", "label", "indicator_grouping", "indicator_unit",
         "indicator_dp", "filter_hint", "filter_grouping_column"]
    )  # fmt: skip
    w.writerow(["age_group", "Filter", "Age group (fictional)", "", "", "",
                "Age on 31 March", ""])  # fmt: skip
    for ind in INDICATORS:
        w.writerow([ind.col_name, "Indicator", ind.label, "", ind.unit, str(ind.dp), "", ""])

    notes = io.StringIO()
    w = csv.writer(notes, lineterminator="\n")
    w.writerow(["footnote"])
    w.writerows([f] for f in FOOTNOTES)
    return data.getvalue(), meta.getvalue(), notes.getvalue()


def write(out: Path) -> Path:
    """Write the three files into `out`; returns the data file's path."""
    out.mkdir(parents=True, exist_ok=True)
    data, meta, notes = build()
    (out / f"{DATASET}.csv").write_text(data, encoding="utf-8")
    (out / f"{DATASET}.meta.csv").write_text(meta, encoding="utf-8")
    (out / f"{DATASET}.footnotes.csv").write_text(notes, encoding="utf-8")
    return out / f"{DATASET}.csv"


def shipped_file() -> Path:
    """The copy shipped with the portal (loaded by `portal comparators load --demo`)."""
    return SHIPPED / f"{DATASET}.csv"


if __name__ == "__main__":  # pragma: no cover - regenerate the shipped copy
    print(write(SHIPPED))
