"""Comparator statistics: EES data files and their rows (`portal comparators load`).

Revision 0002: two new tables, nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "comparator_datasets",
        sa.Column("dataset", sa.String(length=200), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("loaded_by", sa.String(length=128), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column(
            "columns",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "footnotes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("dataset"),
    )
    op.create_table(
        "comparator_values",
        sa.Column("dataset", sa.String(length=200), nullable=False),
        sa.Column("indicator", sa.String(length=200), nullable=False),
        sa.Column("time_period", sa.String(length=16), nullable=False),
        sa.Column("time_identifier", sa.String(length=64), nullable=False),
        sa.Column("financial_year", sa.String(length=16), nullable=True),
        sa.Column("geographic_level", sa.String(length=64), nullable=False),
        sa.Column("area_code", sa.String(length=64), nullable=False),
        sa.Column("area_name", sa.String(length=255), nullable=False),
        sa.Column("region_code", sa.String(length=64), nullable=True),
        sa.Column("filters", sa.Text(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("symbol", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(["dataset"], ["comparator_datasets.dataset"], ondelete="CASCADE"),
    )
    with op.batch_alter_table("comparator_values", schema=None) as batch_op:
        batch_op.create_index(
            "ix_comparator_values_indicator", ["indicator", "dataset"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("comparator_values", schema=None) as batch_op:
        batch_op.drop_index("ix_comparator_values_indicator")

    op.drop_table("comparator_values")
    op.drop_table("comparator_datasets")
