"""The release service's configuration: the environment, the TOML file named by
$PORTAL_CONFIG, and the command line of `portal serve`.

Environment (the service's only; the portal's web process gets none of these):
    PORTAL_STORE_URL            the release store (default: SQLite under data/)
    PORTAL_WORK_DIR             the pipeline's work folder (admin figures, research extracts)
    PORTAL_SDC_SECRET[_FILE]    the disclosure-control secret
    PORTAL_PSEUDONYM_KEY        the pseudonymisation master key (research extracts only)
    PORTAL_SERVICE_TOKEN[_FILE] the credential the portal presents (32+ characters)
    PORTAL_CONFIG               the TOML file below
    PORTAL_ACCOUNTS_FILE        shortcut for [auth] mode = "local", accounts_file = ...
    PORTAL_DEMO=1               demo mode (refused under any production configuration)

They are read through `registry.settings.ServiceSettings` (typed, secrets as SecretStr,
a misspelt PORTAL_* variable is an error); the config file is validated here.

Config file (every key optional; unknown keys are errors, all reported together)::

    [portal]
    contact = "research.statistics@council.example"

    [auth]
    mode = "oidc"                 # "oidc" (the portal's st.login) or "local" (accounts file)
    provider = "entra"            # st.login provider: [auth.entra] in the portal's secrets
    roles_claim = "groups"        # the ID token claim that carries groups or roles
    accounts_file = "/etc/council-portal/accounts.toml"   # local mode, or:
    accounts_env = "PORTAL_ACCOUNTS"                       # a variable holding that TOML
    idle_timeout_minutes = 30     # a session unused this long ends
    session_hours = 12            # and none lasts longer than this
    # OIDC only: API clients (R, Power BI) exchange the provider's access token for a
    # session at POST /v1/sessions/token (portal.service.tokens). All three, or none.
    api_token_issuer = "https://login.microsoftonline.com/<tenant>/v2.0"
    api_token_audience = "api://council-portal"
    api_token_jwks = "https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys"

    [auth.role_map]               # claim value -> portal role(s); anything else: no access
    "portal-planners" = "planner"
    "portal-leadership" = ["leadership", "planner"]
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pipelines.store import default_store_url
from portal.service.accounts import ROLES
from registry.settings import ServiceSettings, SettingsError

AUTH_MODES = ("demo", "local", "oidc")
DEFAULT_CONTACT = "the council's research and statistics team"
SERVICE_TOKEN_ENV = "PORTAL_SERVICE_TOKEN"  # noqa: S105 - a variable's name, not a secret
SERVICE_TOKEN_FILE_ENV = "PORTAL_SERVICE_TOKEN_FILE"  # noqa: S105
MIN_SERVICE_TOKEN_LENGTH = 32

_KEYS: dict[str, set[str]] = {
    "portal": {"contact"},
    "auth": {
        "mode",
        "provider",
        "roles_claim",
        "accounts_file",
        "api_token_issuer",
        "api_token_audience",
        "api_token_jwks",
        "accounts_env",
        "role_map",
        "idle_timeout_minutes",
        "session_hours",
    },
}


class ConfigError(ValueError):
    """The service configuration is missing, malformed or contradictory."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid portal configuration {source}:\n{lines}")


class DemoRefusedError(ConfigError):
    """Demo mode was asked for where a production sign-in or store is configured."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("(demo mode)", reasons)
        lines = "\n".join(f"  - {p}" for p in reasons)
        self.args = (
            "DEMO MODE REFUSED: demo accounts give one-click administrator access, and this "
            f"machine has a production configuration:\n{lines}\n"
            "Remove PORTAL_DEMO / --demo, or run the demo where none of these is set.",
        )


class ServiceTokenError(ValueError):
    """No usable service credential is configured."""


@dataclass(frozen=True)
class ServiceConfig:
    demo: bool
    store_url: str
    work_dir: Path | None
    auth_mode: str | None  # None: sign-in is not configured, so nobody gets in
    oidc_provider: str | None = None
    roles_claim: str = "groups"
    role_map: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    accounts_file: Path | None = None
    accounts_env: str | None = None
    contact: str = DEFAULT_CONTACT
    idle_timeout: timedelta = timedelta(minutes=30)
    max_session: timedelta = timedelta(hours=12)
    # Lockout: this many failures lock the account for lock_seconds, doubling with every
    # further failure, never longer than lock_cap_seconds.
    max_failures: int = 5
    lock_seconds: int = 60
    lock_cap_seconds: int = 3600
    # Access tokens for API clients under OIDC: issuer, audience and key set (file or https).
    api_token_issuer: str | None = None
    api_token_audience: str | None = None
    api_token_jwks: str | None = None
    source: str = "environment"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _secrets_files(cwd: Path, home: Path | None) -> list[Path]:
    files = [cwd / ".streamlit" / "secrets.toml"]
    if home is not None:
        files.append(home / ".streamlit" / "secrets.toml")
    return files


def streamlit_auth_configured(cwd: Path, home: Path | None) -> Path | None:
    """The Streamlit secrets file that holds an [auth] (OpenID Connect) section, if any."""
    for path in _secrets_files(cwd, home):
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            continue
        if "auth" in raw:
            return path
    return None


def production_signals(
    raw: Mapping[str, Any],
    env: Mapping[str, str],
    store_url: str,
    *,
    cwd: Path,
    home: Path | None,
) -> list[str]:
    """Every sign of a production deployment: each one refuses demo mode."""
    signals: list[str] = []
    auth = raw.get("auth") if isinstance(raw.get("auth"), Mapping) else {}
    assert isinstance(auth, Mapping)
    mode = auth.get("mode")
    if mode in ("oidc", "local"):
        signals.append(f"the configuration sets [auth] mode = {mode!r}")
    for key in ("accounts_file", "accounts_env"):
        if auth.get(key):
            signals.append(f"the configuration names auth.{key}")
    if _settings(env).accounts_file is not None:
        signals.append("PORTAL_ACCOUNTS_FILE is set")
    secrets_file = streamlit_auth_configured(cwd, home)
    if secrets_file is not None:
        signals.append(f"{secrets_file} has an [auth] (OpenID Connect) section")
    backend = sa.make_url(store_url).get_backend_name()
    if backend != "sqlite":
        signals.append(f"the store is {backend}, not a local SQLite file")
    return signals


def load_config(
    environ: Mapping[str, str] | None = None,
    *,
    demo: bool | None = None,
    store_url: str | None = None,
    work_dir: Path | None = None,
    cwd: Path | None = None,
    home: Path | None = None,
) -> ServiceConfig:
    """The service's settings; command-line values (`portal serve`) win over the environment.

    Raises DemoRefusedError when demo mode meets a production configuration, ConfigError
    for anything else that is wrong (every problem at once)."""
    env = _environment(environ)
    settings = _settings(env)
    demo = settings.demo if demo is None else demo
    url = store_url or default_store_url(settings)
    work = work_dir or settings.work_dir
    if work is None and demo:
        work = Path("data") / "demo" / "work"
    raw: dict[str, Any] = {}
    source = "environment"
    path = str(settings.config) if settings.config else None
    if path:
        source = path
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(path, ["file not found"]) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(path, [f"not valid TOML: {exc}"]) from None
    if demo:
        signals = production_signals(
            raw,
            env,
            url,
            cwd=cwd or Path.cwd(),
            home=home if home is not None else _home(env),
        )
        if signals:
            raise DemoRefusedError(signals)
    return parse_config(raw, env=env, demo=demo, store_url=url, work_dir=work, source=source)


def _environment(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    import os

    # The process environment is read here only to be handed to the settings (and HOME to
    # the demo's production check); values come out of ServiceSettings.
    return os.environ if environ is None else environ


def _settings(env: Mapping[str, str]) -> ServiceSettings:
    try:
        return ServiceSettings.load(env)
    except SettingsError as exc:
        raise ConfigError("(environment)", exc.problems) from None


def _home(env: Mapping[str, str]) -> Path | None:
    home = env.get("HOME")
    return Path(home) if home else None


def parse_config(
    raw: Mapping[str, Any],
    *,
    env: Mapping[str, str],
    demo: bool,
    store_url: str,
    work_dir: Path | None,
    source: str = "<config>",
) -> ServiceConfig:
    problems: list[str] = []
    for section, body in raw.items():
        if section not in _KEYS:
            problems.append(f"unknown section [{section}]")
        elif not isinstance(body, Mapping):
            problems.append(f"[{section}] must be a table")
        else:
            problems.extend(f"unknown key {section}.{k}" for k in body if k not in _KEYS[section])
    portal = raw.get("portal", {}) if isinstance(raw.get("portal"), Mapping) else {}
    auth = raw.get("auth", {}) if isinstance(raw.get("auth"), Mapping) else {}

    def text(body: Mapping[str, Any], section: str, key: str) -> str | None:
        value = body.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{section}.{key} must be non-empty text")
            return None
        return value.strip()

    def number(key: str, default: float) -> float:
        value = auth.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            problems.append(f"auth.{key} must be a positive number")
            return default
        return float(value)

    mode = text(auth, "auth", "mode")
    accounts_file = text(auth, "auth", "accounts_file")
    accounts_env = text(auth, "auth", "accounts_env")
    env_accounts = _settings(env).accounts_file
    if env_accounts is not None:
        accounts_file = str(env_accounts)
        mode = mode or "local"
    if mode is None and (accounts_file or accounts_env):
        mode = "local"
    if demo:
        # Demo accounts exist only in demo mode, and demo mode offers nothing else (and is
        # refused before this point if anything else is configured).
        mode = "demo"
    if mode is not None and mode not in AUTH_MODES:
        problems.append(f"auth.mode must be one of {AUTH_MODES[1:]}, got {mode!r}")
    if mode == "local" and not (accounts_file or accounts_env):
        problems.append("auth.mode = 'local' needs auth.accounts_file or auth.accounts_env")

    role_map: dict[str, tuple[str, ...]] = {}
    raw_map = auth.get("role_map", {})
    if not isinstance(raw_map, Mapping):
        problems.append("auth.role_map must be a table of claim value = role(s)")
        raw_map = {}
    for claim, roles in raw_map.items():
        values = (roles,) if isinstance(roles, str) else roles
        if not isinstance(values, list | tuple) or not all(isinstance(r, str) for r in values):
            problems.append(f"auth.role_map.{claim} must be a role or a list of roles")
            continue
        unknown = [r for r in values if r not in ROLES]
        if unknown:
            problems.append(f"auth.role_map.{claim}: unknown role(s) {unknown}; roles: {ROLES}")
            continue
        role_map[str(claim)] = tuple(values)
    if mode == "oidc" and not role_map:
        problems.append("auth.mode = 'oidc' needs [auth.role_map] (claim value -> role)")
    idle = number("idle_timeout_minutes", 30)
    hours = number("session_hours", 12)
    api_token = {k: text(auth, "auth", k) for k in
                 ("api_token_issuer", "api_token_audience", "api_token_jwks")}  # fmt: skip
    given = [k for k, v in api_token.items() if v]
    if given and len(given) < len(api_token):
        missing = sorted(set(api_token) - set(given))
        problems.append(f"API access tokens need all of {sorted(api_token)}; missing {missing}")
    if given and mode != "oidc":
        problems.append("auth.api_token_* are for auth.mode = 'oidc' only")
    jwks = api_token["api_token_jwks"]
    if jwks and "://" in jwks and not jwks.startswith("https://"):
        problems.append("auth.api_token_jwks must be a file or an https:// address")

    if problems:
        raise ConfigError(source, problems)
    return ServiceConfig(
        demo=demo,
        store_url=store_url,
        work_dir=work_dir,
        auth_mode=mode,
        oidc_provider=text(auth, "auth", "provider"),
        roles_claim=text(auth, "auth", "roles_claim") or "groups",
        role_map=role_map,
        accounts_file=Path(accounts_file) if accounts_file else None,
        accounts_env=accounts_env,
        contact=text(portal, "portal", "contact") or DEFAULT_CONTACT,
        idle_timeout=timedelta(minutes=idle),
        max_session=timedelta(hours=hours),
        api_token_issuer=api_token["api_token_issuer"],
        api_token_audience=api_token["api_token_audience"],
        api_token_jwks=jwks,
        source=source,
    )


def load_service_token(environ: Mapping[str, str] | None = None) -> str:
    """The credential the portal presents: $PORTAL_SERVICE_TOKEN, else the file named by
    $PORTAL_SERVICE_TOKEN_FILE. Never printed, logged or put in an error message."""
    try:
        settings = ServiceSettings.load(_environment(environ))
    except SettingsError as exc:
        raise ServiceTokenError(str(exc)) from None
    if settings.service_token is not None:
        token = settings.service_token.get_secret_value().strip()
        source = f"${SERVICE_TOKEN_ENV}"
    elif settings.service_token_file is not None:
        path = settings.service_token_file
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ServiceTokenError(f"cannot read {path}: {exc.strerror}") from None
        source = str(path)
    else:
        raise ServiceTokenError(
            f"no service credential: set ${SERVICE_TOKEN_ENV} or ${SERVICE_TOKEN_FILE_ENV} "
            "(the same value the portal is given); make one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    if len(token) < MIN_SERVICE_TOKEN_LENGTH:
        raise ServiceTokenError(
            f"the service credential from {source} is {len(token)} characters; "
            f"at least {MIN_SERVICE_TOKEN_LENGTH} needed"
        )
    return token
