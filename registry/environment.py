"""The PORTAL_* variables' names, and the one lookup a thin client needs, without pydantic.

`registry.settings` reads and validates the environment for every process that holds
keys or serves pages, through pydantic-settings. Importing pydantic and building those
models took about a fifth of a second, which `portal table --service` (a thin HTTP client,
whose only configuration is the session token it presents) paid on every call for one
variable. This module holds what that client needs and what `registry.settings` builds
on, with the standard library only:

- every variable's name (`KNOWN_VARIABLES`; a test holds it equal to the settings models'
  fields), so a misspelt PORTAL_* variable is refused here exactly as it is there, with the
  same message;
- `SettingsError`, the error both raise;
- `session_token`, the client's one read.

Nothing else reads the environment for configuration: everything but the session token
goes through `registry.settings`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

ENV_PREFIX = "PORTAL_"

# Set by the test suite and its tools, in the same environment the processes inherit:
# not configuration, but not misspellings either.
TEST_VARIABLES = frozenset(
    {
        "PORTAL_TEST_PG_URL",
        "PORTAL_UPDATE_DIGESTS",
        "PORTAL_AXE_JS",
        "PORTAL_REQUIRE_SPARK",
    }
)
# The conventional variable for local accounts held in the environment (the service's
# config file names it: `auth.accounts_env`); read by portal.service.accounts.
ACCOUNTS_VARIABLE = "PORTAL_ACCOUNTS"
SESSION_TOKEN_VARIABLE = "PORTAL_SESSION_TOKEN"  # noqa: S105 - a variable's name

# Every variable a portal process reads: ServiceSettings' and WebSettings' fields
# (tests/test_settings.py holds this equal to them), the test variables and the accounts.
SETTINGS_VARIABLES = frozenset(
    {
        "PORTAL_ACCOUNTS_FILE",
        "PORTAL_AUDIT_OPENS",
        "PORTAL_CONFIG",
        "PORTAL_DEMO",
        "PORTAL_PLANNING_CONFIG",
        "PORTAL_PSEUDONYM_KEY",
        "PORTAL_SDC_SECRET",
        "PORTAL_SDC_SECRET_FILE",
        "PORTAL_SERVICE_TOKEN",
        "PORTAL_SERVICE_TOKEN_FILE",
        "PORTAL_SERVICE_URL",
        "PORTAL_SESSION_TOKEN",
        "PORTAL_STORE_AUTO_UPGRADE",
        "PORTAL_STORE_URL",
        "PORTAL_WORK_DIR",
    }
)
KNOWN_VARIABLES = SETTINGS_VARIABLES | TEST_VARIABLES | {ACCOUNTS_VARIABLE}


class SettingsError(ValueError):
    """The environment or a settings file is malformed: every problem, no value."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid settings in {source}:\n{lines}")


def unknown_variables(env: Mapping[str, str]) -> list[str]:
    """One problem per PORTAL_* variable no process knows (a misspelling would otherwise be
    ignored silently); names only, never values."""
    return [
        f"{name}: not a setting of any portal process (misspelt?); known: "
        + ", ".join(sorted(KNOWN_VARIABLES - TEST_VARIABLES))
        for name in sorted(env)
        if name.upper().startswith(ENV_PREFIX) and name.upper() not in KNOWN_VARIABLES
    ]


def session_token(environ: Mapping[str, str] | None = None) -> str | None:
    """$PORTAL_SESSION_TOKEN, stripped (None when unset or blank), after refusing any
    misspelt PORTAL_* variable as `registry.settings` does (SettingsError)."""
    env = os.environ if environ is None else environ
    problems = unknown_variables(env)
    if problems:
        raise SettingsError("the environment", problems)
    value = env.get(SESSION_TOKEN_VARIABLE, "").strip()
    return value or None
