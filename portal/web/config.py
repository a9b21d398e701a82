"""Portal settings: the environment plus an optional TOML file named by $PORTAL_CONFIG.

Environment:
    PORTAL_DEMO=1          demo mode: synthetic data, demo accounts (and nothing else)
    PORTAL_STORE_URL       the release store (default: SQLite under data/)
    PORTAL_WORK_DIR        the pipeline's work folder (admin page: run.json and
                           quarantine counts only)
    PORTAL_CONFIG          path to the TOML file below
    PORTAL_ACCOUNTS_FILE   shortcut for [auth] mode = "local", accounts_file = ...

Config file (every key optional; unknown keys are errors, all reported together)::

    [portal]
    contact = "research.statistics@council.example"

    [auth]
    mode = "oidc"                 # "oidc" (st.login) or "local" (accounts file)
    provider = "entra"            # st.login provider: [auth.entra] in .streamlit/secrets.toml
    roles_claim = "groups"        # the ID token claim that carries groups or roles
    accounts_file = "/etc/council-portal/accounts.toml"   # local mode, or:
    accounts_env = "PORTAL_ACCOUNTS"                       # an env var holding that TOML

    [auth.role_map]               # claim value -> portal role(s); anything else: no access
    "portal-planners" = "planner"
    "portal-leadership" = ["leadership", "planner"]

Secrets (OIDC client secret, cookie secret) stay in .streamlit/secrets.toml or the
platform's secret store, never here; password hashes live in the accounts file.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROLES: tuple[str, ...] = ("planner", "researcher", "leadership", "admin")
AUTH_MODES = ("demo", "local", "oidc")
DEFAULT_CONTACT = "the council's research and statistics team"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_SDC_SECRET_FILE = REPO_ROOT / "data" / "demo" / "sdc.key"

_KEYS: dict[str, set[str]] = {
    "portal": {"contact"},
    "auth": {"mode", "provider", "roles_claim", "accounts_file", "accounts_env", "role_map"},
}


class ConfigError(ValueError):
    """The portal configuration is missing, malformed or contradictory."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid portal configuration {source}:\n{lines}")


@dataclass(frozen=True)
class PortalConfig:
    demo: bool
    store_url: str | None  # None: the store's default (SQLite under data/)
    work_dir: Path | None
    auth_mode: str | None  # None: sign-in is not configured, so nobody gets in
    oidc_provider: str | None = None
    roles_claim: str = "groups"
    role_map: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    accounts_file: Path | None = None
    accounts_env: str | None = None
    contact: str = DEFAULT_CONTACT
    source: str = "environment"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def load_config(environ: Mapping[str, str] | None = None) -> PortalConfig:
    """Settings for this run of the app (cheap: read on every rerun, so a changed
    environment in a test takes effect at once)."""
    env = os.environ if environ is None else environ
    demo = _truthy(env.get("PORTAL_DEMO"))
    store_url = env.get("PORTAL_STORE_URL") or None
    work = env.get("PORTAL_WORK_DIR")
    work_dir = Path(work) if work else (REPO_ROOT / "data" / "demo" / "work" if demo else None)
    raw: dict[str, Any] = {}
    source = "environment"
    path = env.get("PORTAL_CONFIG")
    if path:
        source = path
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(path, ["file not found"]) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(path, [f"not valid TOML: {exc}"]) from None
    return parse_config(
        raw, env=env, demo=demo, store_url=store_url, work_dir=work_dir, source=source
    )


def parse_config(
    raw: Mapping[str, Any],
    *,
    env: Mapping[str, str],
    demo: bool,
    store_url: str | None,
    work_dir: Path | None,
    source: str = "<config>",
) -> PortalConfig:
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

    mode = text(auth, "auth", "mode")
    accounts_file = text(auth, "auth", "accounts_file")
    accounts_env = text(auth, "auth", "accounts_env")
    if env.get("PORTAL_ACCOUNTS_FILE"):
        accounts_file = env["PORTAL_ACCOUNTS_FILE"]
        mode = mode or "local"
    if mode is None and (accounts_file or accounts_env):
        mode = "local"
    if demo:
        # Demo accounts exist only in demo mode, and demo mode offers nothing else.
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

    if problems:
        raise ConfigError(source, problems)
    return PortalConfig(
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
        source=source,
    )
