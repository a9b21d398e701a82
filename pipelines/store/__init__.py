"""The release store: releases, release cubes, measure metadata and the audit log.

Two rooms, re-exported here so `from pipelines.store import Store` reads as one door:
`pipelines.store.schema` (the tables) and `pipelines.store.io` (`Store`: open, write,
read, audit). The dimension and measure registry, release validation and the store's
errors live in the shared `registry` package (the privacy core uses them too): import
them from there.

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
    default_store_url,
)
from pipelines.store.schema import (
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

__all__ = [
    "DEFAULT_SQLITE_PATH", "STORE_URL_ENV", "Store", "audit_log", "cube_blobs", "cube_cells",
    "default_store_url", "measure_meta", "metadata", "objection_acknowledgements",
    "release_ledgers", "releases", "subject_requests",
]  # fmt: skip


# Tables defined in their own modules on this metadata, so `Store()` creates them too:
# the project register and release ledger, the evaluation shares register, the
# release service's sign-in tables and the comparator statistics.
from pipelines import project_register as _project_register  # noqa: E402, F401
from pipelines import store_auth as _store_auth  # noqa: E402, F401
from pipelines import store_comparators as _store_comparators  # noqa: E402, F401
from pipelines import store_shares as _store_shares  # noqa: E402, F401
