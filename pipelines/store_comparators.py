"""Comparator statistics in the store: published national figures (England, regions, local
authorities) loaded from EES data files with `portal comparators load`.

Defined on the store's metadata (imported by `pipelines/store/__init__.py`), so
`Store()` creates the tables with the rest of the schema. These are published statistics,
not records about people: they are stored as loaded (value or GSS symbol), one row per
indicator per period, geography and filter combination. The release service reads them
(its database role may SELECT every table); only `portal comparators load` writes them.

A data set is named by its file's stem ("children_in_need_2024"): loading a file with the
same name again replaces that data set whole, in one transaction, and is audited.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl
import sqlalchemy as sa

from pipelines.ees import (
    GEOGRAPHY,
    LOCAL_AUTHORITY,
    NATIONAL,
    REGIONAL,
    EesFile,
    financial_year_of,
)
from pipelines.store import Store, metadata
from pipelines.store.schema import _JSON

# The levels comparisons use; rows at other levels (wards, constituencies, schools) are
# not kept.
KEPT_LEVELS = (NATIONAL, REGIONAL, LOCAL_AUTHORITY)

comparator_datasets = sa.Table(
    "comparator_datasets",
    metadata,
    sa.Column("dataset", sa.String(200), primary_key=True),
    sa.Column("file_name", sa.String(255), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("loaded_by", sa.String(128), nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    # The meta file's rows (col_name, col_type, label, indicator_unit, indicator_dp, ...).
    sa.Column("columns", _JSON, nullable=False),
    sa.Column("footnotes", _JSON, nullable=False),
)

comparator_values = sa.Table(
    "comparator_values",
    metadata,
    sa.Column(
        "dataset",
        sa.String(200),
        sa.ForeignKey("comparator_datasets.dataset", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("indicator", sa.String(200), nullable=False),
    sa.Column("time_period", sa.String(16), nullable=False),
    sa.Column("time_identifier", sa.String(64), nullable=False),
    # The portal's financial-year label where the period is one ("2024/25"), else null.
    sa.Column("financial_year", sa.String(16), nullable=True),
    sa.Column("geographic_level", sa.String(64), nullable=False),
    sa.Column("area_code", sa.String(64), nullable=False),
    sa.Column("area_name", sa.String(255), nullable=False),
    sa.Column("region_code", sa.String(64), nullable=True),
    # Filter values as canonical JSON ({"age_group": "Total"}), "{}" when the file has none.
    sa.Column("filters", sa.Text, nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("symbol", sa.String(16), nullable=True),  # the GSS symbol where no value
    sa.Index("ix_comparator_values_indicator", "indicator", "dataset"),
)


@dataclass(frozen=True)
class Dataset:
    dataset: str
    file_name: str
    sha256: str
    loaded_at: datetime
    loaded_by: str
    rows: int
    columns: list[dict[str, str]]
    footnotes: list[str]

    def column(self, name: str) -> dict[str, str] | None:
        return next((c for c in self.columns if c.get("col_name") == name), None)

    @property
    def indicators(self) -> list[str]:
        return [c["col_name"] for c in self.columns if c.get("col_type") == "Indicator"]

    @property
    def filters(self) -> list[str]:
        return [c["col_name"] for c in self.columns if c.get("col_type") == "Filter"]

    def public(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "file_name": self.file_name,
            "sha256": self.sha256,
            "loaded_at": self.loaded_at.isoformat(),
            "loaded_by": self.loaded_by,
            "rows": self.rows,
            "indicators": self.indicators,
            "filters": self.filters,
            "footnotes": self.footnotes,
        }


def canonical_filters(values: dict[str, str]) -> str:
    return json.dumps(values, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def long_values(f: EesFile) -> pl.DataFrame:
    """An EES file's indicator cells as one row each (at the kept levels), with the area's
    code and name at its level and, where its period is a financial year, its label."""
    d = f.data.filter(pl.col("geographic_level").is_in(KEPT_LEVELS))
    for col in ("region_code", "new_la_code", "la_name", "region_name"):
        if col not in d.columns:
            d = d.with_columns(pl.lit("").alias(col))
    code = pl.col("geographic_level").replace_strict(
        {lvl: GEOGRAPHY[lvl][0] for lvl in KEPT_LEVELS}, return_dtype=pl.String
    )
    area_code = (
        pl.when(code == "country_code")
        .then(pl.col("country_code"))
        .when(code == "region_code")
        .then(pl.col("region_code"))
        .otherwise(pl.col("new_la_code"))
    )
    area_name = (
        pl.when(code == "country_code")
        .then(pl.col("country_name"))
        .when(code == "region_code")
        .then(pl.col("region_name"))
        .otherwise(pl.col("la_name"))
    )
    filters = f.filters
    filter_json = (
        pl.struct(filters).map_elements(canonical_filters, return_dtype=pl.String)
        if filters
        else pl.lit("{}")
    )
    base = d.select(
        pl.col("time_period").str.strip_chars(),
        "time_identifier",
        "geographic_level",
        area_code.alias("area_code"),
        area_name.alias("area_name"),
        pl.when(pl.col("region_code") == "")
        .then(None)
        .otherwise(pl.col("region_code"))
        .alias("region_code"),
        filter_json.alias("filters"),
        *f.indicators,
    )
    long = base.unpivot(
        index=[c for c in base.columns if c not in f.indicators],
        on=f.indicators,
        variable_name="indicator",
        value_name="cell",
    )
    cell = pl.col("cell").str.strip_chars()
    value = cell.cast(pl.Float64, strict=False)
    fy = pl.struct("time_identifier", "time_period").map_elements(
        lambda s: financial_year_of(s["time_identifier"], s["time_period"]), return_dtype=pl.String
    )
    return long.select(
        "indicator",
        "time_period",
        "time_identifier",
        fy.alias("financial_year"),
        "geographic_level",
        "area_code",
        "area_name",
        "region_code",
        "filters",
        value.alias("value"),
        pl.when(value.is_null()).then(cell).otherwise(None).alias("symbol"),
    )


def replace_datasets(
    store: Store, files: Sequence[tuple[EesFile, bytes, list[str]]], *, actor: str
) -> list[Dataset]:
    """Load validated files (each with its raw bytes, for the checksum, and its footnotes),
    replacing data sets of the same names, all in one transaction; audited."""
    now = datetime.now(UTC)
    loaded: list[Dataset] = []
    frames = []
    for f, raw, notes in files:
        values = long_values(f)
        frames.append((f, values))
        loaded.append(
            Dataset(
                dataset=f.stem,
                file_name=f.name,
                sha256=hashlib.sha256(raw).hexdigest(),
                loaded_at=now,
                loaded_by=actor,
                rows=values.height,
                columns=f.meta.to_dicts(),
                footnotes=list(notes),
            )
        )
    with store.engine.begin() as conn:
        for ds, (_f, values) in zip(loaded, frames, strict=True):
            conn.execute(
                comparator_values.delete().where(comparator_values.c.dataset == ds.dataset)
            )
            conn.execute(
                comparator_datasets.delete().where(comparator_datasets.c.dataset == ds.dataset)
            )
            conn.execute(
                comparator_datasets.insert().values(
                    dataset=ds.dataset,
                    file_name=ds.file_name,
                    sha256=ds.sha256,
                    loaded_at=ds.loaded_at,
                    loaded_by=ds.loaded_by,
                    rows=ds.rows,
                    columns=ds.columns,
                    footnotes=ds.footnotes,
                )
            )
            rows = values.with_columns(pl.lit(ds.dataset).alias("dataset")).to_dicts()
            for start in range(0, len(rows), 5000):
                conn.execute(comparator_values.insert(), rows[start : start + 5000])
    for ds in loaded:
        store.audit(
            actor,
            "comparators_loaded",
            {"dataset": ds.dataset, "file": ds.file_name, "sha256": ds.sha256, "rows": ds.rows},
        )
    return loaded


def _dataset(row: Any) -> Dataset:
    loaded = row["loaded_at"]
    if loaded.tzinfo is None:  # SQLite gives naive datetimes back
        loaded = loaded.replace(tzinfo=UTC)
    columns = row["columns"]
    footnotes = row["footnotes"]
    return Dataset(
        dataset=row["dataset"],
        file_name=row["file_name"],
        sha256=row["sha256"],
        loaded_at=loaded,
        loaded_by=row["loaded_by"],
        rows=row["rows"],
        columns=json.loads(columns) if isinstance(columns, str) else list(columns),
        footnotes=json.loads(footnotes) if isinstance(footnotes, str) else list(footnotes),
    )


def list_datasets(store: Store) -> list[Dataset]:
    """Every loaded data set, newest first."""
    q = sa.select(comparator_datasets).order_by(comparator_datasets.c.loaded_at.desc())
    with store.engine.connect() as conn:
        return [_dataset(r) for r in conn.execute(q).mappings().all()]


VALUE_SCHEMA = {
    "dataset": pl.String,
    "indicator": pl.String,
    "time_period": pl.String,
    "time_identifier": pl.String,
    "financial_year": pl.String,
    "geographic_level": pl.String,
    "area_code": pl.String,
    "area_name": pl.String,
    "region_code": pl.String,
    "filters": pl.String,
    "value": pl.Float64,
    "symbol": pl.String,
}


def read_values(store: Store, indicator: str, dataset: str) -> pl.DataFrame:
    """Every stored cell of one indicator of one data set."""
    q = sa.select(*(comparator_values.c[c] for c in VALUE_SCHEMA)).where(
        comparator_values.c.indicator == indicator, comparator_values.c.dataset == dataset
    )
    with store.engine.connect() as conn:
        rows = conn.execute(q).mappings().all()
    return pl.DataFrame([dict(r) for r in rows], schema=VALUE_SCHEMA)
