"""Sign-in state the release service keeps in the store: sessions, lockout, password upgrades.

Defined on `pipelines.store.metadata` (and imported by `pipelines/store/__init__.py`)
so that opening a `Store` creates these tables with the rest of the schema. Only the
release service reads or writes them; on PostgreSQL its role may INSERT and UPDATE here
and nowhere else but the audit log (`portal db grant`).

- `auth_sessions`: one row per signed-in session. The token itself is never stored, only
  its SHA-256, so a copy of the store gives nobody a usable session.
- `auth_sign_in_state`: failures and lockout per account name (keyed by a hash of the
  normalised name, so a password typed into the name field is not kept in clear).
  Counting in the store makes the lockout hold across browser sessions and processes.
- `auth_password_upgrades`: an argon2 hash that replaced a legacy (scrypt, pbkdf2) or
  outdated hash on a successful sign-in. The accounts file may be read-only or an
  environment variable, so the upgrade lives here, valid only while the file still holds
  the hash it replaced (`replaced_digest`).
"""

from __future__ import annotations

import sqlalchemy as sa

from pipelines.store import metadata
from pipelines.store.schema import _JSON

auth_sessions = sa.Table(
    "auth_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(128), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("roles", _JSON, nullable=False),
    sa.Column("method", sa.String(16), nullable=False),
    # "portal": created over the service credential, usable only with it; "api": a
    # client that signed in with its own local account.
    sa.Column("client", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("idle_expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
)

auth_sign_in_state = sa.Table(
    "auth_sign_in_state",
    metadata,
    sa.Column("name_key", sa.String(64), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_attempt", sa.DateTime(timezone=True), nullable=True),
)

auth_password_upgrades = sa.Table(
    "auth_password_upgrades",
    metadata,
    sa.Column("username", sa.String(128), primary_key=True),
    sa.Column("replaced_digest", sa.String(64), nullable=False),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("upgraded_at", sa.DateTime(timezone=True), nullable=False),
)
