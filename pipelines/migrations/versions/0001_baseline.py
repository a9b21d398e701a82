"""Baseline: the release store's schema as it stood when migrations began (frozen here).

Revision 0001. On an empty database it creates every table. On a store made before
migrations (tables created when the store was opened, no version table) it adopts the
store: it creates any table that is missing and adds any column that is missing (every
column added in those days was nullable), so `portal db upgrade` brings an old store to
this revision without losing a row.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_md = sa.MetaData()

sa.Table(
    "audit",
    _md,
    sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(length=128), nullable=False),
    sa.Column("action", sa.String(length=64), nullable=False),
    sa.Column("release_id", sa.String(length=40), nullable=True),
    sa.Column(
        "detail",
        sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
        nullable=False,
    ),
    sa.PrimaryKeyConstraint("id"),
)
sa.Index("ix_audit_action", _md.tables["audit"].c["action"])
sa.Table(
    "auth_password_upgrades",
    _md,
    sa.Column("username", sa.String(length=128), nullable=False),
    sa.Column("replaced_digest", sa.String(length=64), nullable=False),
    sa.Column("password_hash", sa.Text(), nullable=False),
    sa.Column("upgraded_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("username"),
)
sa.Table(
    "auth_sessions",
    _md,
    sa.Column("token_hash", sa.String(length=64), nullable=False),
    sa.Column("user_id", sa.String(length=128), nullable=False),
    sa.Column("name", sa.String(length=200), nullable=False),
    sa.Column(
        "roles",
        sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
        nullable=False,
    ),
    sa.Column("method", sa.String(length=16), nullable=False),
    sa.Column("client", sa.String(length=16), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("idle_expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint("token_hash"),
)
sa.Table(
    "auth_sign_in_state",
    _md,
    sa.Column("name_key", sa.String(length=64), nullable=False),
    sa.Column("failures", sa.Integer(), nullable=False),
    sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_attempt", sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint("name_key"),
)
sa.Table(
    "cube_blobs",
    _md,
    sa.Column("release_id", sa.String(length=40), nullable=False),
    sa.Column("measure", sa.String(length=64), nullable=False),
    sa.Column("parquet", sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint("release_id", "measure"),
)
sa.Table(
    "cube_cells",
    _md,
    sa.Column("release_id", sa.String(length=40), nullable=False),
    sa.Column("measure", sa.String(length=64), nullable=False),
    sa.Column("locality", sa.String(length=100), nullable=True),
    sa.Column("ward", sa.String(length=100), nullable=True),
    sa.Column("lsoa", sa.String(length=100), nullable=True),
    sa.Column("imd_quintile", sa.String(length=100), nullable=True),
    sa.Column("age_band", sa.String(length=100), nullable=True),
    sa.Column("sex", sa.String(length=100), nullable=True),
    sa.Column("ethnicity", sa.String(length=100), nullable=True),
    sa.Column("sen", sa.String(length=100), nullable=True),
    sa.Column("fsm", sa.String(length=100), nullable=True),
    sa.Column("school_phase", sa.String(length=100), nullable=True),
    sa.Column("family_type", sa.String(length=100), nullable=True),
    sa.Column("year", sa.String(length=100), nullable=True),
    sa.Column("financial_year", sa.String(length=100), nullable=True),
    sa.Column("quarter", sa.String(length=100), nullable=True),
    sa.Column("month", sa.String(length=100), nullable=True),
    sa.Column("referral_source", sa.String(length=100), nullable=True),
    sa.Column("decision", sa.String(length=100), nullable=True),
    sa.Column("need", sa.String(length=100), nullable=True),
    sa.Column("cin_category", sa.String(length=100), nullable=True),
    sa.Column("plan_type", sa.String(length=100), nullable=True),
    sa.Column("closure_reason", sa.String(length=100), nullable=True),
    sa.Column("outcome", sa.String(length=100), nullable=True),
    sa.Column("service", sa.String(length=100), nullable=True),
    sa.Column("n", sa.BigInteger(), nullable=False),
    sa.Column("ckey", sa.SmallInteger(), nullable=False),
    sa.CheckConstraint("ckey >= 0 AND ckey < 256", name="ck_cube_cells_ckey_range"),
    sa.CheckConstraint("n > 0", name="ck_cube_cells_n_positive"),
)
sa.Index(
    "ix_cube_cells_release_measure",
    _md.tables["cube_cells"].c["release_id"],
    _md.tables["cube_cells"].c["measure"],
)
sa.Table(
    "evaluation_shares",
    _md,
    sa.Column("share_id", sa.String(length=20), nullable=False),
    sa.Column("programme", sa.String(length=64), nullable=False),
    sa.Column("period", sa.String(length=16), nullable=False),
    sa.Column("project_id", sa.String(length=40), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(length=128), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("expires_on", sa.Date(), nullable=False),
    sa.Column(
        "manifest",
        sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
        nullable=False,
    ),
    sa.PrimaryKeyConstraint("share_id"),
)
sa.Table(
    "objection_acknowledgements",
    _md,
    sa.Column("reference", sa.String(length=64), nullable=False),
    sa.Column("problem", sa.String(length=16), nullable=False),
    sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("acknowledged_by", sa.String(length=128), nullable=False),
    sa.PrimaryKeyConstraint("reference", "problem"),
)
sa.Table(
    "projects",
    _md,
    sa.Column("project_id", sa.String(length=16), nullable=False),
    sa.Column("title", sa.Text(), nullable=False),
    sa.Column("purpose", sa.Text(), nullable=False),
    sa.Column("lawful_basis", sa.Text(), nullable=False),
    sa.Column(
        "variables",
        sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
        nullable=False,
    ),
    sa.Column(
        "researchers",
        sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
        nullable=False,
    ),
    sa.Column("family_analysis", sa.Boolean(), nullable=False),
    sa.Column("kind", sa.String(length=24), server_default="research", nullable=False),
    sa.Column("approver", sa.String(length=128), nullable=False),
    sa.Column("approved_on", sa.Date(), nullable=False),
    sa.Column("expires_on", sa.Date(), nullable=False),
    sa.Column("status", sa.String(length=8), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("closed_on", sa.Date(), nullable=True),
    sa.Column("closed_reason", sa.Text(), nullable=True),
    sa.CheckConstraint("status IN ('open', 'closed')", name="ck_projects_status"),
    sa.PrimaryKeyConstraint("project_id"),
)
sa.Table(
    "release_ledgers",
    _md,
    sa.Column("release_id", sa.String(length=40), nullable=False),
    sa.Column("measure", sa.String(length=64), nullable=False),
    sa.Column("parquet", sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint("release_id", "measure"),
)
sa.Table(
    "releases",
    _md,
    sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("release_id", sa.String(length=40), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("data_as_at", sa.Date(), nullable=False),
    sa.Column("policy_id", sa.String(length=80), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column(
        "run_metadata",
        sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
        nullable=False,
    ),
    sa.Column(
        "row_counts",
        sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
        nullable=False,
    ),
    sa.Column("kind", sa.String(length=16), server_default="routine", nullable=False),
    sa.Column("key_epoch", sa.Integer(), server_default="0", nullable=False),
    sa.Column("revised_through", sa.Date(), nullable=True),
    sa.Column("revision_note", sa.Text(), nullable=True),
    sa.Column("cubes_removed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("reference_release", sa.String(length=40), nullable=True),
    sa.Column("materiality", sa.Integer(), server_default="0", nullable=False),
    sa.CheckConstraint("kind IN ('routine', 'revision')", name="ck_releases_kind"),
    sa.CheckConstraint("status IN ('published', 'withdrawn')", name="ck_releases_status"),
    sa.PrimaryKeyConstraint("seq"),
    sa.UniqueConstraint("release_id"),
)
sa.Table(
    "subject_requests",
    _md,
    sa.Column("request_id", sa.String(length=40), nullable=False),
    sa.Column("kind", sa.String(length=16), nullable=False),
    sa.Column("received_on", sa.Date(), nullable=False),
    sa.Column(
        "tokens",
        sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
        nullable=False,
    ),
    sa.Column(
        "identifier_kinds",
        sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
        nullable=False,
    ),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(length=128), nullable=False),
    sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_matched", sa.Integer(), nullable=True),
    sa.CheckConstraint("kind IN ('erasure', 'restriction')", name="ck_subject_requests_kind"),
    sa.CheckConstraint("status IN ('active', 'lifted')", name="ck_subject_requests_status"),
    sa.PrimaryKeyConstraint("request_id"),
)
sa.Table(
    "extract_ledger",
    _md,
    sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("project_id", sa.String(length=16), nullable=False),
    sa.Column("extract_no", sa.Integer(), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("researcher", sa.String(length=128), nullable=False),
    sa.Column(
        "variables",
        sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
        nullable=False,
    ),
    sa.Column(
        "quasi_identifiers",
        sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
        nullable=False,
    ),
    sa.Column(
        "levels",
        sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
        nullable=False,
    ),
    sa.Column(
        "level_names",
        sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
        nullable=False,
    ),
    sa.Column(
        "pseudonym_columns",
        sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
        nullable=False,
    ),
    sa.Column("file_path", sa.Text(), nullable=True),
    sa.Column("sha256", sa.String(length=64), nullable=False),
    sa.Column("records", sa.Integer(), nullable=False),
    sa.Column("qi_frame", sa.LargeBinary(), nullable=False),
    sa.Column("expired_at", sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(
        ["project_id"],
        ["projects.project_id"],
    ),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("project_id", "extract_no", name="uq_extract_ledger_no"),
)
sa.Table(
    "measure_meta",
    _md,
    sa.Column("release_id", sa.String(length=40), nullable=False),
    sa.Column("measure", sa.String(length=64), nullable=False),
    sa.Column("title", sa.Text(), nullable=False),
    sa.Column("definition", sa.Text(), nullable=False),
    sa.Column("unit", sa.String(length=64), nullable=False),
    sa.Column(
        "breakdowns",
        sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
        nullable=False,
    ),
    sa.Column(
        "denominator",
        sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
        nullable=True,
    ),
    sa.Column("max_dims", sa.Integer(), nullable=True),
    sa.Column(
        "footnotes",
        sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
        nullable=False,
    ),
    sa.Column("complete_after_days", sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(
        ["release_id"],
        ["releases.release_id"],
    ),
    sa.PrimaryKeyConstraint("release_id", "measure"),
)


def upgrade() -> None:
    bind = op.get_bind()
    have = set(sa.inspect(bind).get_table_names())
    missing = [t for t in _md.sorted_tables if t.name not in have]
    _md.create_all(bind, tables=missing)
    for table in _md.sorted_tables:
        if table in missing:
            continue
        columns = {c["name"] for c in sa.inspect(bind).get_columns(table.name)}
        for column in table.columns:
            if column.name not in columns:
                # Existing rows take the column's default (a routine release, epoch 0...).
                default = column.server_default
                op.add_column(
                    table.name,
                    sa.Column(
                        column.name,
                        column.type,
                        nullable=column.nullable if default is not None else True,
                        server_default=default.arg if default is not None else None,  # type: ignore[attr-defined]
                    ),
                )


def downgrade() -> None:
    _md.drop_all(op.get_bind())
