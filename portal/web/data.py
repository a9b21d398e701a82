"""The portal's one door to data: protected tables from the release layer, cached.

Every number a page shows comes from `anonymise.release.tabulate` through
`protected_table`; nothing here returns a true count, a cube or a record. This is
also the only portal module that may open the store or touch the disclosure-control
secret (`_ptable`, the vetted helper), which tests/test_app_architecture.py checks.

Caching: Streamlit's data cache is shared by every session in the process, so each
cached function takes the user's `role_key` as its first argument: two users share
a cached table only if they hold exactly the same roles. Tables are also keyed by
store and release id; a release never changes once written, so entries never go
stale. The latest-release lookup is cached for a minute, so a new release shows up
without a restart.

The admin page's pipeline facts come from two files the pipeline writes for that
purpose, both free of identifiers: `run.json` (counts, timings, linkage quality)
and `zone_a/quarantine_report.csv` (rows quarantined, by source and reason).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import streamlit as st

from anonymise import cellkey
from anonymise.catalogue import CATALOGUE, VarRole
from anonymise.extract import (
    ExtractFiles,
    ExtractRefused,
    ExtractRequest,
    extract_from_work_dir,
    load_extract_policy,
)
from anonymise.policy import Policy, default_policy
from anonymise.release import NoReleaseError, ProtectedTable, QueryError, tabulate
from pipelines.store import DIMENSIONS, MeasureMeta, Store, StoreError, default_store_url
from portal.web.config import DEMO_SDC_SECRET_FILE

__all__ = [
    "DataUnavailableError",
    "ExtractFiles",
    "ExtractRefused",
    "ExtractRequest",
    "MeasureMeta",
    "NoReleaseError",
    "Policy",
    "ProtectedTable",
    "QueryError",
    "ReleaseRef",
    "StoreError",
    "Where",
    "audit_entries",
    "build_research_extract",
    "extract_policy",
    "research_variables",
    "dimension_title",
    "latest_release",
    "normalise_where",
    "policy",
    "previous_release",
    "protected_table",
    "quarantine_counts",
    "record_query",
    "release_list",
    "release_measures",
    "run_summary",
]

Where = tuple[tuple[str, tuple[str, ...]], ...]
ADMIN = "admin"
_DIMENSION_TITLES = {d.name: d.title for d in DIMENSIONS}


class DataUnavailableError(RuntimeError):
    """The portal cannot serve numbers (no release yet, or no disclosure-control secret)."""


@dataclass(frozen=True)
class ReleaseRef:
    release_id: str
    data_as_at: date
    created_at: datetime
    policy_id: str


def dimension_title(name: str) -> str:
    return _DIMENSION_TITLES.get(name, name.replace("_", " ").capitalize())


def policy() -> Policy:
    return default_policy()


@st.cache_resource(show_spinner=False)
def _store(url: str | None) -> Store:
    """One connection pool per store URL for the whole process (a resource, not data)."""
    return Store(url or default_store_url())


def _ptable(demo: bool) -> cellkey.PerturbationTable:
    """The vetted helper: the perturbation table from the disclosure-control secret.

    In demo mode (and only then) the demo secret written by `portal run --demo` is
    used when the environment names none. Never generates a secret."""
    pol = default_policy()
    has_env = bool(os.environ.get(cellkey.SECRET_ENV) or os.environ.get(cellkey.SECRET_FILE_ENV))
    try:
        if demo and not has_env:
            secret = cellkey.load_sdc_secret(key_file=DEMO_SDC_SECRET_FILE)
        else:
            secret = cellkey.load_sdc_secret()
    except cellkey.SecretNotConfiguredError as exc:
        raise DataUnavailableError(f"no disclosure-control secret is configured: {exc}") from None
    return cellkey.ptable_for(pol.max_noise, pol.variance, secret)


def _roles(role_key: str) -> set[str]:
    return set(role_key.split("+"))


def _require_admin(role_key: str) -> None:
    if ADMIN not in _roles(role_key):
        raise PermissionError("only administrators may read pipeline and audit records")


# --- releases --------------------------------------------------------------------------


def _ref(info: Any) -> ReleaseRef:
    return ReleaseRef(info.release_id, info.data_as_at, info.created_at, info.policy_id)


@st.cache_data(ttl=60, show_spinner=False)
def latest_release(role_key: str, store_url: str | None) -> ReleaseRef | None:
    info = _store(store_url).latest_release()
    return _ref(info) if info else None


@st.cache_data(ttl=60, show_spinner=False)
def previous_release(role_key: str, store_url: str | None, release_id: str) -> ReleaseRef | None:
    """The newest published release before `release_id` (None: it is the first)."""
    published = [r for r in _store(store_url).list_releases() if r.status == "published"]
    ids = [r.release_id for r in published]
    if release_id not in ids:
        return None
    older = published[ids.index(release_id) + 1 :]
    return _ref(older[0]) if older else None


@st.cache_data(show_spinner=False)
def release_measures(
    role_key: str, store_url: str | None, release_id: str
) -> dict[str, MeasureMeta]:
    """Definitions, units and allowed breakdowns of every measure in a release."""
    return _store(store_url).read_meta(release_id)


# --- the protected table -------------------------------------------------------------------


def normalise_where(where: Mapping[str, str | Sequence[str]] | None) -> Where:
    out = []
    for dim, values in sorted((where or {}).items()):
        vals = (values,) if isinstance(values, str) else tuple(values)
        out.append((dim, vals))
    return tuple(out)


@st.cache_data(show_spinner=False, max_entries=5000)
def protected_table(
    role_key: str,
    store_url: str | None,
    release_id: str,
    demo: bool,
    measure: str,
    by: tuple[str, ...] = (),
    where: Where = (),
    margins: bool = False,
) -> ProtectedTable:
    """`anonymise.release.tabulate` on one release: counts perturbed, small counts
    suppressed, symbols and footnotes. Raises QueryError for a table the measure does
    not allow, LookupError for a measure the release lacks."""
    try:
        return tabulate(
            _store(store_url),
            measure,
            by=by,
            where=dict(where),
            policy=default_policy(),
            margins=margins,
            release_id=release_id,
            ptable=_ptable(demo),
        )
    except NoReleaseError as exc:
        raise DataUnavailableError(str(exc)) from None


def record_query(store_url: str | None, actor: str, role_key: str, table: ProtectedTable) -> None:
    """Write one table-builder query to the audit log (who, what, which release)."""
    _store(store_url).audit(
        actor,
        "table_query",
        {
            "via": "portal",
            "roles": role_key,
            "measure": table.measure,
            "by": list(table.by),
            "where": {k: list(v) for k, v in table.where},
            "margins": table.margins,
            "policy_id": table.policy_id,
            "rows": table.data.height,
        },
        release_id=table.release_id,
    )


# --- administrators only -----------------------------------------------------------------


@st.cache_data(ttl=30, show_spinner=False)
def release_list(role_key: str, store_url: str | None) -> pl.DataFrame:
    _require_admin(role_key)
    rows = _store(store_url).list_releases()
    return pl.DataFrame(
        {
            "Release": [r.release_id for r in rows],
            "Status": [r.status for r in rows],
            "Data as at": [r.data_as_at.isoformat() for r in rows],
            "Created (UTC)": [r.created_at.strftime("%Y-%m-%d %H:%M") for r in rows],
            "Policy": [r.policy_id for r in rows],
            "Measures": [len(r.row_counts) for r in rows],
            "Cube cells": [sum(r.row_counts.values()) for r in rows],
        },
        schema={
            "Release": pl.String,
            "Status": pl.String,
            "Data as at": pl.String,
            "Created (UTC)": pl.String,
            "Policy": pl.String,
            "Measures": pl.Int64,
            "Cube cells": pl.Int64,
        },
    )


@st.cache_data(ttl=10, show_spinner=False)
def audit_entries(
    role_key: str, store_url: str | None, action: str | None = None, limit: int = 500
) -> pl.DataFrame:
    _require_admin(role_key)
    audit = _store(store_url).read_audit(action=action, limit=limit)
    return audit.select(
        pl.col("at").dt.strftime("%Y-%m-%d %H:%M:%S").alias("When (UTC)"),
        pl.col("actor").alias("Who"),
        pl.col("action").alias("Action"),
        pl.col("release_id").alias("Release"),
        pl.col("detail").alias("Detail"),
    )


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def run_summary(role_key: str, work_dir: Path | None) -> dict[str, Any] | None:
    """The last pipeline run's summary (run.json), or None if there is none."""
    _require_admin(role_key)
    if work_dir is None:
        return None
    path = Path(work_dir) / "run.json"
    return _run_summary(role_key, str(path), _mtime(path))


@st.cache_data(show_spinner=False, max_entries=8)
def _run_summary(role_key: str, path: str, mtime: float) -> dict[str, Any] | None:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    # Only the aggregate sections the admin page shows.
    keep = ("run_id", "release_id", "timings_s", "counts", "ingest", "linkage_quality")
    return {k: doc.get(k) for k in keep}


def quarantine_counts(role_key: str, work_dir: Path | None) -> pl.DataFrame | None:
    """Rows quarantined by source and reason (counts only), or None if not available."""
    _require_admin(role_key)
    if work_dir is None:
        return None
    path = Path(work_dir) / "zone_a" / "quarantine_report.csv"
    return _quarantine_counts(role_key, str(path), _mtime(path))


@st.cache_data(show_spinner=False, max_entries=8)
def _quarantine_counts(role_key: str, path: str, mtime: float) -> pl.DataFrame | None:
    if not mtime:
        return None
    try:
        frame = pl.read_csv(
            path,
            columns=["source", "reason", "rows"],
            schema_overrides={"source": pl.String, "reason": pl.String, "rows": pl.Int64},
        )
    except (OSError, pl.exceptions.PolarsError):
        return None
    return frame.select(
        pl.col("source").alias("Source"),
        pl.col("reason").alias("Reason"),
        pl.col("rows").alias("Rows quarantined"),
    )


# --- researchers only: the extract builder (the one door from zone B) ---------------------

RESEARCHER = "researcher"


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    title: str
    role: str
    definition: str


def research_variables() -> list[CatalogueEntry]:
    """The extract catalogue: names, titles, privacy roles and definitions (no data)."""
    return [CatalogueEntry(v.name, v.title, v.role.value, v.definition) for v in CATALOGUE.values()]


def sensitive_variables() -> set[str]:
    return {v.name for v in CATALOGUE.values() if v.role is VarRole.SENSITIVE}


def extract_policy() -> Any:
    return load_extract_policy()


def build_research_extract(
    role_key: str,
    store_url: str | None,
    work_dir: Path | None,
    demo: bool,
    request: ExtractRequest,
    data_as_at: str,
) -> ExtractFiles:
    """Build one extract (never cached: every extract and refusal is audited)."""
    if RESEARCHER not in _roles(role_key):
        raise PermissionError("only researchers may request record-level extracts")
    if work_dir is None:
        raise ExtractRefused(["the portal has no pipeline working folder configured"], [])
    return extract_from_work_dir(
        Path(work_dir),
        request,
        demo=demo,
        data_as_at=data_as_at,
        audit=_store(store_url),
        via="portal",
    )
