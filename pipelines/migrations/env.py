"""Alembic's environment for the release store (run through `pipelines.store_schema`,
which passes the connection in; there is no alembic.ini)."""

from __future__ import annotations

from alembic import context

from pipelines.store import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things: batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
