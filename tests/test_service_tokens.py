"""API clients under OpenID Connect: an access token from the identity provider is
exchanged for a service session. Each check is played as the attack it stops: another
audience's token, another issuer's, an expired one, a forged signature, `alg: none`, an
HMAC token keyed with the published public key, and a rotated key."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from pipelines.store import Store
from portal.service.app import create_app
from portal.service.config import ConfigError, parse_config
from portal.service.tokens import TokenRefused, TokenSettings, TokenVerifier
from tests.service_fixtures import SERVICE_TOKEN, service_config, small_release

ISSUER = "https://idp.council.example/tenant/v2.0"
AUDIENCE = "api://council-portal"
SECRET = bytes.fromhex("a7" * 32)


@pytest.fixture(scope="module")
def key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "k1"})


def _jwks(path: Path, *keys: RSAKey) -> Path:
    path.write_text(json.dumps({"keys": [k.as_dict(private=False) for k in keys]}))
    return path


def _token(key: RSAKey, kid: str = "k1", alg: str = "RS256", **change: object) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "svc-powerbi", "exp": now + 600,
              "iat": now, "groups": ["portal-planners"], "name": "Power BI refresh"}  # fmt: skip
    claims |= change
    return jwt.encode({"alg": alg, "kid": kid}, {k: v for k, v in claims.items() if v is not None},
                      key)  # fmt: skip


def _b64(doc: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")


def test_a_token_is_accepted_only_if_every_check_passes(tmp_path, key):
    v = TokenVerifier(TokenSettings(ISSUER, AUDIENCE, str(_jwks(tmp_path / "k.json", key))))
    assert v.verify(_token(key))["sub"] == "svc-powerbi"
    assert v.verify(_token(key, aud=["other", AUDIENCE]))["sub"] == "svc-powerbi"
    now = int(time.time())
    forger = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    hmac_key = OctKey.import_key(json.dumps(key.as_dict(private=False)).encode())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": now + 600}
    attacks = {
        "another audience": _token(key, aud="api://another-app"),
        "another issuer": _token(key, iss="https://evil.example"),
        "expired": _token(key, exp=now - 3600, iat=now - 7200),
        "no subject": _token(key, sub=None),
        "not yet valid": _token(key, nbf=now + 3600),
        "issued in the future": _token(key, iat=now + 3600),
        "no expiry": _token(key, exp=None),
        "forged signature": _token(forger),
        "alg none": f"{_b64({'alg': 'none'})}.{_b64(claims)}.",
        "HMAC with the public key": jwt.encode({"alg": "HS256", "kid": "k1"}, claims, hmac_key),
        "not a token": "not-a-token",
    }
    for what, token in attacks.items():
        with pytest.raises(TokenRefused) as refused:
            v.verify(token)
        assert token not in str(refused.value) or not token, what


def test_a_rotated_key_is_fetched_again_but_not_on_every_unknown_key(key):
    new = RSAKey.generate_key(2048, parameters={"kid": "k2"})
    published = {"keys": [key.as_dict(private=False)]}
    fetched: list[str] = []
    clock = [1_000_000.0]

    def fetch(url: str) -> str:
        fetched.append(url)
        return json.dumps(published)

    v = TokenVerifier(
        TokenSettings(ISSUER, AUDIENCE, "https://idp.council.example/keys"),
        fetch=fetch,
        clock=lambda: clock[0],
    )
    now = int(clock[0])
    assert v.verify(_token(key, iat=now, exp=now + 600))
    assert len(fetched) == 1
    # The provider rotates to k2. Within a minute of the last fetch an unknown key id does
    # not fetch again (a stream of junk key ids cannot hammer the provider) ...
    published = {"keys": [key.as_dict(private=False), new.as_dict(private=False)]}
    with pytest.raises(TokenRefused):
        v.verify(_token(new, kid="k2", iat=now, exp=now + 600))
    assert len(fetched) == 1
    # ... after it, the new key is fetched once and used.
    clock[0] += 61
    now = int(clock[0])
    assert v.verify(_token(new, kid="k2", iat=now, exp=now + 600))
    assert v.verify(_token(new, kid="k2", iat=now, exp=now + 600))
    assert len(fetched) == 2
    # A key set at a plain http address is refused (it could be swapped on the way).
    plain = TokenVerifier(TokenSettings(ISSUER, AUDIENCE, "http://idp.example/keys"), fetch=fetch)
    with pytest.raises(TokenRefused, match="https"):
        plain.verify(_token(key))


def _oidc_raw(jwks: Path) -> dict:
    return {
        "auth": {
            "mode": "oidc",
            "role_map": {"portal-planners": "planner"},
            "api_token_issuer": ISSUER,
            "api_token_audience": AUDIENCE,
            "api_token_jwks": str(jwks),
        }
    }


def test_the_service_exchanges_a_token_for_a_session_that_ends_with_it(db_url, tmp_path, key):
    small_release(db_url, data_as_at=datetime(2025, 3, 31, tzinfo=UTC).date())
    jwks = _jwks(tmp_path / "keys.json", key)
    config = service_config(db_url, raw=_oidc_raw(jwks))
    store = Store(db_url)
    app = create_app(config, sdc_secret=SECRET, service_token=SERVICE_TOKEN, store=store)
    with TestClient(app) as client:
        exp = int(time.time()) + 300
        token = _token(key, exp=exp)
        r = client.post("/v1/sessions/token", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        session = r.json()["token"]
        assert session != token
        me = client.get("/v1/session", headers={"Authorization": f"Bearer {session}"}).json()
        assert me["user_id"] == "svc-powerbi" and me["roles"] == ["planner"]
        # The session ends when the token does (not the 12 hours of a browser session).
        rows = store.read_audit(action="sign_in")
        assert json.loads(rows["detail"][0])["client"] == "api"
        from pipelines.store_auth import auth_sessions

        with store.engine.connect() as conn:
            ends = conn.execute(auth_sessions.select()).mappings().one()["expires_at"]
        ends = ends if ends.tzinfo else ends.replace(tzinfo=UTC)
        assert ends <= datetime.fromtimestamp(exp, UTC)
        # A token for another audience is refused and audited with the reason, never the
        # token itself; so is no token at all.
        bad = _token(key, aud="api://another-app")
        r = client.post("/v1/sessions/token", headers={"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401 and r.json()["detail"]["error"] == "bad_token"
        failed = store.read_audit(action="sign_in_failed")
        assert failed.height == 1 and "aud" in failed["detail"][0]
        assert bad not in failed["detail"][0] and bad.split(".")[2] not in r.text
        assert client.post("/v1/sessions/token").status_code == 401
    store.dispose()


def test_tokens_are_refused_where_they_are_not_configured(db_url, tmp_path, key):
    config = service_config(
        db_url, raw={"auth": {"mode": "oidc", "role_map": {"portal-planners": "planner"}}}
    )
    store = Store(db_url)
    app = create_app(config, sdc_secret=SECRET, service_token=SERVICE_TOKEN, store=store)
    with TestClient(app) as client:
        r = client.post("/v1/sessions/token", headers={"Authorization": f"Bearer {_token(key)}"})
        assert r.status_code == 400 and r.json()["detail"]["error"] == "not_available"
    store.dispose()


def test_token_settings_are_checked_together(tmp_path):
    raw = _oidc_raw(tmp_path / "keys.json")
    del raw["auth"]["api_token_audience"]
    raw["auth"]["api_token_jwks"] = "http://idp.example/keys"
    with pytest.raises(ConfigError) as bad:
        parse_config(raw, env={}, demo=False, store_url="sqlite://", work_dir=None)
    text = str(bad.value)
    assert "api_token_audience" in text and "https" in text
    local = {"auth": {"mode": "local", "accounts_file": "a.toml", "api_token_issuer": ISSUER,
                      "api_token_audience": AUDIENCE, "api_token_jwks": "k.json"}}  # fmt: skip
    with pytest.raises(ConfigError, match="oidc"):
        parse_config(local, env={}, demo=False, store_url="sqlite://", work_dir=None)
