"""PostgreSQL roles for the three processes: the pipeline owns the store, the release service
reads it and writes only its own records, the portal's web process gets nothing.

`grant_roles` (run by `portal db grant` as the owner, i.e. the pipeline's role, on a store
`portal db upgrade` has brought to the code's schema revision):

- the **service** role may SELECT the store's tables (it is the store's only reader besides
  the pipeline), INSERT into the audit log and INSERT and UPDATE its sign-in tables
  (sessions, lockout state, password upgrades), and nothing else: no DDL, no writes to
  releases, measure metadata or cubes;
- the **web** role (if one exists at all) has every privilege on the schema and its tables
  revoked, so it cannot read the cubes, the releases or anything else.

Writes are deny by default: a table not in SERVICE_WRITES is read-only to the service.
A SQLite store is a file: its protection is the file's mode, not roles.
"""

from __future__ import annotations

import sqlalchemy as sa

from pipelines.store import Store, metadata
from pipelines.store_schema import VERSION_TABLE
from registry.errors import StoreError

# What the service may write, table by table; it may read every table of the store.
SERVICE_WRITES: dict[str, tuple[str, ...]] = {
    "audit": ("INSERT",),
    "auth_sessions": ("INSERT", "UPDATE"),
    "auth_sign_in_state": ("INSERT", "UPDATE"),
    "auth_password_upgrades": ("INSERT", "UPDATE"),
    # Research extracts: the door records each release in the project's ledger (and a
    # file path when it writes one) and marks expiry.
    "extract_ledger": ("INSERT", "UPDATE"),
}
# Sequences behind the tables the service inserts into (SERIAL ids).
SERVICE_SEQUENCES: tuple[tuple[str, str], ...] = (("audit", "id"), ("extract_ledger", "id"))


class RoleError(StoreError):
    """The roles cannot be granted (not PostgreSQL, or a role does not exist)."""


def grant_roles(store: Store, *, service_role: str, web_role: str | None = None) -> list[str]:
    """Grant the service role its privileges and revoke everything from the web role, in the
    store's current schema. Returns the statements run (no secrets in them)."""
    if store.dialect != "postgresql":
        raise RoleError(
            "database roles need PostgreSQL; a SQLite store is protected by its file's "
            "permissions (owner-only) instead"
        )
    quote = store.engine.dialect.identifier_preparer.quote
    done: list[str] = []
    with store.engine.begin() as conn:
        schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
        for role in (service_role, web_role):
            if role is None:
                continue
            found = conn.execute(
                sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}
            ).scalar()
            if not found:
                raise RoleError(f"role {role!r} does not exist: create it first (CREATE ROLE)")
        if web_role == service_role:
            raise RoleError("the service and the web process must have different roles")
        s, svc = quote(schema), quote(service_role)

        def run(sql: str) -> None:
            conn.execute(sa.text(sql))
            done.append(sql)

        run(f"REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {svc}")
        run(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {s} FROM {svc}")
        run(f"REVOKE CREATE ON SCHEMA {s} FROM {svc}")
        run(f"GRANT USAGE ON SCHEMA {s} TO {svc}")
        for table in metadata.sorted_tables:
            privileges = ("SELECT", *SERVICE_WRITES.get(table.name, ()))
            run(f"GRANT {', '.join(privileges)} ON {s}.{quote(table.name)} TO {svc}")
        # The service checks the schema revision when it opens the store (read only).
        run(f"GRANT SELECT ON {s}.{quote(VERSION_TABLE)} TO {svc}")
        for seq_table, column in SERVICE_SEQUENCES:
            seq = conn.execute(
                sa.text("SELECT pg_get_serial_sequence(:t, :c)"),
                {"t": f"{schema}.{seq_table}", "c": column},
            ).scalar()
            if seq:
                run(f"GRANT USAGE ON SEQUENCE {seq} TO {svc}")
        if web_role is not None:
            web = quote(web_role)
            run(f"REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {web}")
            run(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {s} FROM {web}")
            run(f"REVOKE ALL ON SCHEMA {s} FROM {web}")
    return done
