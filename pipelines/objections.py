"""Objections are never lost: every register row is accounted for before anything is published.

The register is validated (`ingest.validate_objections`: no row is quarantined while one
identifier is usable), then each row is matched to persons on every identifier it carries
(`link.match_objections`). This module turns that into a report and into the flags the
person index carries:

- every row ends as `matched` (one person), `unmatched` (nobody), `ambiguous` (several
  people) or `unusable` (no identifier at all: an error in the register);
- a run refuses to publish while any row is unusable, or unmatched or ambiguous without
  an acknowledgement. An acknowledgement names the register reference and the problem,
  is kept in the store and audited, and holds for later runs while the problem stays the
  same (an acknowledged ambiguous objection is applied to every person it matched:
  applying it too widely is safe, too narrowly is not);
- `scope` decides what the objection covers: `ALL_RESEARCH` keeps the person out of
  research extracts, `PLANNING_AND_RESEARCH` out of research extracts and out of every
  statistic; an unreadable scope is read as the wider one;
- an objection applies from the day it was received, whatever the data as-at date: every
  run uses every objection in the register.

Reports name the file, the line and the register reference, never a name or a number.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import polars as pl
import sqlalchemy as sa

from pipelines.ingest import IngestResult
from pipelines.store import Store, objection_acknowledgements
from registry.codes import SCOPE_PLANNING_AND_RESEARCH

Acknowledge = Collection[str] | Literal["all"]

MATCHED, UNMATCHED, AMBIGUOUS, UNUSABLE = "matched", "unmatched", "ambiguous", "unusable"
NEEDS_ACK = (UNMATCHED, AMBIGUOUS)


class ObjectionError(Exception):
    """Objections that cannot be applied: the run stops and nothing is published."""

    def __init__(self, report: ObjectionReport) -> None:
        self.report = report
        super().__init__(report.problem_text())


@dataclass(frozen=True)
class ObjectionReport:
    file: Path | None
    # One row per register row: reference, line, status, matched_on (list), persons (int),
    # scope, date_received, warnings (list), acknowledged (bool).
    rows: pl.DataFrame
    # Person keys and what their objection covers: person_key, research (always True),
    # statistics (bool), statistics_from (date received, of a statistics-scope objection).
    applied: pl.DataFrame = field(repr=False)

    @property
    def counts(self) -> dict[str, int]:
        r = self.rows
        status = dict(r["status"].value_counts().iter_rows())
        return {
            "received": r.height,
            "matched": int(status.get(MATCHED, 0)),
            "unmatched": int(status.get(UNMATCHED, 0)),
            "ambiguous": int(status.get(AMBIGUOUS, 0)),
            "unusable": int(status.get(UNUSABLE, 0)),
            "acknowledged": int(r["acknowledged"].sum()),
            "with_warnings": int((r["warnings"].list.len() > 0).sum()),
            "people_excluded_from_research": self.applied.height,
            "people_excluded_from_statistics": int(self.applied["statistics"].sum()),
        }

    def problems(self) -> pl.DataFrame:
        """Rows that stop publication: unusable, and unmatched or ambiguous unacknowledged."""
        return self.rows.filter(
            (pl.col("status") == UNUSABLE)
            | (pl.col("status").is_in(NEEDS_ACK) & ~pl.col("acknowledged"))
        )

    @property
    def blocking(self) -> bool:
        return self.problems().height > 0

    def problem_text(self) -> str:
        bad = self.problems()
        where = str(self.file) if self.file else "objections register"
        lines = []
        for row in bad.iter_rows(named=True):
            lines.append(f"  - {where}, line {row['line']} ({row['reference']}): {describe(row)}")
        return (
            f"{bad.height} objection(s) cannot be applied; nothing was published:\n"
            + "\n".join(lines)
            + "\nFix the register, or acknowledge unmatched and ambiguous objections with "
            "--accept-unmatched-objections REF[,REF...] (audited)."
        )

    def warning_counts(self) -> dict[str, int]:
        codes = self.rows.select(pl.col("warnings").explode().drop_nulls())["warnings"]
        return dict(sorted(codes.value_counts().iter_rows()))


def describe(row: Mapping[str, object]) -> str:
    status = row["status"]
    if status == UNUSABLE:
        return "no usable identifier (" + ", ".join(row["warnings"] or ["all blank"]) + ")"  # type: ignore[arg-type]
    if status == UNMATCHED:
        return "matches nobody in the data"
    if status == AMBIGUOUS:
        on = ", ".join(row["matched_on"])  # type: ignore[arg-type]
        return f"matches {row['persons']} different people (on {on})"
    return "matched"


def assess(
    ingested: IngestResult,
    matches: pl.DataFrame,
    acknowledged: Iterable[tuple[str, str]] = (),
) -> ObjectionReport:
    """Pure: the validated register and its matches in, the report and the flags out.

    acknowledged: (reference, problem) pairs already acknowledged (problem: `unmatched`
    or `ambiguous`)."""
    acks = pl.DataFrame(
        [{"reference": r, "status": p} for r, p in acknowledged],
        schema={"reference": pl.Utf8, "status": pl.Utf8},
    ).with_columns(pl.lit(True).alias("acknowledged"))
    ok = ingested.accepted.join(matches, on="record_id", how="left").select(
        pl.col("record_id").alias("reference"),
        "line",
        pl.when(pl.col("person_keys").list.len() == 1)
        .then(pl.lit(MATCHED))
        .when(pl.col("person_keys").list.len() > 1)
        .then(pl.lit(AMBIGUOUS))
        .otherwise(pl.lit(UNMATCHED))
        .alias("status"),
        pl.col("matched_on").fill_null(pl.lit([], pl.List(pl.Utf8))),
        pl.col("person_keys").fill_null(pl.lit([], pl.List(pl.Int64))),
        "scope",
        "date_received",
        pl.col("dq_flags").alias("warnings"),
    )
    q = ingested.quarantined
    unusable = q.select(
        pl.col("objection_id").fill_null(pl.format("line-{}", "line")).alias("reference"),
        "line",
        pl.lit(UNUSABLE).alias("status"),
        pl.lit([], pl.List(pl.Utf8)).alias("matched_on"),
        pl.lit([], pl.List(pl.Int64)).alias("person_keys"),
        pl.lit(None, pl.Utf8).alias("scope"),
        pl.lit(None, pl.Date).alias("date_received"),
        pl.col("reasons")
        .str.split(";")
        .list.eval(pl.element().filter(pl.element() != "no_usable_identifier"))
        .alias("warnings"),
    )
    rows = (
        pl.concat([ok, unusable.cast(ok.schema)])
        .join(acks, on=["reference", "status"], how="left")
        .with_columns(
            pl.col("acknowledged").fill_null(False),
            pl.col("person_keys").list.len().alias("persons"),
        )
        .sort("line")
    )
    applied = (
        rows.filter(pl.col("status").is_in([MATCHED, AMBIGUOUS]))
        .explode("person_keys")
        .group_by(pl.col("person_keys").alias("person_key"))
        .agg(
            (pl.col("scope") == SCOPE_PLANNING_AND_RESEARCH).any().alias("statistics"),
            pl.col("date_received")
            .filter(pl.col("scope") == SCOPE_PLANNING_AND_RESEARCH)
            .min()
            .alias("statistics_from"),
        )
        .sort("person_key")
    )
    # Ambiguous objections are applied only once acknowledged (until then nothing is
    # published anyway); keep them in `applied` so that a report shows the widest effect.
    return ObjectionReport(file=ingested.file, rows=rows.drop("person_keys"), applied=applied)


# --- acknowledgements --------------------------------------------------------------------------


def load_acknowledgements(store: Store | None) -> set[tuple[str, str]]:
    """(reference, problem) pairs acknowledged in earlier runs."""
    if store is None:
        return set()
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(objection_acknowledgements.c.reference, objection_acknowledgements.c.problem)
        ).all()
    return {(r[0], r[1]) for r in rows}


def to_acknowledge(report: ObjectionReport, accept: Acknowledge) -> list[tuple[str, str]]:
    """The unacknowledged unmatched or ambiguous rows that `accept` names ("all": every
    one in this report). Unusable rows can never be acknowledged: fix the register."""
    pending = report.rows.filter(pl.col("status").is_in(NEEDS_ACK) & ~pl.col("acknowledged"))
    if accept != "all":
        pending = pending.filter(pl.col("reference").is_in(list(accept)))
    return [(r, p) for r, p in pending.select("reference", "status").iter_rows()]


def acknowledge(
    store: Store | None, pairs: list[tuple[str, str]], *, actor: str, run_id: str
) -> None:
    """Keep acknowledgements for later runs and audit them (references and problems only)."""
    if not pairs or store is None:
        return
    now = datetime.now(UTC)
    with store.engine.begin() as conn:
        for reference, problem in pairs:
            conn.execute(
                objection_acknowledgements.delete().where(
                    objection_acknowledgements.c.reference == reference,
                    objection_acknowledgements.c.problem == problem,
                )
            )
            conn.execute(
                objection_acknowledgements.insert().values(
                    reference=reference, problem=problem, acknowledged_at=now, acknowledged_by=actor
                )
            )
    store.audit(
        actor,
        "objections_acknowledged",
        {
            "run_id": run_id,
            "count": len(pairs),
            "unmatched": sorted(r for r, p in pairs if p == UNMATCHED),
            "ambiguous": sorted(r for r, p in pairs if p == AMBIGUOUS),
        },
    )
