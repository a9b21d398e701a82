"""Access tokens from the council's identity provider, for API clients (R, Power BI).

Under OpenID Connect the portal's users sign in through the browser (`st.login`), and
nobody has a local password. A script or a report tool gets an access token from the same
identity provider (client credentials or device code) and exchanges it at
`POST /v1/sessions/token` for an ordinary service session, with the roles the service's
own role map gives the token's claims: the same sessions, idle timeout, audit and
sign-out as any other.

What a token must be to be accepted (anything else is refused, with a reason that names
the check and never echoes the token):
- a JWS signed by a key in the provider's published key set (JWKS), with an asymmetric
  algorithm (RS256/384/512, PS256/384/512, ES256/384/512, EdDSA): no `none`, and no HMAC,
  which would let anyone holding the public key forge tokens;
- issued by the configured issuer (`iss`), for the configured audience (`aud`), with a
  subject (`sub`), not expired (`exp`), not used before `nbf` or issued in the future
  (`iat`), with a minute's leeway for clocks.

The key set comes from a file or an https address (the provider's `jwks_uri`); fetched
keys are kept for an hour, and a token signed with an unknown key id fetches them again
at most once a minute, so a key rotation at the provider is picked up without a restart.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
)  # fmt: skip
LEEWAY_SECONDS = 60
KEYS_FRESH_SECONDS = 3600
REFETCH_GAP_SECONDS = 60
MAX_TOKEN_LENGTH = 16_000


class TokenRefused(Exception):
    """The access token was not accepted; the message names the check, never the token."""


@dataclass(frozen=True)
class TokenSettings:
    issuer: str
    audience: str
    jwks: str  # a file path, or an https:// address


def _fetch_url(url: str) -> str:
    import httpx  # only services that take tokens from a URL need it loaded

    response = httpx.get(url, timeout=10.0, follow_redirects=False)
    response.raise_for_status()
    return response.text


class TokenVerifier:
    """Checks access tokens against one issuer, audience and key set (thread-safe)."""

    def __init__(
        self,
        settings: TokenSettings,
        *,
        fetch: Callable[[str], str] = _fetch_url,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._fetch = fetch
        self._clock = clock
        self._keys: KeySet | None = None
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def _load(self) -> KeySet:
        source = self.settings.jwks
        try:
            if source.startswith("https://"):
                text = self._fetch(source)
            elif "://" in source:
                raise TokenRefused("the key set address must be https")
            else:
                text = Path(source).read_text(encoding="utf-8")
            return KeySet.import_key_set(json.loads(text))
        except TokenRefused:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure to get keys refuses the token
            raise TokenRefused(
                f"the identity provider's keys could not be read ({type(exc).__name__})"
            ) from None

    def _key_set(self, kid: str | None) -> KeySet:
        now = self._clock()
        with self._lock:
            keys, age = self._keys, now - self._loaded_at
            known = keys is not None and (kid is None or _has_kid(keys, kid))
            if keys is not None and known and age < KEYS_FRESH_SECONDS:
                return keys
            if keys is not None and not known and age < REFETCH_GAP_SECONDS:
                return keys  # an unknown key id within a minute of a fetch: do not hammer
            self._keys, self._loaded_at = self._load(), now
            return self._keys

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, once every check has passed; raises TokenRefused."""
        token = token.strip()
        if not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise TokenRefused("not a signed token (JWS compact form)")
        try:
            header = json.loads(_b64decode(token.split(".", 1)[0]))
        except ValueError:
            raise TokenRefused("the token's header is not readable") from None
        if not isinstance(header, dict) or header.get("alg") not in ALGORITHMS:
            raise TokenRefused("the token is not signed with an accepted algorithm")
        kid = header.get("kid")
        keys = self._key_set(str(kid) if kid is not None else None)
        try:
            decoded = jwt.decode(token, keys, algorithms=list(ALGORITHMS))
        except JoseError as exc:
            raise TokenRefused(f"the token's signature does not verify ({exc.error})") from None
        except ValueError:
            raise TokenRefused("the token's signature does not verify") from None
        claims = dict(decoded.claims)
        registry = jwt.JWTClaimsRegistry(
            now=int(self._clock()),
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": self.settings.issuer},
            aud={"essential": True, "value": self.settings.audience},
            sub={"essential": True},
            exp={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise TokenRefused(
                f"the token's claims are not accepted ({exc.error}: {exc.description})"
            ) from None
        return claims


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(k.kid == kid for k in keys.keys)


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
