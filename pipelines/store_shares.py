"""The evaluation shares register: one row per share made (`portal share evaluation`).

Defined on the store's metadata, so `Store()` creates it with the other tables. Holds
each share's manifest (recipients, file hashes, row counts, who and why): never a
file's contents.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from pipelines.store import metadata

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

evaluation_shares = sa.Table(
    "evaluation_shares",
    metadata,
    sa.Column("share_id", sa.String(20), primary_key=True),
    sa.Column("programme", sa.String(64), nullable=False),
    sa.Column("period", sa.String(16), nullable=False),
    sa.Column("project_id", sa.String(40), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("expires_on", sa.Date, nullable=False),
    sa.Column("manifest", _JSON, nullable=False),
)
