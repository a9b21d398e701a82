"""The store's schema: SQLAlchemy Core tables on one `metadata`, migrated by Alembic
(`pipelines/migrations`, `portal db upgrade`); opening a store never runs DDL.

Other modules add their tables to the same `metadata` (the project register, sign-in
accounts, comparators, shares), imported by `pipelines.store` so that the migrations
and the schema comparison in tests/test_migrations.py see every table.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from registry.dimensions import DIMENSION_NAMES
from registry.measures import MAX_VALUE_LENGTH

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
metadata = sa.MetaData()

releases = sa.Table(
    "releases",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("release_id", sa.String(40), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("data_as_at", sa.Date, nullable=False),
    sa.Column("policy_id", sa.String(80), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("run_metadata", _JSON, nullable=False),
    sa.Column("row_counts", _JSON, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False, server_default="routine"),
    sa.Column("key_epoch", sa.Integer, nullable=False, server_default="0"),
    sa.Column("revised_through", sa.Date, nullable=True),
    sa.Column("revision_note", sa.Text, nullable=True),
    sa.Column("cubes_removed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("reference_release", sa.String(40), nullable=True),
    sa.Column("materiality", sa.Integer, nullable=False, server_default="0"),
    sa.CheckConstraint("status IN ('published', 'withdrawn')", name="ck_releases_status"),
    sa.CheckConstraint("kind IN ('routine', 'revision')", name="ck_releases_kind"),
)
measure_meta = sa.Table(
    "measure_meta",
    metadata,
    sa.Column("release_id", sa.String(40), sa.ForeignKey("releases.release_id"), primary_key=True),
    sa.Column("measure", sa.String(64), primary_key=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("definition", sa.Text, nullable=False),
    sa.Column("unit", sa.String(64), nullable=False),
    sa.Column("breakdowns", _JSON, nullable=False),
    sa.Column("denominator", _JSON, nullable=True),
    sa.Column("max_dims", sa.Integer, nullable=True),
    sa.Column("footnotes", _JSON, nullable=False),
    sa.Column("complete_after_days", sa.Integer, nullable=True),
)

# No foreign key on the cube: it is bulk-loaded inside the same transaction as its
# release row, and a per-row FK check would dominate the load time on PostgreSQL.
cube_cells = sa.Table(
    "cube_cells",
    metadata,
    sa.Column("release_id", sa.String(40), nullable=False),
    sa.Column("measure", sa.String(64), nullable=False),
    *(sa.Column(d, sa.String(MAX_VALUE_LENGTH), nullable=True) for d in DIMENSION_NAMES),
    sa.Column("n", sa.BigInteger, nullable=False),
    sa.Column("ckey", sa.SmallInteger, nullable=False),
    sa.CheckConstraint("n > 0", name="ck_cube_cells_n_positive"),
    sa.CheckConstraint("ckey >= 0 AND ckey < 256", name="ck_cube_cells_ckey_range"),
    sa.Index("ix_cube_cells_release_measure", "release_id", "measure"),
)

# A read-optimised copy of each cube: the same rows as Parquet, written in the same
# transaction as `cube_cells`. Loading a county-sized cube from it is one row fetch and a
# Parquet decode (milliseconds) instead of tens of thousands of rows through the driver,
# which keeps the first query of a measure (every `portal table` call) well under 200 ms.
# `cube_cells` stays the queryable, constraint-checked record of the same data.
cube_blobs = sa.Table(
    "cube_blobs",
    metadata,
    sa.Column("release_id", sa.String(40), primary_key=True),
    sa.Column("measure", sa.String(64), primary_key=True),
    sa.Column("parquet", sa.LargeBinary, nullable=False),
)

# The units each release published, per measure: one Parquet blob of `unit_hash` (a keyed
# hash of the unit id, so the store alone cannot be joined to zone B) and the dimension
# values the unit was published with. Written in the same transaction as the release; the
# next routine release reads the latest one back (`read_ledger`). Record-level, so only
# the pipeline reads it, and retention removes it with the cubes of superseded releases.
release_ledgers = sa.Table(
    "release_ledgers",
    metadata,
    sa.Column("release_id", sa.String(40), primary_key=True),
    sa.Column("measure", sa.String(64), primary_key=True),
    sa.Column("parquet", sa.LargeBinary, nullable=False),
)

# Erasure and restriction requests, kept as the minimum needed to keep honouring them:
# keyed tokens of the normalised identifiers (HMAC under a key derived from the
# pseudonymisation master key) and which kinds of identifier were given, never a value.
subject_requests = sa.Table(
    "subject_requests",
    metadata,
    sa.Column("request_id", sa.String(40), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("received_on", sa.Date, nullable=False),
    sa.Column("tokens", _JSON, nullable=False),
    sa.Column("identifier_kinds", _JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_matched", sa.Integer, nullable=True),
    sa.CheckConstraint("kind IN ('erasure', 'restriction')", name="ck_subject_requests_kind"),
    sa.CheckConstraint("status IN ('active', 'lifted')", name="ck_subject_requests_status"),
)

# Objections register rows that matched nobody or several people, acknowledged by an
# administrator so that publication can proceed: the register reference and the problem
# acknowledged (a row whose problem changes needs a new acknowledgement).
objection_acknowledgements = sa.Table(
    "objection_acknowledgements",
    metadata,
    sa.Column("reference", sa.String(64), primary_key=True),
    sa.Column("problem", sa.String(16), primary_key=True),
    sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("acknowledged_by", sa.String(128), nullable=False),
)

audit_log = sa.Table(
    "audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("release_id", sa.String(40), nullable=True),
    sa.Column("detail", _JSON, nullable=False),
    sa.Index("ix_audit_action", "action"),
)
