"""The release service's HTTP API (FastAPI): `create_app` builds it, `portal serve` runs it.

Deny by default: every route under /v1 except `/v1/health` needs a caller, checked by one
of three dependencies, and a test calls every route without credentials:

- `_portal` (the service credential, `X-Service-Token`, compared in constant time): the
  portal's own calls: its sign-in configuration, demo and OpenID Connect sign-ins;
- `_user` (a live session, `Authorization: Bearer <token>`): everything else; a session
  the portal opened is honoured only together with the service credential;
- `_role(...)` on top: tables, measures and releases for any role, the admin figures
  and audit log for administrators, extracts for researchers.

Table responses are `portal.documents.table_document` (exactly what `portal table --format
json` prints) or its CSV; both name the release, so a figure can be cited and asked for
again. Every distinct table query of a session is written to the audit log once, by a
writer thread of its own (`AuditWriter`) so that no answer waits for the log's commit;
the queue is flushed when the service stops.
"""

# No `from __future__ import annotations` here: FastAPI reads the dependency annotations
# (defined inside create_app) at runtime.

import base64
import functools
import hashlib
import hmac
import json
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

import anyio
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from anonymise import cellkey
from anonymise.policy import Policy, default_policy
from anonymise.release import NoReleaseError, ProtectedTable, QueryError, tabulate
from pipelines.store import Store, audit_log
from portal.documents import table_csv, table_document_json
from portal.service import admin, governance, planning
from portal.service.config import ServiceConfig
from portal.service.signin import (
    DEMO_ACCOUNTS,
    BadCredentials,
    BadToken,
    LockedOut,
    MethodNotAvailable,
    SessionUser,
    SignIn,
)
from registry.dimensions import DIMENSIONS
from registry.errors import UnknownMeasureError, UnknownReleaseError
from registry.measures import ReleaseInfo

API_VERSION = "1"
SERVICE_HEADER = "x-service-token"
ADMIN, RESEARCHER = "admin", "researcher"
LATEST_TTL_S = 5.0
log = logging.getLogger(__name__)


class _LRU:
    """A small thread-safe LRU map (rendered tables, audited queries)."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def add_if_new(self, key: Any) -> bool:
        with self._lock:
            if key in self._items:
                return False
            self._items[key] = True
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)
            return True


class AuditWriter:
    """Writes table-query audit entries in order on one thread of its own, so an answer is
    not held up by the audit log's commit (or, on a kept-alive connection, the next answer).
    `flush` waits until everything queued is written; the app flushes when it stops."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._queue: queue.Queue[tuple[str, str, dict[str, Any], str | None] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def put(self, actor: str, action: str, detail: dict[str, Any], release_id: str | None) -> None:
        self._queue.put((actor, action, detail, release_id))

    def flush(self) -> None:
        self._queue.join()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            # Whatever else is waiting goes into the same transaction (one commit).
            while len(batch) < 500:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            entries = [item for item in batch if item is not None]
            try:
                if entries:
                    now = datetime.now(UTC)
                    with self.store.engine.begin() as conn:
                        conn.execute(
                            audit_log.insert(),
                            [
                                {
                                    "at": now,
                                    "actor": actor,
                                    "action": action,
                                    "release_id": release_id,
                                    "detail": detail,
                                }
                                for actor, action, detail, release_id in entries
                            ],
                        )
            except Exception:
                log.exception("could not write %d audit entries", len(entries))
            finally:
                for _ in batch:
                    self._queue.task_done()
            if len(entries) < len(batch):
                return


@dataclass
class ServiceState:
    config: ServiceConfig
    store: Store
    policy: Policy
    ptable: cellkey.PerturbationTable
    token_digest: bytes
    signin: SignIn
    audits: AuditWriter
    # A release never changes once written, so a rendered table never goes stale.
    rendered: _LRU = field(default_factory=lambda: _LRU(4096))
    audited: _LRU = field(default_factory=lambda: _LRU(100_000))
    _latest: tuple[float, ReleaseInfo | None] = (0.0, None)
    _by_id: dict[str, tuple[float, ReleaseInfo]] = field(default_factory=dict)

    def use_config(self, config: ServiceConfig) -> None:
        """Apply a new configuration (sign-in mode, accounts, work folder) to a running app."""
        self.config = config
        self.signin.config = config

    def release_info(self, release_id: str) -> ReleaseInfo:
        """A release by id (looked up again after a few seconds: it may be withdrawn)."""
        hit = self._by_id.get(release_id)
        if hit is None or time.monotonic() - hit[0] > LATEST_TTL_S:
            hit = (time.monotonic(), self.store.get_release(release_id))
            if len(self._by_id) > 1000:
                self._by_id.clear()
            self._by_id[release_id] = hit
        return hit[1]

    def latest_release(self) -> ReleaseInfo | None:
        at, info = self._latest
        if info is None or time.monotonic() - at > LATEST_TTL_S:
            info = self.store.latest_release()
            self._latest = (time.monotonic(), info)
        return info


# --- request bodies --------------------------------------------------------------------------


class LocalSignIn(BaseModel):
    username: str = Field(max_length=200)
    password: str = Field(max_length=1000)
    # The browser's address as the portal saw it; taken only from the portal (it carries
    # the service credential). An API client's address is the connection's own.
    client_address: str | None = Field(default=None, max_length=64)


class DemoSignIn(BaseModel):
    role: str


class OidcSignIn(BaseModel):
    claims: dict[str, Any]


class ExtractBody(BaseModel):
    project: str = Field(max_length=200)  # the register's project id
    purpose: str = Field(default="", max_length=5000)  # an optional note for this extract
    variables: list[str]
    k: int | None = None
    l: int | None = None  # noqa: E741 - the model's name
    sensitive: str | None = None


# --- helpers ---------------------------------------------------------------------------------


def _error(status: int, error: str, message: str, **extra: Any) -> HTTPException:
    return HTTPException(status, {"error": error, "message": message, **extra})


def _release_doc(info: ReleaseInfo) -> dict[str, Any]:
    return {
        "release_id": info.release_id,
        "data_as_at": info.data_as_at.isoformat(),
        "created_at": info.created_at.isoformat(),
        "policy": info.policy_id,
        "status": info.status,
        "measures": sorted(info.row_counts),
        "kind": info.kind,
        "key_epoch": info.key_epoch,
        "revised_through": info.revised_through.isoformat() if info.revised_through else None,
        "revision_note": info.revision_note,
        "cubes_removed": info.cubes_removed_at is not None,
    }


def _reference_html(spec: dict[str, Any]) -> str:
    """The API reference as one self-contained page (no scripts, no outside assets)."""
    from html import escape

    info = spec.get("info", {})
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(info.get('title', 'API'))}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
        "padding:0 1rem;line-height:1.5}code{background:#f3f3f3;padding:0 .2rem}"
        "h2{margin-top:2rem;font-size:1.1rem}td,th{text-align:left;padding:.2rem .6rem;"
        "border-bottom:1px solid #ddd}</style></head><body><main>",
        f"<h1>{escape(info.get('title', 'API'))} {escape(str(info.get('version', '')))}</h1>",
        f"<p>{escape(info.get('description', ''))}</p>",
        "<p>The machine-readable document: <a href='/openapi.json'>/openapi.json</a>.</p>",
    ]
    for path, methods in sorted(spec.get("paths", {}).items()):
        for method, op in methods.items():
            parts.append(f"<h2><code>{escape(method.upper())} {escape(path)}</code></h2>")
            text = op.get("description") or op.get("summary") or ""
            parts.append(f"<p>{escape(text)}</p>")
            params = op.get("parameters") or []
            if params:
                parts.append("<table><tr><th>Parameter</th><th>In</th><th>Required</th></tr>")
                parts.extend(
                    f"<tr><td><code>{escape(p['name'])}</code></td><td>{escape(p['in'])}</td>"
                    f"<td>{'yes' if p.get('required') else 'no'}</td></tr>"
                    for p in params
                )
                parts.append("</table>")
    parts.append("</main></body></html>")
    return "".join(parts)


def _parse_where(items: list[str]) -> dict[str, list[str]]:
    where: dict[str, list[str]] = {}
    problems = []
    for item in items:
        name, sep, value = item.partition(":")
        if not sep or not name.strip() or not value:
            problems.append(f"where must be name:value, got {item!r}")
            continue
        where.setdefault(name.strip(), []).append(value)
    if problems:
        raise _error(422, "query", "the query is malformed", problems=problems)
    return where


def _json(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


# --- the app ---------------------------------------------------------------------------------


def create_app(
    config: ServiceConfig,
    *,
    sdc_secret: bytes,
    service_token: str,
    store: Store | None = None,
    environ: dict[str, str] | None = None,
) -> FastAPI:
    """The API for one store and one disclosure-control secret. The secret is used here to
    build the perturbation table and is not kept."""
    policy = default_policy()
    store = store or Store(config.store_url)
    state = ServiceState(
        config=config,
        store=store,
        policy=policy,
        ptable=cellkey.ptable_for(policy.max_noise, policy.variance, sdc_secret),
        token_digest=hashlib.sha256(service_token.encode("utf-8")).digest(),
        signin=SignIn(store, config, environ),
        audits=AuditWriter(store),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        state.audits.flush()

    app = FastAPI(
        lifespan=lifespan,
        title="Children's services release service",
        version=API_VERSION,
        description=(
            "Protected tables, measure definitions, releases and research extracts. Every "
            "number is disclosure-controlled before it leaves this service. Sign in (POST "
            "/v1/sessions/local) and send the token as `Authorization: Bearer <token>`."
        ),
        # FastAPI's interactive docs load their script and styles from a CDN: a council's
        # network may block it, and the service makes no outside calls. /docs is a plain
        # page drawn from the same OpenAPI document instead.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.service = state

    @app.get("/docs", include_in_schema=False)
    def api_reference() -> Response:
        return Response(_reference_html(app.openapi()), media_type="text/html")

    # -- callers ------------------------------------------------------------------------------

    # The credential and role checks are pure computation: `async` keeps them on the event
    # loop instead of a hop to the thread pool each.
    async def _caller(request: Request) -> bool:
        """True when the request carries the portal's service credential; a wrong one is
        refused outright (the answer never says what was expected)."""
        request.state.started = time.perf_counter()
        presented = request.headers.get(SERVICE_HEADER)
        if presented is None:
            return False
        digest = hashlib.sha256(presented.encode("utf-8")).digest()
        if not hmac.compare_digest(digest, state.token_digest):
            raise _error(401, "service_credential", "the service credential is not valid")
        return True

    Portal = Annotated[bool, Depends(_caller)]

    async def _portal(portal: Portal) -> None:
        if not portal:
            raise _error(401, "service_credential", "this endpoint is for the portal only")

    async def _user(request: Request, portal: Portal) -> SessionUser:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPException(
                401,
                {"error": "signed_out", "message": "sign in first"},
                headers={"WWW-Authenticate": "Bearer"},
            )
        token = token.strip()
        # A page asks for many tables at once: a session checked a moment ago is answered
        # here; otherwise the store is asked on a worker thread.
        user = state.signin.recently_checked(token, portal=portal)
        if user is None:
            user = await anyio.to_thread.run_sync(
                functools.partial(state.signin.resolve, token, portal=portal)
            )
        if user is None:
            raise HTTPException(
                401,
                {"error": "signed_out", "message": "the session has ended; sign in again"},
                headers={"WWW-Authenticate": "Bearer"},
            )
        return user

    User = Annotated[SessionUser, Depends(_user)]

    def _role(*roles: str) -> Callable[[SessionUser], Awaitable[SessionUser]]:
        async def check(user: User) -> SessionUser:
            allowed = user.roles & set(roles) if roles else user.roles
            if not allowed:
                need = " or ".join(roles) if roles else "a portal role"
                raise _error(403, "forbidden", f"this needs {need}")
            return user

        return check

    AnyRole = Annotated[SessionUser, Depends(_role())]
    Admin = Annotated[SessionUser, Depends(_role(ADMIN))]
    Researcher = Annotated[SessionUser, Depends(_role(RESEARCHER))]

    # -- health and sign-in -------------------------------------------------------------------

    @app.get("/v1/health", tags=["service"])
    def health() -> dict[str, str]:
        """Liveness (no credentials, no data)."""
        return {"status": "ok", "api_version": API_VERSION}

    @app.get("/v1/auth/config", tags=["sign-in"], dependencies=[Depends(_portal)])
    def auth_config() -> dict[str, Any]:
        """How users sign in (for the portal's sign-in page)."""
        return {
            "mode": state.config.auth_mode,
            "demo": state.config.demo,
            "oidc_provider": state.config.oidc_provider,
            "contact": state.config.contact,
            "idle_timeout_s": int(state.config.idle_timeout.total_seconds()),
            "demo_accounts": (
                [
                    {"role": role, "user_id": uid, "name": name}
                    for role, (uid, name) in DEMO_ACCOUNTS.items()
                ]
                if state.config.demo
                else []
            ),
        }

    def _session_response(opened: tuple[str, SessionUser]) -> dict[str, Any]:
        token, user = opened
        return {"token": token, "user": user.public()}

    @app.post("/v1/sessions/local", tags=["sign-in"])
    def sign_in_local(body: LocalSignIn, portal: Portal, request: Request) -> Response:
        """Sign in with a local account. The portal calls this with its credential; an API
        client (R, Power BI) may call it without, and gets a session of its own. Failures
        are counted per account and client address (see `portal.service.signin`)."""
        connection = request.client.host if request.client else None
        address = body.client_address if portal else connection
        try:
            opened = state.signin.local(
                body.username, body.password, client="portal" if portal else "api",
                address=address,
            )  # fmt: skip
        except LockedOut as exc:
            return _json(
                {
                    "detail": {
                        "error": "locked",
                        "message": str(exc),
                        "retry_after": round(exc.retry_after),
                    }
                },
                429,
                {"Retry-After": str(round(exc.retry_after))},
            )
        except BadCredentials as exc:
            return _json(
                {
                    "detail": {
                        "error": "bad_credentials",
                        "message": str(exc),
                        "locked_for": round(exc.locked_for),
                    }
                },
                401,
            )
        except MethodNotAvailable as exc:
            raise _error(400, "not_available", str(exc)) from None
        return _json(_session_response(opened))

    @app.post("/v1/sessions/token", tags=["sign-in"])
    def sign_in_token(request: Request) -> Response:
        """Exchange an access token from the council's identity provider (sent as
        `Authorization: Bearer <token>`) for a session of this service (OpenID Connect
        deployments, for API clients; see `portal.service.tokens`). The session ends when
        the token does, or sooner."""
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise HTTPException(
                401,
                {"error": "no_token", "message": "send the access token as a Bearer token"},
                headers={"WWW-Authenticate": "Bearer"},
            )
        try:
            opened = state.signin.access_token(presented)
        except BadToken as exc:
            raise HTTPException(
                401,
                {"error": "bad_token", "message": str(exc)},
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            ) from None
        except MethodNotAvailable as exc:
            raise _error(400, "not_available", str(exc)) from None
        return _json(_session_response(opened))

    @app.post("/v1/sessions/demo", tags=["sign-in"], dependencies=[Depends(_portal)])
    def sign_in_demo(body: DemoSignIn) -> dict[str, Any]:
        """A demo account's session (demo mode only)."""
        try:
            return _session_response(state.signin.demo(body.role, client="portal"))
        except MethodNotAvailable as exc:
            raise _error(400, "not_available", str(exc)) from None

    @app.post("/v1/sessions/oidc", tags=["sign-in"], dependencies=[Depends(_portal)])
    def sign_in_oidc(body: OidcSignIn) -> dict[str, Any]:
        """A session for an identity the portal signed in with OpenID Connect; roles come
        from the service's role map, never from the portal."""
        try:
            return _session_response(state.signin.oidc(body.claims, client="portal"))
        except MethodNotAvailable as exc:
            raise _error(400, "not_available", str(exc)) from None

    @app.get("/v1/session", tags=["sign-in"])
    def whoami(user: User) -> dict[str, Any]:
        """The signed-in user (and it keeps the session alive)."""
        return user.public()

    @app.delete("/v1/session", tags=["sign-in"], status_code=204)
    def sign_out(user: User) -> Response:
        state.signin.sign_out(user)
        return Response(status_code=204)

    # -- releases and metadata ------------------------------------------------------------------

    @app.get("/v1/policy", tags=["releases"])
    def policy_doc(user: AnyRole) -> dict[str, Any]:
        """The disclosure-control policy every table is protected by."""
        p = state.policy
        return {
            "ref": p.ref,
            "policy_id": p.policy_id,
            "version": p.version,
            "description": p.description,
            "threshold": p.threshold,
            "max_noise": p.max_noise,
            "max_table_dims": p.max_table_dims,
            "total_label": p.total_label,
            "symbols": {
                "confidential": p.symbols.confidential,
                "low": p.symbols.low,
                "unavailable": p.symbols.unavailable,
                "not_applicable": p.symbols.not_applicable,
                "low_reliability": p.symbols.low_reliability,
            },
        }

    @app.get("/v1/dimensions", tags=["releases"])
    def dimensions(user: AnyRole) -> list[dict[str, Any]]:
        """Every dimension a table may be broken down by."""
        return [
            {"name": d.name, "title": d.title, "description": d.description} for d in DIMENSIONS
        ]

    @app.get("/v1/releases", tags=["releases"])
    def releases(user: AnyRole) -> list[dict[str, Any]]:
        """Published releases, newest first."""
        return [_release_doc(r) for r in state.store.list_releases() if r.status == "published"]

    def _get_release(release_id: str | None) -> ReleaseInfo:
        if release_id in (None, "", "latest"):
            info = state.latest_release()
            if info is None:
                raise _error(404, "no_release", "no release has been published yet")
            return info
        try:
            info = state.release_info(release_id)
        except UnknownReleaseError:
            raise _error(404, "unknown_release", f"no release {release_id!r}") from None
        if info.status != "published":
            raise _error(404, "unknown_release", f"release {release_id!r} was withdrawn")
        return info

    @app.get("/v1/releases/{release_id}", tags=["releases"])
    def release(release_id: str, user: AnyRole) -> dict[str, Any]:
        """One release (`latest` for the newest), with the one it replaced."""
        info = _get_release(release_id)
        published = [r.release_id for r in state.store.list_releases() if r.status == "published"]
        i = published.index(info.release_id)
        return _release_doc(info) | {
            "previous_release_id": published[i + 1] if i + 1 < len(published) else None
        }

    @app.get("/v1/measures", tags=["releases"])
    def measures(user: AnyRole, release: str | None = None) -> dict[str, Any]:
        """Definitions, units, allowed breakdowns and rate denominators of every measure."""
        info = _get_release(release)
        meta = state.store.read_meta(info.release_id)
        return {
            "release_id": info.release_id,
            "measures": [meta[name].to_row() for name in sorted(meta)],
        }

    # -- tables ---------------------------------------------------------------------------------

    @app.get("/v1/tables/{measure}", tags=["tables"])
    def table(
        measure: str,
        request: Request,
        user: AnyRole,
        portal: Portal,
        by: Annotated[str, Query(description="Breakdowns, comma-separated.")] = "",
        where: Annotated[
            list[str], Query(description="Filters as name:value; repeat for more.")
        ] = [],  # noqa: B006 - FastAPI's idiom for a repeated query parameter
        margins: bool = False,
        release: Annotated[str | None, Query(description="A release id (default: latest).")] = None,
        format: Literal["json", "csv"] = "json",  # noqa: A002 - the API's parameter name
    ) -> Response:
        """A protected table: the document of `portal table --format json`, or its CSV."""
        checked = time.perf_counter()
        by_t = tuple(b.strip() for b in by.split(",") if b.strip())
        where_map = _parse_where(where)
        info = _get_release(release)
        key = (
            info.release_id,
            measure,
            by_t,
            tuple(sorted((k, tuple(v)) for k, v in where_map.items())),
            margins,
        )
        cached = state.rendered.get(key)
        if cached is None:
            result = _tabulate(measure, by_t, where_map, margins, info.release_id)
            cached = (result, table_document_json(result))
            state.rendered.put(key, cached)
        result, doc_bytes = cached
        done = time.perf_counter()
        if state.audited.add_if_new((user.token_hash, *key)):
            _audit_query(user, result, portal, format)
        headers = {
            "X-Release-Id": str(result.release_id),
            "X-Data-As-At": str(result.data_as_at),
            "X-Policy": result.policy_id,
            # How long the caller checks and the table took here (the client's time minus
            # these is the network and the framework).
            "Server-Timing": (
                f"auth;dur={(checked - request.state.started) * 1000:.2f}, "
                f"table;dur={(done - checked) * 1000:.2f}"
            ),
        }
        if format == "csv":
            name = f"{measure}-{result.release_id}.csv"
            headers["Content-Disposition"] = f'attachment; filename="{name}"'
            return Response(
                table_csv(result), media_type="text/csv; charset=utf-8", headers=headers
            )
        return Response(doc_bytes, media_type="application/json", headers=headers)

    def _tabulate(
        measure: str,
        by: tuple[str, ...],
        where: dict[str, list[str]],
        margins: bool,
        release_id: str,
    ) -> ProtectedTable:
        try:
            return tabulate(
                state.store,
                measure,
                by=by,
                where=where,
                policy=state.policy,
                margins=margins,
                release_id=release_id,
                ptable=state.ptable,
            )
        except QueryError as exc:
            raise _error(
                422, "query", f"cannot tabulate {measure!r}", problems=exc.problems
            ) from None
        except NoReleaseError:
            raise _error(404, "no_release", "no release has been published yet") from None
        except UnknownMeasureError as exc:
            raise _error(404, "unknown_measure", str(exc)) from None
        except UnknownReleaseError as exc:
            raise _error(404, "unknown_release", str(exc)) from None

    def _audit_query(user: SessionUser, result: ProtectedTable, portal: bool, fmt: str) -> None:
        state.audits.put(
            user.user_id,
            "table_query",
            {
                "via": "portal" if portal else "api",
                "roles": user.role_key,
                "measure": result.measure,
                "by": list(result.by),
                "where": {k: list(v) for k, v in result.where},
                "margins": result.margins,
                "policy_id": result.policy_id,
                "rows": result.data.height,
                "format": fmt,
            },
            result.release_id,
        )

    # -- administrators -------------------------------------------------------------------------

    threshold = state.policy.threshold

    @app.get("/v1/admin/run", tags=["admin"])
    def admin_run(user: Admin) -> dict[str, Any] | None:
        """The last pipeline run: counts (small ones as <10), timings, rows per source."""
        return admin.run_summary(state.config.work_dir, threshold)

    @app.get("/v1/admin/linkage", tags=["admin"])
    def admin_linkage(user: Admin) -> dict[str, Any] | None:
        """Linkage quality of the last run against the synthetic ground truth."""
        return admin.linkage_figures(state.config.work_dir)

    @app.get("/v1/admin/quarantine", tags=["admin"])
    def admin_quarantine(user: Admin) -> list[dict[str, Any]] | None:
        """Rows quarantined at ingest by source and reason (small counts as <10)."""
        return admin.quarantine_counts(state.config.work_dir, threshold)

    @app.get("/v1/admin/releases", tags=["admin"])
    def admin_releases(user: Admin) -> list[dict[str, Any]]:
        """Every release, withdrawn ones included, with its size."""
        return [
            _release_doc(r)
            | {"measure_count": len(r.row_counts), "cube_cell_count": sum(r.row_counts.values())}
            for r in state.store.list_releases()
        ]

    @app.get("/v1/admin/governance", tags=["admin"])
    def admin_governance(user: Admin) -> dict[str, Any]:
        """Projects and their extract ledgers, evaluation shares, erasure and restriction
        requests (without tokens) and what retention says is due: read-only."""
        today = date.today()
        return {
            "projects": governance.projects(state.store, today),
            "shares": governance.shares(state.store),
            "requests": governance.requests(state.store),
            "retention_due": governance.retention_due(
                state.policy.retention, state.store, state.config.work_dir
            ),
        }

    @app.get("/v1/admin/audit", tags=["admin"])
    def admin_audit(
        user: Admin,
        action: str | None = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    ) -> list[dict[str, Any]]:
        """The newest audit entries (who, what, when, which release)."""
        frame = state.store.read_audit(action=action, limit=limit)
        return [
            {
                "at": r["at"].isoformat(),
                "actor": r["actor"],
                "action": r["action"],
                "release_id": r["release_id"],
                "detail": r["detail"],
            }
            for r in frame.iter_rows(named=True)
        ]

    # -- research extracts (the door is anonymise.extract; this is a thin wrapper) --------------

    @app.get("/v1/extracts/catalogue", tags=["extracts"])
    def extract_catalogue(user: Researcher) -> dict[str, Any]:
        """The variables a researcher may ask for and the extract policy."""
        from anonymise.catalogue import CATALOGUE, VarRole
        from anonymise.extract import load_extract_policy

        pol = load_extract_policy()
        return {
            "policy": {
                "ref": pol.ref,
                "k": pol.k,
                "l": pol.l,
                "suppression_limit": pol.suppression_limit,
                "min_k": pol.min_k,
            },
            "variables": [
                {"name": v.name, "title": v.title, "role": v.role.value, "definition": v.definition}
                for v in CATALOGUE.values()
            ],
            "sensitive": sorted(v.name for v in CATALOGUE.values() if v.role is VarRole.SENSITIVE),
        }

    @app.get("/v1/extracts/projects", tags=["extracts"])
    def extract_projects(user: Researcher) -> list[dict[str, Any]]:
        """The signed-in researcher's open, unexpired approved projects and the variables
        each may have (the register governs; nothing else is offered)."""
        from anonymise.extract import approved_for

        return [
            {
                "project_id": p.project_id,
                "title": p.title,
                "purpose": p.purpose,
                "expires_on": p.expires_on.isoformat(),
                "variables": list(p.variables),
                "family_analysis": p.family_analysis,
            }
            for p in approved_for(state.store, user.user_id)
        ]

    @app.post("/v1/extracts", tags=["extracts"])
    def extract(body: ExtractBody, user: Researcher, portal: Portal) -> Response:
        """Build one extract through the door (anonymise.extract.request_extract): an
        approved, unexpired project naming this researcher, approved variables only, checked
        with everything the project already holds. An incomplete form is a 400 (not
        audited); a refusal is a 422 with its reasons (audited by the door). The requester
        is the signed-in user, never a name the client sends."""
        from anonymise.extract import (
            ExtractInvalid,
            ExtractRefused,
            ExtractRequest,
            request_extract,
        )
        from anonymise.pseudonymise import PseudonymKeyError

        request = ExtractRequest(
            project=body.project.strip(),
            purpose=body.purpose.strip(),
            requester=user.user_id,
            variables=tuple(body.variables),
            k=body.k,
            l=body.l,
            sensitive=body.sensitive,
        )
        latest = state.latest_release()
        try:
            if state.config.work_dir is None:
                raise ExtractRefused(["the release service has no pipeline work folder"], [])
            files = request_extract(
                state.store,
                state.config.work_dir,
                request,
                demo=state.config.demo,
                data_as_at=latest.data_as_at.isoformat() if latest else "unknown",
                via="portal" if portal else "api",
            )
        except ExtractInvalid as exc:
            return _json(
                {
                    "detail": {
                        "error": "invalid",
                        "message": "the request is incomplete",
                        "problems": list(exc.problems),
                    }
                },
                400,
            )
        except ExtractRefused as exc:
            return _json(
                {
                    "detail": {
                        "error": "refused",
                        "message": "the extract was refused",
                        "reasons": list(exc.reasons),
                        "suggestions": list(exc.suggestions),
                    }
                },
                422,
            )
        except PseudonymKeyError:
            raise _error(
                503, "unavailable", "no pseudonymisation key is configured on the service"
            ) from None
        return _json(
            {
                "data_name": files.data_name,
                "certificate": json.loads(files.certificate_json),
                "files": {
                    "data": _b64(files.data),
                    "dictionary": _b64(files.dictionary),
                    "certificate_json": _b64(files.certificate_json),
                    "certificate_text": _b64(files.certificate_text),
                },
            }
        )

    # Comparisons, Supporting Families claims and the quarterly return (any role).
    app.include_router(planning.router(state, _role()))

    return app
