"""Settings, read in one place: every PORTAL_* environment variable, the work-folder
catalogue, and the research extract policy.

Why one module, and why two classes in it:

- **One reader of the environment.** Every PORTAL_* variable is declared here, typed,
  and read through pydantic-settings; nothing else in the project reads `os.environ` for
  its configuration. A PORTAL_* variable that no process knows is an error (a misspelt
  ``PORTAL_SDC_SECRETT`` would otherwise be ignored silently, and the service would run
  without the secret someone meant to give it). pydantic-settings ignores unknown
  variables, so `unknown_variables` (registry/environment.py) checks them.
- **Every problem at once**, each naming its variable or file and never the value: the
  variable may hold a secret, so validation errors are built from the error type and the
  variable's name only (`hide_input_in_errors`, and `_problems`).
- **Secrets typed as secrets.** Keys, tokens and the store URL (which may carry a
  database password) are `SecretStr`: their repr is ``'**********'`` and they reach a log
  or a traceback only through an explicit `get_secret_value()`.
- **Two processes, two classes.** `ServiceSettings` is the release service's and the
  pipeline's (they hold the keys and read true counts). `WebSettings` is the Streamlit
  portal's: it has no field for a key, a secret, the store or the work folder, so the web
  process cannot load them even when its environment holds them (it records only *that*
  a production variable is present, which refuses demo mode). `extra="forbid"` means
  nothing can be smuggled in through the constructor either.

This module lives in `registry` because the privacy core (`anonymise`) reads its secrets
through it, and `registry` is the one layer every other imports. It imports pydantic, so
modules on a fast path (`portal --help`) import it inside the functions that need it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

# The variables' names and the error live in `registry.environment` (standard library only),
# which a thin client imports instead of this module.
from registry.environment import (
    ACCOUNTS_VARIABLE,
    ENV_PREFIX,
    TEST_VARIABLES,
    SettingsError,
    unknown_variables,
)

__all__ = [
    "ACCOUNTS_VARIABLE",
    "ENV_PREFIX",
    "TEST_VARIABLES",
    "ExtractPolicy",
    "ServiceSettings",
    "SettingsError",
    "WebSettings",
    "WorkFolder",
    "load_extract_policy_file",
    "login_name",
]


class _MappingEnv(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping (tests pass one; the
    processes pass `os.environ`)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): v for k, v in self._environ.items() if k.upper().startswith(ENV_PREFIX)}


class _ProcessSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        frozen=True,
        env_ignore_empty=True,
        hide_input_in_errors=True,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # `load` reads the environment itself (from the mapping it is given); no .env file
        # and no secrets directory: a secret comes from where the operator put it.
        return (init_settings,)

    @classmethod
    @functools.cache
    def variables(cls) -> frozenset[str]:
        return frozenset(ENV_PREFIX + name.upper() for name in cls.model_fields)

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> Self:
        """This process's settings from `environ` (default: the process environment).
        Raises SettingsError naming every bad or unknown PORTAL_* variable, never a value."""
        env = os.environ if environ is None else environ
        problems = unknown_variables(env)
        if problems:
            raise SettingsError("the environment", problems)
        names = cls.variables()
        return cls._validated({k: v for k, v in env.items() if k.upper() in names})

    @classmethod
    def _validated(cls, own: Mapping[str, str]) -> Self:
        # Validation costs milliseconds (pydantic-settings inspects every field) and some
        # callers ask on every request, so the answer is kept per distinct set of values.
        # The key is a digest: no secret is copied into the cache's keys.
        digest = hashlib.sha256(repr((cls.__qualname__, sorted(own.items()))).encode()).digest()
        hit = _CACHE.get(digest)
        if hit is not None:
            assert isinstance(hit, cls)
            return hit
        try:
            settings = cls(**_MappingEnv(cls, own)())
        except ValidationError as exc:
            raise SettingsError("the environment", _problems(exc)) from None
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.clear()
        _CACHE[digest] = settings
        return settings


_CACHE: dict[bytes, _ProcessSettings] = {}
_CACHE_SIZE = 64


def _problems(exc: ValidationError) -> list[str]:
    """One line per error: where and what, never the input (it may be a secret)."""
    out = []
    for err in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in err["loc"])
        name = ENV_PREFIX + where.upper() if where else "(settings)"
        out.append(f"{name}: {err['msg']}")
    return out


class ServiceSettings(_ProcessSettings):
    """The release service's and the pipeline's environment (the processes that hold keys).

    PORTAL_STORE_URL            the release store (default: SQLite under data/)
    PORTAL_STORE_AUTO_UPGRADE=1 apply migrations when a store is opened (development, tests)
    PORTAL_WORK_DIR             the pipeline's work folder
    PORTAL_SDC_SECRET[_FILE]    the disclosure-control secret (hex), or a file holding it
    PORTAL_PSEUDONYM_KEY        the pseudonymisation master key (hex)
    PORTAL_SERVICE_TOKEN[_FILE] the credential the portal presents to the service
    PORTAL_SESSION_TOKEN        `portal table --service`: a signed-in session
    PORTAL_SERVICE_URL          `portal up`: where the portal finds the service
    PORTAL_CONFIG               the service's TOML file (sign-in, contact)
    PORTAL_ACCOUNTS_FILE        shortcut for [auth] mode = "local", accounts_file = ...
    PORTAL_PLANNING_CONFIG      the council's planning file (comparisons)
    PORTAL_DEMO=1               demo mode (refused under any production configuration)
    PORTAL_AUDIT_OPENS          test hook: `portal up` passes it to the web process
    """

    store_url: SecretStr | None = None
    store_auto_upgrade: bool = False
    work_dir: Path | None = None
    sdc_secret: SecretStr | None = None
    sdc_secret_file: Path | None = None
    pseudonym_key: SecretStr | None = None
    service_token: SecretStr | None = None
    service_token_file: Path | None = None
    session_token: SecretStr | None = None
    service_url: str | None = None
    config: Path | None = None
    accounts_file: Path | None = None
    planning_config: Path | None = None
    demo: bool = False
    audit_opens: Path | None = None


class WebSettings(_ProcessSettings):
    """The Streamlit portal's environment: where the service is and the credential for it.
    No key, secret, store or work folder can be held here (see the module docstring);
    `production_variables` names the service variables seen, never their values."""

    service_url: str | None = None
    service_token: SecretStr | None = None
    service_token_file: Path | None = None
    demo: bool = False
    audit_opens: Path | None = None
    # Names (not values) of production configuration this process can see: demo mode is
    # refused when there are any.
    production_variables: tuple[str, ...] = ()

    # Service variables whose mere presence means production; the store URL only when it
    # is not a local SQLite file.
    _PRODUCTION: ClassVar[tuple[str, ...]] = ("PORTAL_CONFIG", "PORTAL_ACCOUNTS_FILE")

    @classmethod
    @functools.cache
    def variables(cls) -> frozenset[str]:
        return super().variables() - {"PORTAL_PRODUCTION_VARIABLES"}

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> Self:
        env = os.environ if environ is None else environ
        problems = unknown_variables(env)
        if problems:
            raise SettingsError("the environment", problems)
        # The service's variables were checked for misspellings above but are never read:
        # only this process's own go to validation, and of the others only their names.
        seen = [name for name in cls._PRODUCTION if env.get(name)]
        store = env.get("PORTAL_STORE_URL", "")
        if store and not store.startswith("sqlite"):
            seen.append("PORTAL_STORE_URL")
        names = cls.variables()
        settings = cls._validated({k: v for k, v in env.items() if k.upper() in names})
        if seen:
            settings = settings.model_copy(update={"production_variables": tuple(seen)})
        return settings


# --- the work folder ----------------------------------------------------------------------


@dataclass(frozen=True)
class WorkFolder:
    """Every path inside the pipeline's work folder, named once. Zone A holds identifiable
    records (owner-only); zone B pseudonymised tables. Readers and writers take paths from
    here instead of joining strings, so a file moves in one place."""

    root: Path

    @property
    def zone_a(self) -> Path:
        return self.root / "zone_a"

    @property
    def zone_b(self) -> Path:
        return self.root / "zone_b"

    @property
    def run_manifest(self) -> Path:
        return self.root / "run.json"

    @property
    def quarantine(self) -> Path:
        return self.zone_a / "quarantine"

    @property
    def quarantine_report(self) -> Path:
        return self.zone_a / "quarantine_report.csv"

    @property
    def linkage_model(self) -> Path:
        return self.zone_a / "linkage_model.json"

    @property
    def linked_records(self) -> Path:
        return self.zone_a / "linked_records.parquet"

    @property
    def clerical_decisions(self) -> Path:
        """The linkage's pair decisions (they name source records: zone A)."""
        return self.zone_a / "linkage_decisions.parquet"

    @property
    def clerical_labels(self) -> Path:
        """Clerical review labels: they outlive a run (a later run re-uses them)."""
        return self.zone_a / "clerical_labels.parquet"

    @property
    def events(self) -> Path:
        return self.zone_b / "events"

    def events_of(self, source: str) -> Path:
        return self.events / f"{source}.parquet"

    @property
    def persons(self) -> Path:
        return self.zone_b / "persons.parquet"

    @property
    def research_table(self) -> Path:
        return self.zone_b / "research_table.parquet"

    @property
    def geography(self) -> Path:
        return self.zone_b / "geography.parquet"


# --- the research extract policy ---------------------------------------------------------


class ExtractPolicy(BaseModel):
    """The research extract policy (anonymise/policies/extract.toml), validated whole."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    policy_id: str = Field(min_length=1)
    version: int = Field(ge=1)
    k: int = Field(ge=1)
    l: int = Field(ge=1)  # noqa: E741 - the model's name
    suppression_limit: float = Field(ge=0, le=0.1)
    min_k: int = Field(ge=1)
    family_unlink_limit: float = Field(default=0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _k_above_floor(self) -> Self:
        if self.k < self.min_k:
            raise ValueError(f"k={self.k} is below the floor min_k={self.min_k}")
        return self

    @property
    def ref(self) -> str:
        return f"{self.policy_id}@{self.version}"


class _ExtractPolicyFile(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    policy: ExtractPolicy


def load_extract_policy_file(path: Path) -> ExtractPolicy:
    """Read and validate an extract policy file; SettingsError lists every problem,
    each with its key (`policy.k`), including unknown and missing keys."""
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(str(path), [f"cannot read: {exc.strerror}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(str(path), [f"not valid TOML: {exc}"]) from None
    try:
        return _ExtractPolicyFile.model_validate(raw).policy
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_input=False, include_url=False):
            where = ".".join(str(p) for p in err["loc"]) or "(file)"
            problems.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
        raise SettingsError(str(path), problems) from None


def login_name() -> str:
    """Who runs a command-line tool, for the audit log when no --actor is given: the login
    name ($LOGNAME, $USER, or the password database), else "unknown"."""
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"
