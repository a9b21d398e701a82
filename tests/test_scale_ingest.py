"""Ingest at scale: Python standardisation runs once per distinct value, with the same
result as once per row (docs/scale.md)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from pipelines.contracts import get_contract
from pipelines.identifiers import is_valid_nhs_number
from pipelines.ingest import name_expr, per_distinct, standardise_name, validate


def test_per_distinct_matches_row_by_row_and_calls_once_per_value():
    values = ["Zoë", "zoë", None, "O'Brien ", "Zoë", "Łukasz", None, "O'Brien ", "", "Zoë"]
    calls: list[str] = []

    def counted(v: str) -> str | None:
        calls.append(v)
        return standardise_name(v)

    s = pl.Series("n", values, dtype=pl.Utf8)
    got = per_distinct(counted, pl.Utf8())(s)
    assert got.to_list() == [None if v is None else standardise_name(v) for v in values]
    assert sorted(calls) == sorted({v for v in values if v is not None})
    frame = pl.DataFrame({"forename": values})
    assert frame.select(name_expr("forename"))["forename"].to_list() == got.to_list()


def test_checksums_once_per_distinct_value_keep_nulls_null():
    values = ["9434765919", None, "9434765918", "9434765919", "abc"]
    got = per_distinct(is_valid_nhs_number, pl.Boolean())(pl.Series(values, dtype=pl.Utf8))
    assert got.to_list() == [True, None, False, True, False]


def test_repeated_ids_and_rows_after_the_first_are_quarantined():
    contract = get_contract("health")
    row = {c.name: None for c in contract.every_column}
    first = row | {
        contract.record_id: "H1",
        "nhs_number": "9434765919",
        "service": "CAMHS",
        "contact_date": "2025-01-02",
    }
    rows = [
        first,
        first | {contract.record_id: "H2"},  # the same row under a new id
        first | {"contact_date": "2025-02-03"},  # the same id, another row
        first | {contract.record_id: "H3", "contact_date": "2025-03-04"},
        first | {contract.record_id: "H2", "contact_date": "2025-04-05"},
    ]
    raw = pl.DataFrame(rows, schema={c.name: pl.Utf8 for c in contract.every_column})
    r = validate(raw, contract, file=Path("health.csv"), as_at=date(2026, 3, 31))
    assert r.accepted["record_id"].to_list() == ["H1", "H3"]
    assert dict(zip(r.quarantined["line"], r.quarantined["reasons"], strict=True)) == {
        3: "duplicate_row",
        4: "duplicate_record_id",
        6: "duplicate_record_id",
    }
