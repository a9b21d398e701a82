"""The portal's one door to data: an HTTP client of the release service.

Every number a page shows comes from the service's `/v1` API, already protected; this
process has no store, no cubes, no secret and no work folder to read them from
(tests/test_app_architecture.py and tests/test_process_boundary.py prove it). Every call
carries the service credential and the signed-in user's session token; the service
checks both and the user's roles (deny by default), so a page cannot get more than its
user may see even if it asks.

The shapes are the ones pages used before the boundary: `ProtectedTable` (rebuilt from
the table document, with polars frames and typed value columns), `MeasureMeta`,
`ReleaseRef`, `Policy`, polars frames for the admin tables.

Caching: answers are cached in this process and shared by every session in it, so each
cached function takes the user's `role_key` first: two users share a cached answer only if
they hold exactly the same roles, and the service answers the same to both. The session
token is passed as `_token` (not part of the cache key). Tables are keyed by release id and
query; a release never changes once written, so entries never go stale, and a new release
is a new key. The latest-release lookup is cached for a minute. Whether a user's session is
still valid is asked on every script run (`whoami`), so a cached answer never outlives its
session.

The tables, measures, policy and releases a page asks for on every run are held by
`_memo`, which hands back the cached object itself. Streamlit's `st.cache_data` pickled and
unpickled every hit and inspected the function's signature on every call: 2-5 ms a call,
a dozen calls a run. Cached answers are immutable (frozen dataclasses, read-only mappings;
pages derive new frames from a table's frame and never change it in place).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType
from typing import Any, Generic, ParamSpec, TypeVar

import httpx
import polars as pl
import streamlit as st

from portal.web.config import DEFAULT_CONTACT, load_config
from registry.settings import WebSettings

__all__ = [
    "ApprovedProject",
    "AuthConfig",
    "CatalogueEntry",
    "DataUnavailableError",
    "ExtractFiles",
    "ExtractInvalid",
    "ExtractPolicy",
    "ExtractRefused",
    "ExtractRequest",
    "MeasureMeta",
    "NoReleaseError",
    "Policy",
    "ProtectedTable",
    "QueryError",
    "ReleaseRef",
    "ServiceUnavailableError",
    "SessionEndedError",
    "SignInFailed",
    "Where",
]

Where = tuple[tuple[str, tuple[str, ...]], ...]
SERVICE_HEADER = "X-Service-Token"
_TYPES = {"string": pl.String, "integer": pl.Int64, "number": pl.Float64, "boolean": pl.Boolean}


# --- errors ----------------------------------------------------------------------------------


class DataUnavailableError(RuntimeError):
    """The service cannot serve these numbers (no release yet, or it is unavailable)."""


class ServiceUnavailableError(DataUnavailableError):
    """The release service cannot be reached or is not configured."""


class NoReleaseError(DataUnavailableError):
    """No release has been published yet."""


class SessionEndedError(RuntimeError):
    """The user's session is not valid any more (signed out, idle, expired)."""


class QueryError(ValueError):
    """A table request names a breakdown, filter or value the measure does not allow."""

    def __init__(self, measure: str, problems: list[str]) -> None:
        self.measure = measure
        self.problems = problems
        super().__init__(f"cannot tabulate {measure!r}: " + "; ".join(problems))


class ExtractInvalid(ValueError):
    """The request form is incomplete (nothing was checked or audited); `problems` says what."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("the request is incomplete: " + "; ".join(problems))


class ExtractRefused(Exception):
    """The service refused the extract; `reasons` says why, `suggestions` what would pass."""

    def __init__(self, reasons: list[str], suggestions: list[str]) -> None:
        self.reasons = reasons
        self.suggestions = suggestions
        super().__init__("extract refused: " + "; ".join(reasons))


class SignInFailed(Exception):
    """A sign-in was refused; the message is safe to show."""

    def __init__(self, message: str, *, locked_for: float = 0.0) -> None:
        self.locked_for = locked_for
        super().__init__(message)


# --- shapes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseRef:
    release_id: str
    data_as_at: date
    created_at: datetime
    policy_id: str


@dataclass(frozen=True)
class Denominator:
    measure: str
    per: int = 100
    decimals: int = 1
    subset: bool = False  # a share: the service never shows it above 100%


@dataclass(frozen=True)
class MeasureMeta:
    name: str
    title: str
    definition: str
    unit: str
    breakdowns: tuple[str, ...]
    denominator: Denominator | None = None
    max_dims: int | None = None
    footnotes: tuple[str, ...] = ()
    complete_after_days: int = 0


@dataclass(frozen=True)
class Symbols:
    confidential: str
    low: str
    unavailable: str
    not_applicable: str
    low_reliability: str


@dataclass(frozen=True)
class Policy:
    ref: str
    description: str
    threshold: int
    max_noise: int
    max_table_dims: int
    total_label: str
    symbols: Symbols


@dataclass(frozen=True, eq=False)
class ProtectedTable:
    """A protected table as the service published it (see portal/documents.py)."""

    measure: str
    title: str
    unit: str
    by: tuple[str, ...]
    where: Where
    margins: bool
    data: pl.DataFrame
    footnotes: tuple[str, ...]
    policy_id: str
    release_id: str | None
    data_as_at: date | None
    ptable_id: str
    is_rate: bool = False
    rate_per: int | None = None
    permalink: str = ""
    # First and last day the measure's periods cover (None: no time dimension): before it
    # there is no data, which is not the same as zero.
    covers: tuple[date, date] | None = None
    # Periods in this table not complete by the data date, per time dimension: never the
    # subject of a headline.
    partial_periods: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    capped: int = 0  # rows whose share was capped at 100%
    revision: bool = False  # the release is a revision
    revised_through: date | None = None  # history before this date has been revised

    @property
    def value_columns(self) -> tuple[str, ...]:
        cols: tuple[str, ...] = ("count", "count_value")
        if self.is_rate:
            cols += ("denominator", "denominator_value", "rate", "rate_value")
        return cols


@dataclass(frozen=True)
class AuthConfig:
    mode: str | None
    demo: bool
    oidc_provider: str | None
    contact: str
    idle_timeout_s: int
    demo_roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExtractPolicy:
    ref: str
    k: int
    l: int  # noqa: E741 - the model's name
    suppression_limit: float
    min_k: int


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    title: str
    role: str
    definition: str


@dataclass(frozen=True)
class ExtractRequest:
    project: str
    purpose: str
    variables: tuple[str, ...]
    k: int | None = None
    l: int | None = None  # noqa: E741
    sensitive: str | None = None


@dataclass(frozen=True)
class ApprovedProject:
    """One of the signed-in researcher's approved, unexpired projects."""

    project_id: str
    title: str
    purpose: str
    expires_on: date
    variables: tuple[str, ...]
    family_analysis: bool


@dataclass(frozen=True)
class ExtractFiles:
    data_name: str
    data: bytes = field(repr=False)
    dictionary: bytes = field(repr=False)
    certificate_json: bytes = field(repr=False)
    certificate_text: bytes = field(repr=False)
    certificate: dict[str, Any] = field(repr=False)


# --- the connection --------------------------------------------------------------------------

_CLIENTS: dict[str, httpx.Client] = {}
_CLIENTS_LOCK = threading.Lock()


def _client(url: str) -> httpx.Client:
    """One connection pool per service URL for the whole process."""
    with _CLIENTS_LOCK:
        if url not in _CLIENTS:
            _CLIENTS[url] = httpx.Client(
                base_url=url, timeout=httpx.Timeout(30.0, connect=5.0), trust_env=False
            )
        return _CLIENTS[url]


def _detail(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"message": response.text[:200]}
    detail = body.get("detail") if isinstance(body, dict) else None
    return detail if isinstance(detail, dict) else {"message": str(detail)}


def _call(
    method: str,
    path: str,
    *,
    token: str | None = None,
    params: Any = None,
    body: Any = None,
    timeout: float | None = None,
) -> httpx.Response:
    """One request to the service with the service credential (and the user's session)."""
    config = load_config()
    if not config.service_url or not config.service_token:
        raise ServiceUnavailableError(
            "the portal is not connected to a release service (PORTAL_SERVICE_URL and "
            "PORTAL_SERVICE_TOKEN are not set)"
        )
    headers = {SERVICE_HEADER: config.service_token}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = _client(config.service_url).request(
            method,
            path,
            params=params,
            json=body,
            headers=headers,
            timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
        )
    except httpx.HTTPError:
        raise ServiceUnavailableError("the release service cannot be reached") from None
    if response.status_code == 401:
        if _detail(response).get("error") == "service_credential":
            raise ServiceUnavailableError("the release service refused the portal's credential")
        if token:
            raise SessionEndedError("your session has ended; sign in again")
    if response.status_code == 403:
        raise PermissionError(_detail(response).get("message", "not allowed"))
    if response.status_code >= 500:
        raise DataUnavailableError(_detail(response).get("message", "the service failed"))
    return response


def _ok(response: httpx.Response) -> Any:
    if response.status_code == 404:
        detail = _detail(response)
        if detail.get("error") == "no_release":
            raise NoReleaseError(detail.get("message", "no release"))
        raise LookupError(detail.get("message", "not found"))
    if response.status_code >= 400:
        raise DataUnavailableError(_detail(response).get("message", "the request failed"))
    return response.json()


# --- the process's cache of answers ------------------------------------------------------------

_P = ParamSpec("_P")
_R = TypeVar("_R")


class _Memo(Generic[_P, _R]):
    """A thread-safe LRU cache of a data call's answers, keyed by the service asked (its
    URL) and every argument but the session token (the second), with an optional time to
    live. Errors are not cached."""

    def __init__(self, fn: Callable[_P, _R], *, ttl: float | None, max_entries: int) -> None:
        functools.update_wrapper(self, fn)
        self._fn = fn
        self._ttl = ttl
        self._max = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[Any, tuple[float, _R]] = OrderedDict()

    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        url = WebSettings.load().service_url
        key = (url, args[:1], args[2:], tuple(sorted(kwargs.items())))
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and (self._ttl is None or now - hit[0] < self._ttl):
                self._entries.move_to_end(key)
                return hit[1]
        value = self._fn(*args, **kwargs)
        with self._lock:
            self._entries[key] = (now, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _memo(
    *, ttl: float | None = None, max_entries: int = 1000
) -> Callable[[Callable[_P, _R]], _Memo[_P, _R]]:
    def wrap(fn: Callable[_P, _R]) -> _Memo[_P, _R]:
        return _Memo(fn, ttl=ttl, max_entries=max_entries)

    return wrap


def clear_caches() -> None:
    """Forget every cached answer (a benchmark's cold start; tests)."""
    for memo in (
        latest_release,
        release_ref,
        previous_release,
        release_measures,
        policy,
        dimensions,
        protected_table,
    ):
        memo.clear()
    st.cache_data.clear()


# --- sign-in ---------------------------------------------------------------------------------


# Every script run needs the sign-in configuration; a burst of reruns (a user moving a
# slider) asks the service once every couple of seconds, and a reconfigured or restarted
# service is seen within that.
AUTH_CONFIG_SECONDS = 2.0
_auth_configs: dict[tuple[str | None, str], tuple[float, AuthConfig]] = {}


def auth_config() -> AuthConfig:
    """How users sign in here (the service's configuration)."""
    config = load_config()
    key = (config.service_url, hashlib.sha256((config.service_token or "").encode()).hexdigest())
    hit = _auth_configs.get(key)
    if hit is not None and time.monotonic() - hit[0] < AUTH_CONFIG_SECONDS:
        return hit[1]
    answer = _fetch_auth_config()
    _auth_configs[key] = (time.monotonic(), answer)
    return answer


def forget_auth_config() -> None:
    _auth_configs.clear()


def _fetch_auth_config() -> AuthConfig:
    doc = _ok(_call("GET", "/v1/auth/config"))
    return AuthConfig(
        mode=doc.get("mode"),
        demo=bool(doc.get("demo")),
        oidc_provider=doc.get("oidc_provider"),
        contact=doc.get("contact") or DEFAULT_CONTACT,
        idle_timeout_s=int(doc.get("idle_timeout_s") or 0),
        demo_roles=tuple(a["role"] for a in doc.get("demo_accounts") or ()),
    )


def _session(response: httpx.Response) -> tuple[str, dict[str, Any]]:
    if response.status_code in (401, 429):
        detail = _detail(response)
        locked = float(detail.get("retry_after") or detail.get("locked_for") or 0)
        raise SignInFailed(detail.get("message", "sign-in failed"), locked_for=locked)
    if response.status_code == 400:
        raise SignInFailed(_detail(response).get("message", "sign-in is not available"))
    doc = _ok(response)
    return str(doc["token"]), dict(doc["user"])


def sign_in_local(
    username: str, password: str, client_address: str | None = None
) -> tuple[str, dict[str, Any]]:
    body = {"username": username, "password": password, "client_address": client_address}
    return _session(_call("POST", "/v1/sessions/local", body=body))


def sign_in_demo(role: str) -> tuple[str, dict[str, Any]]:
    return _session(_call("POST", "/v1/sessions/demo", body={"role": role}))


def sign_in_oidc(claims: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    plain = {str(k): v for k, v in claims.items() if isinstance(v, str | int | float | bool | list)}
    return _session(_call("POST", "/v1/sessions/oidc", body={"claims": plain}))


def whoami(token: str) -> dict[str, Any] | None:
    """The signed-in user of a session token, or None if the session has ended."""
    try:
        return dict(_ok(_call("GET", "/v1/session", token=token)))
    except SessionEndedError:
        return None


def sign_out(token: str) -> None:
    with contextlib.suppress(SessionEndedError):
        _call("DELETE", "/v1/session", token=token)


# --- releases and metadata -------------------------------------------------------------------


def _ref(doc: Mapping[str, Any]) -> ReleaseRef:
    return ReleaseRef(
        doc["release_id"],
        date.fromisoformat(doc["data_as_at"]),
        datetime.fromisoformat(doc["created_at"]),
        doc["policy"],
    )


@_memo(ttl=60)
def latest_release(role_key: str, _token: str) -> ReleaseRef | None:
    try:
        return _ref(_ok(_call("GET", "/v1/releases/latest", token=_token)))
    except NoReleaseError:
        return None


@_memo(ttl=60)
def release_ref(role_key: str, _token: str, release_id: str) -> ReleaseRef | None:
    """A published release by id (a permalink's), or None when there is no such release or
    it was withdrawn."""
    try:
        return _ref(_ok(_call("GET", f"/v1/releases/{release_id}", token=_token)))
    except LookupError:
        return None


@_memo(ttl=60)
def previous_release(role_key: str, _token: str, release_id: str) -> ReleaseRef | None:
    """The newest published release before `release_id` (None: it is the first)."""
    doc = _ok(_call("GET", f"/v1/releases/{release_id}", token=_token))
    previous = doc.get("previous_release_id")
    if not previous:
        return None
    return _ref(_ok(_call("GET", f"/v1/releases/{previous}", token=_token)))


def _meta(row: Mapping[str, Any]) -> MeasureMeta:
    den = row.get("denominator")
    return MeasureMeta(
        name=row["measure"],
        title=row["title"],
        definition=row["definition"],
        unit=row["unit"],
        breakdowns=tuple(row["breakdowns"]),
        denominator=Denominator(**den) if den else None,
        max_dims=row.get("max_dims"),
        footnotes=tuple(row.get("footnotes") or ()),
        complete_after_days=int(row.get("complete_after_days") or 0),
    )


@_memo()
def release_measures(role_key: str, _token: str, release_id: str) -> Mapping[str, MeasureMeta]:
    """Definitions, units and allowed breakdowns of every measure in a release."""
    doc = _ok(_call("GET", "/v1/measures", token=_token, params={"release": release_id}))
    return MappingProxyType({row["measure"]: _meta(row) for row in doc["measures"]})


@_memo(ttl=3600)
def policy(role_key: str, _token: str) -> Policy:
    """The disclosure-control policy (as the service applies it)."""
    doc = _ok(_call("GET", "/v1/policy", token=_token))
    return Policy(
        ref=doc["ref"],
        description=doc["description"],
        threshold=int(doc["threshold"]),
        max_noise=int(doc["max_noise"]),
        max_table_dims=int(doc["max_table_dims"]),
        total_label=doc["total_label"],
        symbols=Symbols(**doc["symbols"]),
    )


_DIMENSION_TITLES: dict[str, str] = {}


@_memo(ttl=3600)
def dimensions(role_key: str, _token: str) -> Mapping[str, str]:
    """Dimension name -> title (the service's registry)."""
    doc = _ok(_call("GET", "/v1/dimensions", token=_token))
    return MappingProxyType({d["name"]: d["title"] for d in doc})


def remember_dimensions(titles: Mapping[str, str]) -> None:
    """Keep the registry's titles for `dimension_title` (a static registry: no user data)."""
    _DIMENSION_TITLES.update(titles)


def dimension_title(name: str) -> str:
    return _DIMENSION_TITLES.get(name, name.replace("_", " ").capitalize())


# --- the protected table -----------------------------------------------------------------------


def normalise_where(where: Mapping[str, str | Sequence[str]] | None) -> Where:
    out = []
    for dim, values in sorted((where or {}).items()):
        vals = (values,) if isinstance(values, str) else tuple(values)
        out.append((dim, vals))
    return tuple(out)


def table_from_document(doc: Mapping[str, Any]) -> ProtectedTable:
    """A `ProtectedTable` from the service's table document (typed columns as published)."""
    schema = {c["name"]: _TYPES.get(c["type"], pl.String) for c in doc["columns"]}
    rows = doc["rows"]
    frame = pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
    as_at = doc.get("data_as_at")
    return ProtectedTable(
        measure=doc["measure"],
        title=doc["title"],
        unit=doc["unit"],
        by=tuple(doc["by"]),
        where=tuple(sorted((k, tuple(v)) for k, v in doc["where"].items())),
        margins=bool(doc["margins"]),
        data=frame,
        footnotes=tuple(doc["footnotes"]),
        policy_id=doc["policy"],
        release_id=doc.get("release_id"),
        data_as_at=date.fromisoformat(as_at) if as_at else None,
        ptable_id=doc.get("ptable_id", ""),
        is_rate=bool(doc.get("is_rate")),
        rate_per=doc.get("rate_per"),
        permalink=doc.get("permalink", ""),
        covers=(
            (date.fromisoformat(doc["covers"][0]), date.fromisoformat(doc["covers"][1]))
            if doc.get("covers")
            else None
        ),
        partial_periods={k: tuple(v) for k, v in (doc.get("partial_periods") or {}).items()},
        capped=int(doc.get("capped") or 0),
        revision=bool(doc.get("revision")),
        revised_through=(
            date.fromisoformat(doc["revised_through"]) if doc.get("revised_through") else None
        ),
    )


@_memo(max_entries=5000)
def protected_table(
    role_key: str,
    _token: str,
    release_id: str,
    measure: str,
    by: tuple[str, ...] = (),
    where: Where = (),
    margins: bool = False,
) -> ProtectedTable:
    """A protected table from the service. Raises QueryError for a table the measure does not
    allow, LookupError for a measure the release lacks."""
    params: list[tuple[str, str]] = [("release", release_id)]
    if by:
        params.append(("by", ",".join(by)))
    params.extend(("where", f"{k}:{v}") for k, values in where for v in values)
    if margins:
        params.append(("margins", "true"))
    response = _call("GET", f"/v1/tables/{measure}", token=_token, params=params)
    if response.status_code == 422:
        raise QueryError(measure, list(_detail(response).get("problems") or []))
    return table_from_document(_ok(response))


# --- administrators only -----------------------------------------------------------------------


@st.cache_data(ttl=30, show_spinner=False)
def release_list(role_key: str, _token: str) -> pl.DataFrame:
    rows = _ok(_call("GET", "/v1/admin/releases", token=_token))
    return pl.DataFrame(
        {
            "Release": [r["release_id"] for r in rows],
            "Status": [r["status"] for r in rows],
            "Kind": [r.get("kind") or "routine" for r in rows],
            "Data as at": [r["data_as_at"] for r in rows],
            "Created (UTC)": [
                datetime.fromisoformat(r["created_at"]).strftime("%Y-%m-%d %H:%M") for r in rows
            ],
            "Policy": [r["policy"] for r in rows],
            "Key epoch": [r.get("key_epoch") or 0 for r in rows],
            "Revised through": [r.get("revised_through") for r in rows],
            "Revision note": [r.get("revision_note") for r in rows],
            "Cubes kept": ["no (retention)" if r.get("cubes_removed") else "yes" for r in rows],
            "Measures": [r["measure_count"] for r in rows],
            "Cube cells": [r["cube_cell_count"] for r in rows],
        },
        schema={
            "Release": pl.String,
            "Status": pl.String,
            "Kind": pl.String,
            "Data as at": pl.String,
            "Created (UTC)": pl.String,
            "Policy": pl.String,
            "Key epoch": pl.Int64,
            "Revised through": pl.String,
            "Revision note": pl.String,
            "Cubes kept": pl.String,
            "Measures": pl.Int64,
            "Cube cells": pl.Int64,
        },
    )


def minute(iso: str | None) -> str:
    """An ISO timestamp from the service as "YYYY-MM-DD HH:MM" (blank when there is none)."""
    return (iso or "")[:16].replace("T", " ")


@st.cache_data(ttl=10, show_spinner=False)
def governance(role_key: str, _token: str) -> dict[str, Any]:
    """Projects, evaluation shares, requests (no tokens) and retention due: read-only."""
    doc = _ok(_call("GET", "/v1/admin/governance", token=_token))
    assert isinstance(doc, dict)
    return doc


@st.cache_data(ttl=10, show_spinner=False)
def audit_entries(
    role_key: str, _token: str, action: str | None = None, limit: int = 500
) -> pl.DataFrame:
    params: dict[str, Any] = {"limit": limit}
    if action:
        params["action"] = action
    rows = _ok(_call("GET", "/v1/admin/audit", token=_token, params=params))
    return pl.DataFrame(
        {
            "When (UTC)": [
                datetime.fromisoformat(r["at"]).strftime("%Y-%m-%d %H:%M:%S") for r in rows
            ],
            "Who": [r["actor"] for r in rows],
            "Action": [r["action"] for r in rows],
            "Release": [r["release_id"] for r in rows],
            "Detail": [r["detail"] for r in rows],
        },
        schema={
            "When (UTC)": pl.String,
            "Who": pl.String,
            "Action": pl.String,
            "Release": pl.String,
            "Detail": pl.String,
        },
    )


@st.cache_data(ttl=30, show_spinner=False)
def run_summary(role_key: str, _token: str) -> dict[str, Any] | None:
    """The last pipeline run's summary (counts below the threshold shown as <10), or None."""
    doc = _ok(_call("GET", "/v1/admin/run", token=_token))
    return dict(doc) if doc else None


@st.cache_data(ttl=30, show_spinner=False)
def linkage_figures(role_key: str, _token: str) -> dict[str, dict[str, float]]:
    """Linkage quality per level (precision, recall, ...), empty without ground truth."""
    doc = _ok(_call("GET", "/v1/admin/linkage", token=_token))
    return dict((doc or {}).get("levels") or {})


@st.cache_data(ttl=30, show_spinner=False)
def quarantine_counts(role_key: str, _token: str) -> pl.DataFrame | None:
    """Rows quarantined by source and reason: `Rows quarantined` as published (`<10` for
    small counts) and `rows_value` (null where masked), or None without a report."""
    rows = _ok(_call("GET", "/v1/admin/quarantine", token=_token))
    if rows is None:
        return None
    return pl.DataFrame(
        {
            "Source": [r["source"] for r in rows],
            "Reason": [r["reason"] for r in rows],
            "Rows quarantined": [r["rows"]["shown"] for r in rows],
            "rows_value": [r["rows"]["value"] for r in rows],
        },
        schema={
            "Source": pl.String,
            "Reason": pl.String,
            "Rows quarantined": pl.String,
            "rows_value": pl.Int64,
        },
    )


# --- researchers only: extracts (the service's door to zone B) -------------------------------


@st.cache_data(ttl=300, show_spinner=False)
def research_catalogue(
    role_key: str, _token: str
) -> tuple[ExtractPolicy, list[CatalogueEntry], set[str]]:
    """The extract policy, the variable catalogue and the sensitive variables (no data)."""
    doc = _ok(_call("GET", "/v1/extracts/catalogue", token=_token))
    return (
        ExtractPolicy(**doc["policy"]),
        [CatalogueEntry(**v) for v in doc["variables"]],
        set(doc["sensitive"]),
    )


def research_projects(role_key: str, _token: str, user_id: str) -> list[ApprovedProject]:
    """The signed-in researcher's approved projects (the service decides). Not cached: a
    project approved or closed a moment ago must show as it is now, and the call is small."""
    return [
        ApprovedProject(
            project_id=p["project_id"],
            title=p["title"],
            purpose=p["purpose"],
            expires_on=date.fromisoformat(p["expires_on"]),
            variables=tuple(p["variables"]),
            family_analysis=bool(p["family_analysis"]),
        )
        for p in _ok(_call("GET", "/v1/extracts/projects", token=_token))
    ]


def build_research_extract(role_key: str, _token: str, request: ExtractRequest) -> ExtractFiles:
    """Build one extract on the service (never cached: every extract and refusal is audited
    there; the requester is the signed-in user, which the service knows)."""
    response = _call(
        "POST",
        "/v1/extracts",
        token=_token,
        body={
            "project": request.project,
            "purpose": request.purpose,
            "variables": list(request.variables),
            "k": request.k,
            "l": request.l,
            "sensitive": request.sensitive,
        },
        timeout=600.0,
    )
    if response.status_code == 400:
        detail = _detail(response)
        if detail.get("error") == "invalid":
            raise ExtractInvalid(list(detail.get("problems") or [detail.get("message", "")]))
    if response.status_code == 422:
        detail = _detail(response)
        raise ExtractRefused(
            list(detail.get("reasons") or [detail.get("message", "refused")]),
            list(detail.get("suggestions") or []),
        )
    doc = _ok(response)
    files = doc["files"]
    return ExtractFiles(
        data_name=doc["data_name"],
        data=base64.b64decode(files["data"]),
        dictionary=base64.b64decode(files["dictionary"]),
        certificate_json=base64.b64decode(files["certificate_json"]),
        certificate_text=base64.b64decode(files["certificate_text"]),
        certificate=dict(doc["certificate"]),
    )
