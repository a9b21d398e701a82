"""The release store: releases, release cubes, measure metadata and the audit log.

Three rooms, re-exported here so `from pipelines.store import Store` keeps working:
`pipelines.store.schema` (the tables), `pipelines.store.io` (`Store`: open, write,
read, audit) and the shared `registry` package (the dimension and measure registry,
release validation and the store's errors, which the privacy core also uses).

SQLAlchemy Core over a SQLite file (default, under data/) or PostgreSQL (production).

A release is written whole or not at all: `Store.write_release` runs in ONE
transaction, so a failure part-way leaves the previous release intact, readable
and still the latest. Cubes hold TRUE counts and cell keys: they never leave the
store except through `anonymise.release`, which returns protected tables only.

Cube layout: one wide table, `cube_cells`, with one nullable text column per
dimension of a fixed registry (`DIMENSIONS`) plus `n` and `ckey`, indexed by
(release_id, measure). A measure fills only the columns of its allowed
breakdowns. Reading a measure is one indexed range scan that returns exactly the
frame the release layer caches; a key-value layout would need a pivot per read and
a table per measure would need DDL inside every release. Adding a dimension to the
registry adds its column through a migration (`pipelines/migrations`, `portal db upgrade`).

Releases over time (docs/disclosure-control.md): each release records its `kind`
(`routine` or `revision`), its record-key epoch and the date through which published
history has been revised, and keeps, per measure, the ledger of the units it published
(`release_ledgers`: keyed unit hashes and the dimensions each was published with), so
that the next routine release can publish closed periods exactly as they were.
Erasure and restriction requests (`subject_requests`) are kept as keyed tokens only.
"""

from pipelines.store.io import (
    DEFAULT_SQLITE_PATH,
    STORE_URL_ENV,
    Store,
    _utc,
    default_store_url,
)
from pipelines.store.schema import (
    _JSON,
    audit_log,
    cube_blobs,
    cube_cells,
    measure_meta,
    metadata,
    objection_acknowledgements,
    release_ledgers,
    releases,
    subject_requests,
)
from registry.dimensions import DIMENSION_NAMES, DIMENSIONS, Dimension, dimension
from registry.errors import (
    ReleaseDataRemovedError,
    ReleaseValidationError,
    ReleaseWriteError,
    StoreError,
    UnknownMeasureError,
    UnknownReleaseError,
)
from registry.measures import (
    CHANGE_SET_PREFIX,
    KEY_MODULUS,
    MAX_VALUE_LENGTH,
    RELEASE_KINDS,
    Denominator,
    MeasureMeta,
    ReleaseInfo,
    _json,
    validate_release,
)

__all__ = [
    "CHANGE_SET_PREFIX", "DEFAULT_SQLITE_PATH", "DIMENSIONS", "DIMENSION_NAMES",
    "KEY_MODULUS", "MAX_VALUE_LENGTH", "RELEASE_KINDS", "STORE_URL_ENV", "Denominator",
    "Dimension", "MeasureMeta", "ReleaseDataRemovedError", "ReleaseInfo",
    "ReleaseValidationError", "ReleaseWriteError", "Store", "StoreError",
    "UnknownMeasureError", "UnknownReleaseError", "_JSON", "_json", "_utc", "audit_log",
    "cube_blobs", "cube_cells", "default_store_url", "dimension", "measure_meta",
    "metadata", "objection_acknowledgements", "release_ledgers", "releases",
    "subject_requests", "validate_release",
]  # fmt: skip


# Tables defined in their own modules on this metadata, so `Store()` creates them too:
# the project register and release ledger, the evaluation shares register, the
# release service's sign-in tables and the comparator statistics.
from pipelines import project_register as _project_register  # noqa: E402, F401
from pipelines import store_auth as _store_auth  # noqa: E402, F401
from pipelines import store_comparators as _store_comparators  # noqa: E402, F401
from pipelines import store_shares as _store_shares  # noqa: E402, F401
