"""Helpers for tests that need a synthetic county (generated once per session)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import polars as pl

from pipelines.contracts import SourceContract


def read_extract(folder: Path, name: str) -> pl.DataFrame:
    return pl.read_csv(folder / f"{name}.csv", infer_schema=False)


def parse_date(value: str | None, contract: SourceContract) -> date | None:
    if value is None or value == "":
        return None
    for fmt in contract.date_formats:
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"{value!r} matches none of {contract.date_formats}")
