"""Check a folder of extracts before a run: every file-level problem and every
quarantined row, gathered in one report; nothing is written (`portal sources check`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from pipelines.ingest import IngestResult, gather_sources
from pipelines.mapping import Mapping
from pipelines.returns.rules import describe


@dataclass(frozen=True)
class SourcesReport:
    file_problems: list[str]
    results: dict[str, IngestResult]

    @property
    def rows_in(self) -> int:
        return sum(r.rows_in for r in self.results.values())

    @property
    def quarantined(self) -> int:
        return sum(r.quarantined.height for r in self.results.values())

    def row_problems(self) -> pl.DataFrame:
        """file, line, source, reason: one row per problem of each quarantined row."""
        frames = [
            r.quarantined.select(
                "file", "line", "source", pl.col("reasons").str.split(";").alias("reason")
            ).explode("reason")
            for r in self.results.values()
            if r.quarantined.height
        ]
        if not frames:
            return pl.DataFrame(
                schema={"file": pl.Utf8, "line": pl.Int64, "source": pl.Utf8, "reason": pl.Utf8}
            )
        return pl.concat(frames).sort("file", "line")

    def lines(self, *, limit: int = 20) -> list[str]:
        out: list[str] = []
        for name, r in sorted(self.results.items()):
            out.append(
                f"{name}: {r.rows_in:,} rows, {r.accepted.height:,} accepted, "
                f"{r.quarantined.height:,} quarantined"
            )
            shown = r.quarantined.head(limit)
            for row in shown.select("file", "line", "reasons").iter_rows():
                reasons = "; ".join(describe(x) for x in row[2].split(";"))
                out.append(f"  {row[0]}:{row[1]}: {reasons}")
            if r.quarantined.height > limit:
                out.append(f"  ... and {r.quarantined.height - limit:,} more rows")
        if self.file_problems:
            out.append(f"{len(self.file_problems)} file-level problem(s): a run would stop")
            out += [f"  - {p}" for p in self.file_problems]
        out.append(
            f"checked {len(self.results)} source(s): {self.rows_in:,} rows, "
            f"{self.quarantined:,} quarantined, {len(self.file_problems)} file-level problem(s)"
        )
        return out


def check_sources(raw_dir: Path, *, as_at: date, mapping: Mapping | None = None) -> SourcesReport:
    results, problems = gather_sources(raw_dir, as_at=as_at, mapping=mapping)
    return SourcesReport(problems, results)
