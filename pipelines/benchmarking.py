"""Benchmarking against other authorities, by the rules of DfE's Local Authority Interactive
Tool (LAIT, `dfe-analytical-services/local-authority-interactive-tool`, R/fn_analysis.R):

- **Change on last year**: the latest value minus the previous year's, only when both
  exist and the years are consecutive; the **trend** is "Increase", "Decrease" or "No
  change" by its sign.
- **Polarity** says which way is better: "High" (higher is better), "Low" (lower is
  better) or "-" (neither: a rate of referrals is not good or bad in itself). Without a
  polarity there is no rank and no quartile band ("-"), as in LAIT.
- **National rank** among local authorities with a value for the latest year, ties
  sharing the lowest rank (R's `rank(ties.method = "min")`): rank 1 is the highest value
  when higher is better, the lowest when lower is better.
- **Quartile band** A to D from the quartiles of every authority's value (R's default
  `quantile`, type 7: linear interpolation, numpy's default too): with lower-is-better,
  A is the lowest quarter [min, Q1], B (Q1, median], C (median, Q3], D (Q3, max]; with
  higher-is-better the letters run the other way (A is the highest quarter). A is always
  the best quarter, D the worst.
- **Statistical neighbour average**: the simple mean of the neighbours with a value
  (LAIT's user guide: "where data does not exist for one or more ... the information is
  excluded from the mean calculation").

Pure functions; `portal.comparisons` applies them to the council's protected figure and
the loaded comparator statistics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

POLARITIES = ("High", "Low", "-")
BANDS = ("A", "B", "C", "D")
TRENDS = {"Increase": "↑", "Decrease": "↓", "No change": "→"}


def change_on_last_year(
    latest: float | None, previous: float | None, *, consecutive: bool = True
) -> float | None:
    """Latest minus previous (None when either is missing or the years are not adjacent)."""
    if latest is None or previous is None or not consecutive:
        return None
    return latest - previous


def trend(change: float | None) -> str | None:
    if change is None:
        return None
    if change > 0:
        return "Increase"
    return "Decrease" if change < 0 else "No change"


def direction(change: float | None, polarity: str) -> str | None:
    """Whether a change is an improvement: "better", "worse", or None (no change, no
    polarity, or no change to judge)."""
    if change is None or change == 0 or polarity not in ("High", "Low"):
        return None
    up_is_good = polarity == "High"
    return "better" if (change > 0) == up_is_good else "worse"


def national_rank(values: Mapping[str, float | None], code: str, polarity: str) -> int | None:
    """`code`'s rank among the authorities in `values` (None values are not ranked): 1 is
    the best by the polarity, ties share the lowest rank. None without a polarity."""
    if polarity not in ("High", "Low"):
        return None
    mine = values.get(code)
    if mine is None:
        return None
    others = [v for v in values.values() if v is not None]
    better = sum(1 for v in others if (v > mine if polarity == "High" else v < mine))
    return better + 1


def quartiles(values: Sequence[float]) -> tuple[float, float, float, float, float]:
    """Minimum, lower quartile, median, upper quartile and maximum (R's type 7)."""
    if not values:
        raise ValueError("no values to take quartiles of")
    q = np.quantile(np.asarray(values, dtype=float), [0.0, 0.25, 0.5, 0.75, 1.0])
    return (float(q[0]), float(q[1]), float(q[2]), float(q[3]), float(q[4]))


def quartile_band(
    value: float | None, bounds: tuple[float, float, float, float, float], polarity: str
) -> str | None:
    """A (best quarter) to D (worst) by LAIT's rule; None without a value or polarity."""
    if value is None or polarity not in ("High", "Low"):
        return None
    lo, q1, q2, q3, hi = bounds
    if value < lo or value > hi:
        raise ValueError(f"{value} is outside the range the quartiles were taken over")
    if value <= q1:
        quarter = 0
    elif value <= q2:
        quarter = 1
    elif value <= q3:
        quarter = 2
    else:
        quarter = 3
    return BANDS[quarter] if polarity == "Low" else BANDS[3 - quarter]


def neighbour_average(
    values: Mapping[str, float | None], neighbours: Sequence[str]
) -> tuple[float | None, int]:
    """The mean of the neighbours that have a value, and how many that is."""
    found = [values[c] for c in neighbours if values.get(c) is not None]
    if not found:
        return None, 0
    return float(np.mean(np.asarray(found, dtype=float))), len(found)


@dataclass(frozen=True)
class Standing:
    """Where one authority stands in one period."""

    rank: int | None
    of: int  # authorities ranked (with a value)
    band: str | None
    bounds: tuple[float, float, float, float, float] | None


def standing(values: Mapping[str, float | None], code: str, polarity: str) -> Standing:
    """Rank, number ranked, quartile band and the quartiles, for `code` among `values`
    (every local authority's value in one period, `code`'s included)."""
    present = [v for v in values.values() if v is not None]
    bounds = quartiles(present) if present else None
    mine = values.get(code)
    return Standing(
        rank=national_rank(values, code, polarity),
        of=len(present),
        band=quartile_band(mine, bounds, polarity) if bounds else None,
        bounds=bounds,
    )
