"""Output checking for researchers' own tables, as trusted research environments do.

A researcher who made a table from an extract brings it here before it leaves.
Each row (cell) is checked against the policy's rules (ACRO's defaults):
- counts: every count column is checked; a blank, negative or fractional count fails;
- threshold: a cell built from fewer than `threshold` records (and more than 0) fails;
- dominance (n, k): for a magnitude table, the largest `n` contributions must not
  be more than k% of the cell total (n=2, k=90%);
- p% rule: the total less the two largest contributions must be at least p% of
  the largest, or the second-largest contributor could estimate the largest to
  within p% (p=10%).
Magnitude checks need the cell's largest and second-largest contributions,
which the researcher adds as columns (as ACRO computes them from the microdata).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from anonymise.policy import Policy


@dataclass(frozen=True)
class OutputCheckReport:
    cells: pl.DataFrame  # the table plus `checks_failed`
    threshold: int
    dominance: tuple[int, float]
    p_ratio: float

    @property
    def failures(self) -> pl.DataFrame:
        return self.cells.filter(pl.col("checks_failed") != "")

    @property
    def passed(self) -> bool:
        return self.failures.height == 0

    def summary_lines(self) -> list[str]:
        n_fail = self.failures.height
        lines = [
            f"{self.cells.height} cells checked: threshold {self.threshold}, dominance "
            f"n={self.dominance[0]} k={self.dominance[1]:g}%, p-ratio {self.p_ratio:g}%",
        ]
        if n_fail == 0:
            lines.append("PASS: every cell may leave.")
            return lines
        lines.append(f"FAIL: {n_fail} cell(s) may not leave as they are:")
        for row in self.failures.iter_rows(named=True):
            cell = ", ".join(
                f"{k}={v}" for k, v in row.items() if k not in ("checks_failed", "_row")
            )
            lines.append(f"  row {row['_row'] + 2}: {row['checks_failed']} ({cell})")
        return lines


def _count_problems(name: str, t: int) -> list[Any]:
    """Per cell: one failure text (or null) per rule, for one count column."""
    raw = pl.col(name)
    text = raw.cast(pl.String).str.strip_chars()
    number = text.cast(pl.Float64, strict=False)
    whole = number.is_not_null() & (number == number.round(0))
    n = pl.when(whole).then(number).otherwise(None)
    return [
        pl.when(raw.is_null() | (text == "")).then(pl.lit(f"{name} blank")),
        pl.when(text.is_not_null() & (text != "") & ~whole).then(
            pl.lit(f"{name} not a whole number")
        ),
        pl.when(n < 0).then(pl.lit(f"{name} negative")),
        pl.when((n > 0) & (n < t)).then(pl.lit(f"threshold ({name}<{t})")),
    ]


def check_output(
    df: pl.DataFrame,
    *,
    policy: Policy,
    count: str | Sequence[str] = "n",
    total: str | None = None,
    top1: str | None = None,
    top2: str | None = None,
) -> OutputCheckReport:
    """Check every cell of a researcher's table. Every count column is checked: a blank,
    negative or fractional count fails (a count cannot be any of those, so the table is not
    what it claims), and so does a count from 1 to threshold-1."""
    counts = [count] if isinstance(count, str) else list(count)
    problems = [
        f"no column {c!r}"
        for c in (*counts, total, top1, top2)
        if c is not None and c not in df.columns
    ]
    if not counts:
        problems.append("name at least one count column")
    if (total is None) != (top1 is None) or (top2 is not None and top1 is None):
        problems.append("a magnitude check needs --total and --top1 (and --top2 for the p% rule)")
    if problems:
        raise ValueError("; ".join(problems))
    oc = policy.output_check
    t = policy.threshold
    checks: list[Any] = [c for name in counts for c in _count_problems(name, t)]
    if total is not None and top1 is not None:
        tot = pl.col(total).cast(pl.Float64, strict=False)
        largest = pl.col(top1).cast(pl.Float64, strict=False)
        second = pl.col(top2).cast(pl.Float64, strict=False) if top2 else pl.lit(0.0)
        top_n = largest + (second if oc.dominance_n >= 2 else 0)
        checks.append(pl.when(tot.is_null() | largest.is_null()).then(pl.lit("magnitude missing")))
        checks.append(
            pl.when((tot > 0) & (top_n > tot * oc.dominance_k / 100)).then(
                pl.lit(f"dominance ({oc.dominance_n},{oc.dominance_k:g}%)")
            )
        )
        if top2 is not None:
            checks.append(
                pl.when((tot > 0) & ((tot - largest - second) < largest * oc.p_ratio / 100)).then(
                    pl.lit(f"p-ratio ({oc.p_ratio:g}%)")
                )
            )
    failed = pl.concat_str([c.otherwise(None) for c in checks], separator="; ", ignore_nulls=True)
    cells = df.with_row_index("_row").with_columns(failed.fill_null("").alias("checks_failed"))
    return OutputCheckReport(cells, t, (oc.dominance_n, oc.dominance_k), oc.p_ratio)
