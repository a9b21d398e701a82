"""The portal's web process settings: where the release service is, and the credential for it.

The web process holds no key, no disclosure-control secret, no store URL and no work
folder; `portal up` starts it with a scrubbed environment holding only:

    PORTAL_SERVICE_URL          the release service, e.g. http://127.0.0.1:8600
    PORTAL_SERVICE_TOKEN        the service credential (or PORTAL_SERVICE_TOKEN_FILE)
    PORTAL_DEMO=1               demo mode: the banner on every page (the service decides
                                whether demo accounts exist, and the two must agree)

How users sign in (demo, local accounts, OpenID Connect), the role map and the accounts
are the service's configuration; the portal asks the service (`data.auth_config`). The
OpenID Connect client itself (`st.login`) runs here, configured in .streamlit/secrets.toml.

Demo mode is refused loudly when this process sees a production sign-in configuration: an
[auth] section in .streamlit/secrets.toml, or (in an environment `portal up` did not scrub)
PORTAL_CONFIG, PORTAL_ACCOUNTS_FILE or a non-SQLite PORTAL_STORE_URL.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from registry.settings import SettingsError, WebSettings

ROLES: tuple[str, ...] = ("planner", "researcher", "leadership", "admin")
DEFAULT_CONTACT = "the council's research and statistics team"
SERVICE_URL_ENV = "PORTAL_SERVICE_URL"
SERVICE_TOKEN_ENV = "PORTAL_SERVICE_TOKEN"  # noqa: S105 - a variable's name, not a secret
SERVICE_TOKEN_FILE_ENV = "PORTAL_SERVICE_TOKEN_FILE"  # noqa: S105


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
    service_url: str | None
    service_token: str | None = field(default=None, repr=False)
    source: str = "environment"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _secrets_auth(cwd: Path, home: str | None) -> Path | None:
    """The Streamlit secrets file with an [auth] (OpenID Connect) section, if any."""
    candidates = [cwd / ".streamlit" / "secrets.toml"]
    if home:
        candidates.append(Path(home) / ".streamlit" / "secrets.toml")
    for path in candidates:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            continue
        if "auth" in raw:
            return path
    return None


def demo_refusals(settings: WebSettings, cwd: Path, home: str | None) -> list[str]:
    """Why demo mode must not run here (empty: it may)."""
    reasons = []
    secrets_file = _secrets_auth(cwd, home)
    if secrets_file is not None:
        reasons.append(f"{secrets_file} has an [auth] (OpenID Connect) section")
    seen = settings.production_variables
    if "PORTAL_CONFIG" in seen:
        reasons.append("PORTAL_CONFIG names a production configuration")
    if "PORTAL_ACCOUNTS_FILE" in seen:
        reasons.append("PORTAL_ACCOUNTS_FILE is set")
    if "PORTAL_STORE_URL" in seen:
        reasons.append("PORTAL_STORE_URL is not a local SQLite file")
    return reasons


def load_config(
    environ: Mapping[str, str] | None = None, *, cwd: Path | None = None
) -> PortalConfig:
    """Settings for this run of the app (cheap: read on every rerun). Read through
    `registry.settings.WebSettings`, which has no field for a key, a secret or the store."""
    env = os.environ if environ is None else environ
    try:
        settings = WebSettings.load(env)
    except SettingsError as exc:
        raise ConfigError("environment", exc.problems) from None
    demo = settings.demo
    problems: list[str] = []
    if demo:
        refusals = demo_refusals(settings, cwd or Path.cwd(), env.get("HOME"))
        if refusals:
            problems.append(
                "DEMO MODE REFUSED: demo accounts give one-click administrator access, and "
                "this machine has a production configuration: " + "; ".join(refusals)
            )
    url = (settings.service_url or "").strip().rstrip("/") or None
    if url is not None and not url.startswith(("http://", "https://")):
        problems.append(f"{SERVICE_URL_ENV} must be an http:// or https:// URL")
    token = settings.service_token.get_secret_value().strip() if settings.service_token else None
    token = token or None
    if token is None and settings.service_token_file is not None:
        try:
            token = settings.service_token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            problems.append(f"cannot read {SERVICE_TOKEN_FILE_ENV}: {exc.strerror}")
    if problems:
        raise ConfigError("environment", problems)
    return PortalConfig(demo=demo, service_url=url, service_token=token)
