"""One protected table, one document: what `portal table --format json` prints and what the
release service's `/v1/tables/{measure}` returns.

Both call `table_document`, so a table read through the API is byte for byte the table an
administrator gets on the server, and a client (the Streamlit portal, Power BI, R) can cite
and reproduce it: the document names the release, the data date, the disclosure-control
policy and the perturbation table's fingerprint, and `query` holds the parameters that
ask for exactly this table again (with `release` pinned).

Every text cell passes `safe_frame` (no cell can start a spreadsheet formula). Typed value
columns (`count_value`, `rate_value`, ...) carry the published numbers, null where a
symbol is shown, so a client never has to parse "c" or "z".
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import polars as pl

from anonymise.release import ProtectedTable
from anonymise.safe_output import safe_frame

DOCUMENT_VERSION = 1
_TYPES = {pl.String: "string", pl.Int64: "integer", pl.Float64: "number", pl.Boolean: "boolean"}


def _column_type(dtype: pl.DataType) -> str:
    for known, name in _TYPES.items():
        if dtype == known:
            return name
    return "string"


def table_query(table: ProtectedTable) -> dict[str, Any]:
    """The parameters that ask for exactly this table again (the release pinned)."""
    return {
        "measure": table.measure,
        "by": list(table.by),
        "where": {k: list(v) for k, v in table.where},
        "margins": table.margins,
        "release": table.release_id,
    }


def table_path(table: ProtectedTable) -> str:
    """`/v1/tables/...` for this table, with the release pinned: a permalink."""
    params: list[tuple[str, str]] = []
    if table.by:
        params.append(("by", ",".join(table.by)))
    params.extend(("where", f"{k}:{v}") for k, values in table.where for v in values)
    if table.margins:
        params.append(("margins", "true"))
    if table.release_id:
        params.append(("release", table.release_id))
    query = urlencode(params)
    return f"/v1/tables/{table.measure}" + (f"?{query}" if query else "")


def _header(table: ProtectedTable, frame: pl.DataFrame) -> dict[str, Any]:
    """Everything in the document but the rows (which come last)."""
    value_columns = set(table.value_columns)
    columns = [
        {
            "name": name,
            "type": _column_type(dtype),
            "role": "value" if name in value_columns else "dimension",
        }
        for name, dtype in frame.schema.items()
    ]
    return {
        "document_version": DOCUMENT_VERSION,
        "measure": table.measure,
        "title": table.title,
        "unit": table.unit,
        "by": list(table.by),
        "where": {k: list(v) for k, v in table.where},
        "margins": table.margins,
        "is_rate": table.is_rate,
        "rate_per": table.rate_per,
        "release_id": table.release_id,
        "data_as_at": table.data_as_at.isoformat() if table.data_as_at else None,
        "policy": table.policy_id,
        "ptable_id": table.ptable_id,
        "query": table_query(table),
        "permalink": table_path(table),
        # When the measure's data begin and end, which periods were not yet complete at
        # the data date, how many shares were capped at 100%, and whether the release is a
        # revision: what a reader needs to say only what the numbers support.
        "covers": [d.isoformat() for d in table.covers] if table.covers else None,
        "partial_periods": {k: list(v) for k, v in table.partial_periods.items()},
        "capped": table.capped,
        "revision": table.revision,
        "revised_through": table.revised_through.isoformat() if table.revised_through else None,
        "columns": columns,
        "footnotes": list(table.footnotes),
    }


def table_document(table: ProtectedTable) -> dict[str, Any]:
    """The JSON document of a protected table (plain Python values, ready for json.dumps)."""
    frame = safe_frame(table.data)
    return _header(table, frame) | {"rows": frame.to_dicts()}


def table_document_json(table: ProtectedTable) -> bytes:
    """`table_document` as JSON bytes, the rows written by polars (several times faster than
    building Python dicts; tests/test_service_api.py checks the two documents are equal)."""
    frame = safe_frame(table.data)
    head = json.dumps(_header(table, frame), ensure_ascii=False)
    return (head[:-1] + ',"rows":' + frame.write_json() + "}").encode("utf-8")


def table_csv(table: ProtectedTable) -> str:
    """The table as published (labels, numbers as text, symbols), formula-safe: the CSV of
    `portal table --format csv` and of `/v1/tables/...?format=csv`."""
    shown = table.data.select(c for c in table.data.columns if not c.endswith("_value"))
    return safe_frame(shown).write_csv()
