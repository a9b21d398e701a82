"""Sign-in held by the release service: sessions, lockout with back-off, and the audit of
every sign-in event.

- **Sessions.** A successful sign-in returns an opaque random token (256 bits). The store
  keeps only its SHA-256 with the user id, name, roles, method, created, last seen and the
  idle and absolute expiries; every request presents the token and the service decides.
  A session created over the portal's service credential ("portal" client) is honoured
  only with that credential, so a browser cookie alone cannot be replayed against the API.
- **Lockout.** Per account name *and client address*, in the store, so failures count
  across browser sessions and processes. An attempt is counted *before* the password is
  checked and the lock is set by the attempt that reaches the limit, so parallel guesses
  cannot slip past it: `max_failures` failures from one address lock that account for
  that address for `lock_seconds`, doubling with every further failure, capped at
  `lock_cap_seconds`. Keying by address as well means someone who knows a colleague's
  user name cannot lock them out by typing wrong passwords from another machine. Guesses
  spread over many addresses are held by a second count per account, over every address:
  `ACCOUNT_FAILURE_FACTOR` times `max_failures` failures lock the account everywhere,
  with the same back-off, until a sign-in succeeds. Unknown names are counted the same
  way and cost the same argon2 check, so the answer and its timing do not say which
  names exist. State is keyed by a hash of the normalised name (and address), so a
  password typed into the name field is not kept in clear.
- **Audit.** Every sign-in, failure, refusal while locked, lock, password upgrade and
  sign-out is written to the audit log with the user name, method and outcome, never a
  password or a token.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from pipelines.store import Store
from pipelines.store.io import _utc
from pipelines.store_auth import auth_password_upgrades, auth_sessions, auth_sign_in_state
from portal.service import accounts
from portal.service.accounts import ROLES, Account, AccountsError
from portal.service.config import ServiceConfig
from registry.measures import _json

UNKNOWN_USER = "(unknown user)"
ROLE_TITLES = {
    "planner": "Planner",
    "researcher": "Researcher",
    "leadership": "Leadership",
    "admin": "Administrator",
}
DEMO_ACCOUNTS: dict[str, tuple[str, str]] = {
    role: (f"demo-{role}", f"Demo {title.lower()}") for role, title in ROLE_TITLES.items()
}
# How often a session's last-seen time is written (at most): a read-mostly API should not
# write on every request.
TOUCH_SECONDS = 30
# A page asks for a dozen tables at once: a session checked this recently is not read from
# the store again (a sign-out in this process is seen at once, one in another within this).
RECHECK_SECONDS = 1.0
# Failures over every address that lock an account everywhere, as a multiple of the
# per-address limit: high enough that locking a colleague out takes many machines, low
# enough that guessing from many machines still meets back-off within tens of tries.
ACCOUNT_FAILURE_FACTOR = 10
# The address used when the caller does not say (an older portal): every such attempt
# shares one count per account, which is the per-account lockout of before.
UNKNOWN_ADDRESS = "unknown"


class SignInError(Exception):
    """A sign-in did not succeed (the message is safe to show)."""


class BadCredentials(SignInError):
    """The user name or password is not right (the same answer for unknown names)."""

    def __init__(self, locked_for: float = 0.0) -> None:
        self.locked_for = locked_for
        super().__init__("the user name or password is not right")


class BadToken(SignInError):
    """An access token was not accepted (the message names the check that failed)."""


class LockedOut(SignInError):
    """Too many failed attempts: the account is locked for `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(1.0, retry_after)
        super().__init__(f"too many failed attempts; try again in {self.retry_after:.0f} seconds")


class MethodNotAvailable(SignInError):
    """That way of signing in is not configured on this service."""


@dataclass(frozen=True)
class SessionUser:
    user_id: str
    name: str
    roles: frozenset[str]
    method: str  # "demo", "local" or "oidc"
    client: str  # "portal" or "api"
    token_hash: str
    idle_expires_at: datetime

    @property
    def role_key(self) -> str:
        return "+".join(sorted(self.roles)) or "none"

    def public(self) -> dict[str, Any]:
        """What a client is told about the signed-in user."""
        return {
            "user_id": self.user_id,
            "name": self.name,
            "roles": sorted(self.roles),
            "method": self.method,
            "idle_expires_at": self.idle_expires_at.isoformat(),
        }


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def name_key(username: str) -> str:
    """The key of an account name's sign-in state: a hash of the normalised name."""
    return hashlib.sha256(b"portal-sign-in|" + username.encode("utf-8")).hexdigest()


def roles_from_claims(
    claims: Iterable[str], role_map: Mapping[str, tuple[str, ...]] | None
) -> frozenset[str]:
    """Portal roles for the claim values of an identity token: only mapped values count."""
    mapping = role_map or {}
    return frozenset(r for c in claims for r in mapping.get(c, ()) if r in ROLES)


def _now() -> datetime:
    return datetime.now(UTC)


def _insert_ignore(conn: Connection, table: sa.Table, values: Mapping[str, Any]) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(postgresql.insert(table).values(**values).on_conflict_do_nothing())
    elif conn.dialect.name == "sqlite":
        conn.execute(sqlite.insert(table).values(**values).on_conflict_do_nothing())
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported stores
        try:
            with conn.begin_nested():
                conn.execute(table.insert().values(**values))
        except sa.exc.IntegrityError:
            pass


class SignIn:
    """Sign-in and sessions for one service: the store, the configuration, the accounts."""

    def __init__(
        self,
        store: Store,
        config: ServiceConfig,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.environ = os.environ if environ is None else environ
        self._recent: dict[str, tuple[datetime, SessionUser, datetime]] = {}
        self._lock = threading.Lock()
        self._verifier: Any = None  # tokens.TokenVerifier, made on the first access token

    # -- the ways in ------------------------------------------------------------------------

    def local(
        self, username: str, password: str, *, client: str, address: str | None = None
    ) -> tuple[str, SessionUser]:
        """Check a local account's password. `address` is the client's network address
        (the browser's, as the portal saw it, or the API caller's): failures are counted
        per account and address, and per account over every address. Raises LockedOut,
        BadCredentials or MethodNotAvailable; every outcome is audited."""
        if self.config.auth_mode != "local":
            raise MethodNotAvailable("local accounts are not configured on this service")
        try:
            known = accounts.load_accounts(
                self.config.accounts_file, self.config.accounts_env, self.environ
            )
        except AccountsError as exc:
            raise MethodNotAvailable(f"the accounts are not configured ({exc})") from None
        name = accounts.normalise_username(username)[:128]
        account = known.get(name)
        actor = account.username if account else UNKNOWN_USER
        key = name_key(name)
        where = (address or UNKNOWN_ADDRESS).strip()[:64] or UNKNOWN_ADDRESS
        pair = name_key(f"{name}\x1f{where}")
        detail: dict[str, Any] = {"method": "local", "client": client, "address": where}
        if account is None:
            detail["name_key"] = key[:12]
        now = _now()
        limit = self.config.max_failures
        try:
            # The address's own count first: a locked address is refused without adding
            # to the account's count, so one machine hammering a name cannot lock it
            # for everyone.
            attempt, lock_set = self._begin_attempt(pair, now, limit)
            scope = "address"
            total, account_lock = self._begin_attempt(key, now, limit * ACCOUNT_FAILURE_FACTOR)
            if account_lock is not None:
                attempt, lock_set, scope = total, account_lock, "account"
        except LockedOut as exc:
            self.store.audit(
                actor,
                "sign_in_refused",
                detail | {"outcome": "locked", "retry_after_s": round(exc.retry_after)},
            )
            raise
        stored = self._effective_hash(account) if account else accounts.dummy_hash()
        ok = accounts.verify_password(password, stored) and account is not None
        if not ok:
            self.store.audit(actor, "sign_in_failed", detail | {"outcome": "failed"})
            locked_for = 0.0
            if lock_set is not None:
                locked_for = (lock_set - now).total_seconds()
                self.store.audit(
                    actor,
                    "account_locked",
                    detail
                    | {
                        "outcome": "locked",
                        "scope": scope,
                        "failures": attempt,
                        "locked_seconds": round(locked_for),
                    },
                )
            raise BadCredentials(locked_for)
        assert account is not None
        self._reset(pair)
        self._reset(key)
        if accounts.needs_rehash(stored):
            self._upgrade(account, password)
        return self._open(account.username, account.name, account.roles, "local", client)

    def demo(self, role: str, *, client: str) -> tuple[str, SessionUser]:
        if not self.config.demo or self.config.auth_mode != "demo":
            raise MethodNotAvailable("demo accounts exist only in demo mode")
        if role not in DEMO_ACCOUNTS:
            raise MethodNotAvailable(f"no demo account for role {role!r}")
        user_id, name = DEMO_ACCOUNTS[role]
        return self._open(user_id, name, frozenset({role}), "demo", client)

    def oidc(self, claims: Mapping[str, Any], *, client: str) -> tuple[str, SessionUser]:
        """A session for an identity the portal signed in with OpenID Connect (asserted over
        the service credential); roles come from the configured claim and role map."""
        if self.config.auth_mode != "oidc":
            raise MethodNotAvailable("OpenID Connect is not configured on this service")
        raw = claims.get(self.config.roles_claim) or ()
        values = [raw] if isinstance(raw, str) else [str(v) for v in raw]
        roles = roles_from_claims(values, self.config.role_map)
        user_id = str(
            claims.get("email")
            or claims.get("preferred_username")
            or claims.get("sub")
            or "unknown"
        )[:128]
        name = str(claims.get("name") or user_id)[:200]
        return self._open(user_id, name, roles, "oidc", client)

    def access_token(self, access_token: str) -> tuple[str, SessionUser]:
        """A session for an API client that presents an access token from the council's
        identity provider (OIDC mode with `auth.api_token_*` set): the token is checked
        (`portal.service.tokens`), roles come from the service's role map as for the
        portal's sign-in, and the session ends no later than the token does. Raises
        MethodNotAvailable or BadToken; every outcome is audited, never the token."""
        c = self.config
        if c.auth_mode != "oidc" or not (
            c.api_token_issuer and c.api_token_audience and c.api_token_jwks
        ):
            raise MethodNotAvailable("access tokens are not configured on this service")
        from portal.service import tokens  # JOSE is loaded only where tokens are taken

        with self._lock:
            if self._verifier is None:
                self._verifier = tokens.TokenVerifier(
                    tokens.TokenSettings(c.api_token_issuer, c.api_token_audience, c.api_token_jwks)
                )
            verifier = self._verifier
        try:
            claims = verifier.verify(access_token)
        except tokens.TokenRefused as exc:
            self.store.audit(
                UNKNOWN_USER,
                "sign_in_failed",
                {"method": "oidc", "client": "api", "outcome": "refused", "reason": str(exc)},
            )
            raise BadToken(str(exc)) from None
        raw = claims.get(c.roles_claim) or ()
        values = [raw] if isinstance(raw, str) else [str(v) for v in raw]
        roles = roles_from_claims(values, c.role_map)
        user_id = str(claims.get("email") or claims.get("preferred_username") or claims.get("sub"))[
            :128
        ]
        name = str(claims.get("name") or user_id)[:200]
        ends = datetime.fromtimestamp(float(claims["exp"]), UTC)
        return self._open(user_id, name, roles, "oidc", "api", ends_by=ends)

    # -- sessions -----------------------------------------------------------------------------

    def _open(
        self,
        user_id: str,
        name: str,
        roles: frozenset[str],
        method: str,
        client: str,
        *,
        ends_by: datetime | None = None,
    ) -> tuple[str, SessionUser]:
        token = secrets.token_urlsafe(32)
        now = _now()
        idle = now + self.config.idle_timeout
        hard = now + self.config.max_session
        if ends_by is not None:
            hard = min(hard, ends_by)
            idle = min(idle, hard)
        with self.store.engine.begin() as conn:
            conn.execute(
                auth_sessions.insert().values(
                    token_hash=token_hash(token),
                    user_id=user_id,
                    name=name,
                    roles=sorted(roles),
                    method=method,
                    client=client,
                    created_at=now,
                    last_seen=now,
                    idle_expires_at=idle,
                    expires_at=hard,
                )
            )
        self.store.audit(
            user_id,
            "sign_in",
            {"method": method, "client": client, "outcome": "success", "roles": sorted(roles)},
        )
        user = SessionUser(user_id, name, roles, method, client, token_hash(token), idle)
        return token, user

    def resolve(self, token: str, *, portal: bool) -> SessionUser | None:
        """The user of a live session, or None (unknown, signed out, idle or expired, a
        portal session without the service credential, or a method no longer configured)."""
        if not token or len(token) > 200:
            return None
        digest = token_hash(token)
        now = _now()
        cached = self._recently_checked(digest, now, portal=portal)
        if cached is not None:
            return cached
        user = self._resolve(digest, now, portal=portal)
        with self._lock:
            if len(self._recent) > 10_000:
                self._recent.clear()
            if user is None:
                self._recent.pop(digest, None)
        return user

    def recently_checked(self, token: str, *, portal: bool) -> SessionUser | None:
        """The user of a session checked in the last second and still valid, without asking
        the store (None: ask `resolve`)."""
        if not token or len(token) > 200:
            return None
        return self._recently_checked(token_hash(token), _now(), portal=portal)

    def _recently_checked(self, digest: str, now: datetime, *, portal: bool) -> SessionUser | None:
        with self._lock:
            hit = self._recent.get(digest)
        if hit is None or not 0 <= (now - hit[0]).total_seconds() < RECHECK_SECONDS:
            return None
        user, hard_until = hit[1], hit[2]
        if (
            now < user.idle_expires_at
            and now < hard_until
            and (portal or user.client != "portal")
            and user.method == self.config.auth_mode
        ):
            return user
        return None

    def _resolve(self, digest: str, now: datetime, *, portal: bool) -> SessionUser | None:
        with self.store.engine.connect() as conn:
            row = (
                conn.execute(sa.select(auth_sessions).where(auth_sessions.c.token_hash == digest))
                .mappings()
                .one_or_none()
            )
        if row is None or row["revoked_at"] is not None:
            return None
        idle_until, hard_until = _utc(row["idle_expires_at"]), _utc(row["expires_at"])
        if now >= idle_until or now >= hard_until:
            return None
        if row["client"] == "portal" and not portal:
            return None
        if row["method"] != self.config.auth_mode:
            return None
        roles = frozenset(_json(row["roles"]))
        touch = min(TOUCH_SECONDS, self.config.idle_timeout.total_seconds() / 4)
        if (now - _utc(row["last_seen"])).total_seconds() >= touch:
            if row["method"] == "local":
                current = self._current_roles(row["user_id"])
                if current is None:
                    self._revoke(digest, now)
                    return None
                roles = current
            idle_until = min(now + self.config.idle_timeout, hard_until)
            with self.store.engine.begin() as conn:
                conn.execute(
                    auth_sessions.update()
                    .where(auth_sessions.c.token_hash == digest)
                    .values(last_seen=now, idle_expires_at=idle_until, roles=sorted(roles))
                )
        user = SessionUser(
            row["user_id"], row["name"], roles, row["method"], row["client"], digest, idle_until
        )
        with self._lock:
            self._recent[digest] = (now, user, hard_until)
        return user

    def sign_out(self, user: SessionUser) -> None:
        self._revoke(user.token_hash, _now())
        self.store.audit(
            user.user_id,
            "sign_out",
            {"method": user.method, "client": user.client, "outcome": "signed_out"},
        )

    def _revoke(self, digest: str, now: datetime) -> None:
        with self._lock:
            self._recent.pop(digest, None)
        with self.store.engine.begin() as conn:
            conn.execute(
                auth_sessions.update()
                .where(auth_sessions.c.token_hash == digest)
                .values(revoked_at=now)
            )

    def _current_roles(self, username: str) -> frozenset[str] | None:
        """A local account's roles now (an account removed from the file: None)."""
        try:
            known = accounts.load_accounts(
                self.config.accounts_file, self.config.accounts_env, self.environ
            )
        except AccountsError:
            return None
        account = known.get(username)
        return account.roles if account else None

    # -- lockout --------------------------------------------------------------------------------

    def _backoff(self, attempt: int, limit: int) -> timedelta:
        extra = max(0, attempt - limit)
        seconds = self.config.lock_seconds * 2 ** min(extra, 30)
        return timedelta(seconds=min(seconds, self.config.lock_cap_seconds))

    def _begin_attempt(self, key: str, now: datetime, limit: int) -> tuple[int, datetime | None]:
        """Count one attempt (compare-and-set on the failure count, so concurrent attempts
        in any process each get their own number). Returns the attempt number and the lock
        this attempt set (if it reached the limit); raises LockedOut while locked."""
        table = auth_sign_in_state
        for _ in range(50):
            with self.store.engine.begin() as conn:
                _insert_ignore(
                    conn,
                    table,
                    {"name_key": key, "failures": 0, "locked_until": None, "last_attempt": None},
                )
                failures, locked = conn.execute(
                    sa.select(table.c.failures, table.c.locked_until).where(table.c.name_key == key)
                ).one()
                if locked is not None and _utc(locked) > now:
                    raise LockedOut((_utc(locked) - now).total_seconds())
                attempt = failures + 1
                lock = now + self._backoff(attempt, limit) if attempt >= limit else None
                done = conn.execute(
                    table.update()
                    .where(table.c.name_key == key, table.c.failures == failures)
                    .values(failures=attempt, locked_until=lock, last_attempt=now)
                )
                if done.rowcount == 1:
                    return attempt, lock
        # Heavy contention on one name is itself an attack: refuse rather than let a guess in.
        raise LockedOut(float(self.config.lock_seconds))

    def _reset(self, key: str) -> None:
        with self.store.engine.begin() as conn:
            conn.execute(
                auth_sign_in_state.update()
                .where(auth_sign_in_state.c.name_key == key)
                .values(failures=0, locked_until=None)
            )

    # -- password upgrades ------------------------------------------------------------------------

    def _effective_hash(self, account: Account) -> str:
        """The account's hash: an upgrade stored after a sign-in wins while the accounts file
        still holds the hash it replaced (a changed file means a reset password)."""
        t = auth_password_upgrades
        with self.store.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.c.replaced_digest, t.c.password_hash).where(
                    t.c.username == account.username
                )
            ).one_or_none()
        if row is not None and row[0] == accounts.hash_digest(account.password_hash):
            return str(row[1])
        return account.password_hash

    def _upgrade(self, account: Account, password: str) -> None:
        new = accounts.hash_password(password)
        t = auth_password_upgrades
        values = {
            "replaced_digest": accounts.hash_digest(account.password_hash),
            "password_hash": new,
            "upgraded_at": _now(),
        }
        with self.store.engine.begin() as conn:
            done = conn.execute(t.update().where(t.c.username == account.username).values(values))
            if done.rowcount == 0:
                _insert_ignore(conn, t, {"username": account.username, **values})
        scheme = account.password_hash.split("$")[1 if account.password_hash[0] == "$" else 0]
        self.store.audit(
            account.username,
            "password_rehashed",
            {"method": "local", "from": scheme, "to": "argon2id"},
        )
