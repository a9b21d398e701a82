"""Sign-in: OpenID Connect in production, local accounts standalone, demo accounts in demo.

- oidc: `st.login(provider)` (Streamlit's OpenID Connect flow; the client id and
  secret live in .streamlit/secrets.toml). Roles come from one claim of the ID token
  (`roles_claim`, e.g. "groups"), mapped by `[auth.role_map]` in the config file;
  a claim value that is not mapped gives no role.
- local: accounts in a TOML file (or an env var) named in the config, never in the
  repo, with scrypt password hashes (`hash_password`; run
  `python -m portal.web.auth` to make one)::

      [accounts.jsmith]
      name = "Jo Smith"
      roles = ["planner"]
      password_hash = "scrypt$16384$8$1$<salt>$<hash>"

- demo: only when PORTAL_DEMO=1. One demo account per role, no password, and every
  page says so. The data are synthetic.

A signed-in local or demo user is held in this browser session's state only
(reloading the page signs out); an OIDC user is held by Streamlit's identity cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.util
import os
import secrets
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from portal.web.access import ROLE_TITLES, User, roles_from_claims
from portal.web.config import ROLES, PortalConfig

SESSION_USER = "portal_user"
SESSION_FAILURES = "portal_sign_in_failures"
MAX_FAILURES = 5
LOCKOUT_SECONDS = 60

# scrypt parameters: 16 MiB of memory and ~50 ms per check on a laptop.
SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LEN = 2**14, 8, 1, 32
PBKDF2_ITERATIONS = 600_000


class AccountsError(ValueError):
    """The local accounts file is missing or malformed."""


# --- password hashes ------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """`scrypt$N$r$p$<salt b64>$<hash b64>` (stdlib hashlib.scrypt)."""
    if not password:
        raise ValueError("empty password")
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=SCRYPT_LEN
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check against a `scrypt$...` or `pbkdf2_sha256$iterations$salt$hash`
    string; a malformed hash never verifies."""
    try:
        scheme, *parts = stored.split("$")
        if scheme == "scrypt" and len(parts) == 5:
            n, r, p = (int(x) for x in parts[:3])
            salt, want = base64.b64decode(parts[3]), base64.b64decode(parts[4])
            got = hashlib.scrypt(
                password.encode("utf-8"),
                salt=salt,
                n=n,
                r=r,
                p=p,
                dklen=len(want),
                maxmem=2 * 128 * r * n + 2**20,
            )
        elif scheme == "pbkdf2_sha256" and len(parts) == 3:
            salt, want = base64.b64decode(parts[1]), base64.b64decode(parts[2])
            got = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, int(parts[0]))
        else:
            return False
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


# A hash to check against when the user name is unknown, so that "no such user" and
# "wrong password" take the same time.
_DUMMY_HASH = hash_password("unknown-user", salt=b"\0" * 16)


# --- local accounts -------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    username: str
    name: str
    roles: frozenset[str]
    password_hash: str


def parse_accounts(text: str, *, source: str) -> dict[str, Account]:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AccountsError(f"{source}: not valid TOML: {exc}") from None
    problems: list[str] = []
    accounts: dict[str, Account] = {}
    body = raw.get("accounts")
    if not isinstance(body, Mapping) or not body:
        raise AccountsError(f"{source}: needs an [accounts.<username>] table per account")
    for username, acc in body.items():
        if not isinstance(acc, Mapping):
            problems.append(f"accounts.{username} must be a table")
            continue
        roles = acc.get("roles")
        pw = acc.get("password_hash")
        if not isinstance(roles, list) or not roles or not set(roles) <= set(ROLES):
            problems.append(f"accounts.{username}.roles must be a non-empty list of {ROLES}")
            continue
        if not isinstance(pw, str) or not pw.startswith(("scrypt$", "pbkdf2_sha256$")):
            problems.append(
                f"accounts.{username}.password_hash must be a scrypt or pbkdf2_sha256 hash "
                "(never a password)"
            )
            continue
        accounts[username] = Account(
            username, str(acc.get("name") or username), frozenset(roles), pw
        )
    if problems:
        raise AccountsError(f"{source}: " + "; ".join(problems))
    return accounts


def load_accounts(
    config: PortalConfig, environ: Mapping[str, str] | None = None
) -> dict[str, Account]:
    env = os.environ if environ is None else environ
    if config.accounts_env:
        text = env.get(config.accounts_env)
        if not text:
            raise AccountsError(f"${config.accounts_env} (named in the config) is not set")
        return parse_accounts(text, source=f"${config.accounts_env}")
    if config.accounts_file is None:
        raise AccountsError("no accounts file or accounts variable is configured")
    try:
        text = Path(config.accounts_file).read_text(encoding="utf-8")
    except OSError as exc:
        raise AccountsError(f"cannot read {config.accounts_file}: {exc.strerror}") from None
    return parse_accounts(text, source=str(config.accounts_file))


def check_local(accounts: Mapping[str, Account], username: str, password: str) -> User | None:
    account = accounts.get(username.strip())
    ok = verify_password(password, account.password_hash if account else _DUMMY_HASH)
    if account is None or not ok:
        return None
    return User(account.username, account.name, account.roles, "local")


# --- demo accounts ---------------------------------------------------------------------

DEMO_ACCOUNTS: dict[str, User] = {
    role: User(f"demo-{role}", f"Demo {ROLE_TITLES[role].lower()}", frozenset({role}), "demo")
    for role in ROLES
}


def demo_user(config: PortalConfig, role: str) -> User:
    """A demo account; refused outside demo mode."""
    if not config.demo or config.auth_mode != "demo":
        raise PermissionError("demo accounts exist only in demo mode (PORTAL_DEMO=1)")
    return DEMO_ACCOUNTS[role]


# --- OpenID Connect ------------------------------------------------------------------------


def oidc_user(claims: Mapping[str, Any], config: PortalConfig) -> User:
    """The portal user for the claims of a signed-in OIDC identity (possibly no roles)."""
    raw = claims.get(config.roles_claim) or ()
    values = [raw] if isinstance(raw, str) else [str(v) for v in raw]
    roles = roles_from_claims(values, dict(config.role_map))
    user_id = str(
        claims.get("email") or claims.get("preferred_username") or claims.get("sub") or "unknown"
    )
    return User(user_id, str(claims.get("name") or user_id), roles, "oidc")


def oidc_available() -> bool:
    """st.login needs Authlib (the `streamlit[auth]` extra)."""
    return importlib.util.find_spec("authlib") is not None


# --- the session ---------------------------------------------------------------------------


def current_user(config: PortalConfig) -> User | None:
    """The signed-in user of this session, or None."""
    if config.auth_mode == "oidc":
        if not st.user.get("is_logged_in"):
            return None
        return oidc_user(st.user.to_dict(), config)
    user = st.session_state.get(SESSION_USER)
    if not isinstance(user, User) or user.method != config.auth_mode:
        return None
    return user


def sign_in(user: User) -> None:
    st.session_state[SESSION_USER] = user
    st.session_state.pop(SESSION_FAILURES, None)


def sign_out(config: PortalConfig) -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    if config.auth_mode == "oidc":
        st.logout()


def locked_out() -> float:
    """Seconds until this session may try a password again (0: it may)."""
    failures: list[float] = st.session_state.get(SESSION_FAILURES, [])
    recent = [t for t in failures if time.monotonic() - t < LOCKOUT_SECONDS]
    if len(recent) < MAX_FAILURES:
        return 0.0
    return LOCKOUT_SECONDS - (time.monotonic() - recent[0])


def record_failure() -> None:
    failures: list[float] = st.session_state.get(SESSION_FAILURES, [])
    st.session_state[SESSION_FAILURES] = [*failures[-(MAX_FAILURES - 1) :], time.monotonic()]


def main() -> None:  # pragma: no cover - interactive
    """Print a password hash for an accounts file (the password is read without echo)."""
    import getpass

    first = getpass.getpass("New password: ")
    if first != getpass.getpass("Repeat it: "):
        raise SystemExit("the passwords differ")
    if len(first) < 12:
        raise SystemExit("use at least 12 characters")
    print(hash_password(first))


if __name__ == "__main__":  # pragma: no cover
    main()
