"""Local accounts: the accounts file, argon2 password hashes, and the legacy hashes that still
verify.

The accounts file lives with the release service (never the portal's web process), outside
the repo, and holds hashes, never passwords::

    [accounts.jsmith]
    name = "Jo Smith"
    roles = ["planner"]
    password_hash = "$argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>"

`portal accounts hash` prints a new hash. Hashes are argon2id (argon2-cffi's defaults, the
RFC 9106 second recommended option: 64 MiB, 3 passes, 4 lanes). Older `scrypt$...` and
`pbkdf2_sha256$...` hashes still verify; the service re-hashes them with argon2 on the next
successful sign-in (see `portal.service.signin`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

ROLES: tuple[str, ...] = ("planner", "researcher", "leadership", "admin")
ARGON2_PREFIX = "$argon2id$"
LEGACY_PREFIXES = ("scrypt$", "pbkdf2_sha256$")
MIN_PASSWORD_LENGTH = 12

# One hasher for the process; tests may swap in cheaper parameters.
HASHER = PasswordHasher()


class AccountsError(ValueError):
    """The local accounts file (or variable) is missing or malformed."""


@dataclass(frozen=True)
class Account:
    username: str
    name: str
    roles: frozenset[str]
    password_hash: str = ""

    def __repr__(self) -> str:  # the hash never reaches a log through a repr
        return f"Account({self.username!r}, roles={sorted(self.roles)})"


# --- hashes -------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """A new argon2id hash of `password`."""
    if not password:
        raise ValueError("empty password")
    return HASHER.hash(password)


def _legacy_ok(password: str, stored: str) -> bool:
    """scrypt$N$r$p$salt$hash or pbkdf2_sha256$iterations$salt$hash (the portal's hashes
    before argon2), checked in constant time; a malformed hash never verifies."""
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


def verify_password(password: str, stored: str) -> bool:
    """True if `password` matches the argon2, scrypt or pbkdf2 hash `stored`."""
    if stored.startswith(ARGON2_PREFIX):
        try:
            return HASHER.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
    return _legacy_ok(password, stored)


def needs_rehash(stored: str) -> bool:
    """A legacy hash, or an argon2 hash made with weaker parameters than today's."""
    if not stored.startswith(ARGON2_PREFIX):
        return True
    try:
        return HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def hash_digest(stored: str) -> str:
    """SHA-256 of a stored hash string: identifies which hash an upgrade replaced."""
    return hashlib.sha256(stored.encode("utf-8")).hexdigest()


# A hash to check when the user name is unknown, so that "no such user" costs the same as
# "wrong password". Made once, lazily (argon2 takes a fifth of a second).
_DUMMY: list[str] = []


def dummy_hash() -> str:
    if not _DUMMY:
        _DUMMY.append(HASHER.hash(os.urandom(16).hex()))
    return _DUMMY[0]


# --- the accounts file -----------------------------------------------------------------------


def normalise_username(username: str) -> str:
    return username.strip().lower()


def parse_accounts(text: str, *, source: str) -> dict[str, Account]:
    """Accounts from TOML text; every problem is reported at once (never a hash)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AccountsError(f"{source}: not valid TOML: {exc}") from None
    body = raw.get("accounts")
    if not isinstance(body, Mapping) or not body:
        raise AccountsError(f"{source}: needs an [accounts.<username>] table per account")
    problems: list[str] = []
    accounts: dict[str, Account] = {}
    for username, acc in body.items():
        key = normalise_username(str(username))
        if not isinstance(acc, Mapping):
            problems.append(f"accounts.{username} must be a table")
            continue
        roles = acc.get("roles")
        pw = acc.get("password_hash")
        mine: list[str] = []
        if not isinstance(roles, list) or not roles or not set(roles) <= set(ROLES):
            mine.append(f"accounts.{username}.roles must be a non-empty list of {ROLES}")
        if not isinstance(pw, str) or not pw.startswith((ARGON2_PREFIX, *LEGACY_PREFIXES)):
            mine.append(
                f"accounts.{username}.password_hash must be an argon2id hash from "
                "`portal accounts hash` (scrypt and pbkdf2_sha256 hashes are still accepted), "
                "never a password"
            )
        if key in accounts:
            mine.append(f"accounts.{username} repeats the user name {key!r}")
        problems.extend(mine)
        if not mine and isinstance(roles, list) and isinstance(pw, str):
            accounts[key] = Account(key, str(acc.get("name") or username), frozenset(roles), pw)
    if problems:
        raise AccountsError(f"{source}: " + "; ".join(problems))
    return accounts


def load_accounts(
    accounts_file: Path | None, accounts_env: str | None, environ: Mapping[str, str]
) -> dict[str, Account]:
    """The accounts from the variable or file the service's configuration names (read at
    every sign-in, so an edited file takes effect without a restart)."""
    if accounts_env:
        text = environ.get(accounts_env)
        if not text:
            raise AccountsError(f"${accounts_env} (named in the configuration) is not set")
        return parse_accounts(text, source=f"${accounts_env}")
    if accounts_file is None:
        raise AccountsError("no accounts file or accounts variable is configured")
    try:
        text = Path(accounts_file).read_text(encoding="utf-8")
    except OSError as exc:
        raise AccountsError(f"cannot read {accounts_file}: {exc.strerror}") from None
    return parse_accounts(text, source=str(accounts_file))
