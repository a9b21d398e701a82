"""Keyed pseudonyms: HMAC-SHA256 under a key derived per research project.

The master key lives outside every zone: an environment variable or a key file,
never the repository, the store or a log. Each research project gets its own key,
derived with HKDF-SHA256 (RFC 5869) from the master key and the project's name,
so the same person has unrelated pseudonyms in two projects' extracts and the
extracts cannot be joined on them.

Key objects never show their secret: ``repr``/``str`` give the source and a short
fingerprint (a keyed hash that identifies which key was used, for the audit log),
and they refuse to be pickled, so a cache or a store cannot swallow one by accident.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import os
import secrets
import stat
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, NoReturn

import polars as pl

from registry.settings import ServiceSettings

__all__ = [
    "DEFAULT_DEMO_KEY_FILE",
    "KEY_BYTES",
    "MasterKey",
    "MissingKeyError",
    "ProjectKey",
    "PseudonymKeyError",
    "WeakKeyError",
    "derive_project_key",
    "hkdf_sha256",
    "load_master_key",
    "pseudonymise_series",
]

log = logging.getLogger(__name__)

KEY_BYTES = 32
"""Minimum key length: 256 bits, the HMAC-SHA256 block-size-safe choice."""

PSEUDONYM_HEX_CHARS = 32
"""Pseudonyms keep 128 bits of the HMAC: collisions are negligible below 10^18 values."""

DEFAULT_DEMO_KEY_FILE = Path("data/demo/pseudonym.key")
_HKDF_SALT = b"council-research-portal/pseudonym-salt/v1"
_HKDF_INFO = b"council-research-portal/project-key/v1:"
_FINGERPRINT_INFO = b"council-research-portal/key-fingerprint/v1"

KeySource = Literal["environment", "file", "generated"]


class PseudonymKeyError(ValueError):
    """The pseudonymisation key cannot be used."""


class MissingKeyError(PseudonymKeyError):
    """No pseudonymisation key was supplied, and production mode never invents one."""


class WeakKeyError(PseudonymKeyError):
    """The pseudonymisation key is too short or not in a recognised encoding."""


class _Secret:
    """Holds key bytes; shows only a fingerprint; refuses to be pickled or compared by value."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        self._secret = bytes(secret)

    @property
    def secret(self) -> bytes:
        return self._secret

    @property
    def fingerprint(self) -> str:
        """Eight bytes of a keyed hash: names the key in audit records without revealing it."""
        return hmac.digest(self._secret, _FINGERPRINT_INFO, "sha256")[:8].hex()

    def __reduce__(self) -> NoReturn:
        raise TypeError(f"{type(self).__name__} cannot be pickled: keys never leave the process")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Secret):
            return NotImplemented
        return hmac.compare_digest(self._secret, other._secret)

    def __hash__(self) -> int:
        return hash(self.fingerprint)


class MasterKey(_Secret):
    """The portal's master pseudonymisation key."""

    __slots__ = ("source",)

    def __init__(self, secret: bytes, source: KeySource) -> None:
        if len(secret) < KEY_BYTES:
            raise WeakKeyError(
                f"the pseudonymisation key has {len(secret) * 8} bits; at least {KEY_BYTES * 8} "
                "are required"
            )
        super().__init__(secret)
        self.source = source

    def __repr__(self) -> str:
        return f"MasterKey(source={self.source!r}, fingerprint={self.fingerprint!r})"

    __str__ = __repr__

    def project_key(self, project: str) -> ProjectKey:
        """The key for one research project (see :func:`derive_project_key`)."""
        return ProjectKey(derive_project_key(self, project), _normalise_project(project))


class ProjectKey(_Secret):
    """A per-project pseudonymisation key."""

    __slots__ = ("project",)

    def __init__(self, secret: bytes, project: str) -> None:
        super().__init__(secret)
        self.project = project

    def __repr__(self) -> str:
        return f"ProjectKey(project={self.project!r}, fingerprint={self.fingerprint!r})"

    __str__ = __repr__


def hkdf_sha256(ikm: bytes, *, salt: bytes, info: bytes, length: int = KEY_BYTES) -> bytes:
    """HKDF-SHA256 (RFC 5869): extract with ``salt``, expand with ``info`` to ``length`` bytes."""
    if not 0 < length <= 255 * 32:
        raise ValueError("HKDF-SHA256 output length must be 1..8160 bytes")
    prk = hmac.digest(salt or bytes(32), ikm, "sha256")
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac.digest(prk, block + info + bytes([counter]), "sha256")
        out += block
        counter += 1
    return out[:length]


def _normalise_project(project: str) -> str:
    name = unicodedata.normalize("NFC", project).strip()
    if not name:
        raise ValueError("a research project needs a non-empty name to derive its key")
    return name


def derive_project_key(master: bytes | MasterKey, project: str) -> bytes:
    """The 256-bit key for ``project``: HKDF-SHA256 of the master key with the name as info.

    The name is Unicode-normalised (NFC) and stripped; otherwise it is used exactly, so
    ``"Project A"`` and ``"project a"`` are different projects with unrelated keys.
    """
    secret = master.secret if isinstance(master, _Secret) else bytes(master)
    if len(secret) < KEY_BYTES:
        raise WeakKeyError(f"the master key must have at least {KEY_BYTES * 8} bits")
    info = _HKDF_INFO + _normalise_project(project).encode("utf-8")
    return hkdf_sha256(secret, salt=_HKDF_SALT, info=info)


def _decode_key_text(text: str, where: str) -> bytes:
    value = text.strip()
    if not value:
        raise MissingKeyError(f"the pseudonymisation key in {where} is empty")
    try:
        if len(value) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in value):
            secret = bytes.fromhex(value)
        else:
            padded = value + "=" * (-len(value) % 4)
            secret = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (ValueError, binascii.Error):
        raise WeakKeyError(
            f"the pseudonymisation key in {where} is neither hex nor base64"
        ) from None
    if len(secret) < KEY_BYTES:
        raise WeakKeyError(
            f"the pseudonymisation key in {where} has {len(secret) * 8} bits; at least "
            f"{KEY_BYTES * 8} are required (make one with: python -c "
            "'import secrets; print(secrets.token_hex(32))')"
        )
    return secret


def _read_key_file(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise MissingKeyError(f"the pseudonymisation key file {path} does not exist") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("pseudonymisation key file %s is readable by other users; chmod 600 it", path)
    return _decode_key_text(path.read_text(encoding="utf-8"), f"key file {path}")


def _write_demo_key(path: Path) -> bytes:
    secret = secrets.token_bytes(KEY_BYTES)
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: never overwrite a key someone else just wrote; 0600 from the first byte.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secret.hex() + "\n")
    return secret


def load_master_key(
    *,
    demo: bool,
    key_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> MasterKey:
    """Load the master key from ``key_file`` or $PORTAL_PSEUDONYM_KEY (read through
    `registry.settings.ServiceSettings` from ``environ``, default the process's).

    Production (``demo=False``): an explicit ``key_file`` must exist; otherwise ``env_var``
    must be set. A missing key raises :class:`MissingKeyError`: there is no default key.

    Demo (``demo=True``): the environment variable wins if set; then the key file
    (``key_file`` or ``data/demo/pseudonym.key``) if it exists; otherwise a fresh random
    key is written there (mode 0600) and a warning says so, naming the file, never the key.
    """
    env_var = "PORTAL_PSEUDONYM_KEY"
    configured = ServiceSettings.load(environ).pseudonym_key
    env_value = configured.get_secret_value() if configured is not None else ""
    if not demo:
        if key_file is not None:
            return MasterKey(_read_key_file(Path(key_file)), "file")
        if env_value.strip():
            return MasterKey(_decode_key_text(env_value, f"${env_var}"), "environment")
        raise MissingKeyError(
            f"no pseudonymisation key: set ${env_var} or pass a key file. Production mode "
            "never generates or defaults a key (use demo mode for a throwaway local key)."
        )
    if env_value.strip():
        return MasterKey(_decode_key_text(env_value, f"${env_var}"), "environment")
    path = Path(key_file) if key_file is not None else DEFAULT_DEMO_KEY_FILE
    if path.exists():
        return MasterKey(_read_key_file(path), "file")
    secret = _write_demo_key(path)
    key = MasterKey(secret, "generated")
    log.warning(
        "demo mode: generated a new local pseudonymisation key in %s (fingerprint %s); "
        "pseudonyms made with it are for demonstration only",
        path,
        key.fingerprint,
    )
    return key


def pseudonymise_series(
    s: pl.Series, key: bytes | ProjectKey | MasterKey, prefix: str = ""
) -> pl.Series:
    """Replace each value by ``prefix`` + 32 hex characters of HMAC-SHA256(key, value).

    Nulls stay null. Values are hashed as their UTF-8 text exactly as given (standardise
    identifiers first: ``"A1"`` and ``"a1"`` get different pseudonyms). Each distinct
    value is hashed once, so repeated identifiers cost nothing extra.
    """
    secret = key.secret if isinstance(key, _Secret) else bytes(key)
    if len(secret) < KEY_BYTES:
        raise WeakKeyError(f"pseudonym keys must have at least {KEY_BYTES * 8} bits")
    text = s if s.dtype == pl.String else s.cast(pl.String)
    distinct = text.drop_nulls().unique()
    digest = hmac.digest
    pseudonyms = [
        prefix + digest(secret, value.encode("utf-8"), "sha256")[: PSEUDONYM_HEX_CHARS // 2].hex()
        for value in distinct.to_list()
    ]
    return text.replace_strict(
        distinct, pl.Series(pseudonyms, dtype=pl.String), default=None, return_dtype=pl.String
    ).alias(s.name)
