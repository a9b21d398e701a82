"""`portal measures` and `portal table`: protected tables from the latest release.

Two ways to run them:

- on the server, as an administrator: the same library code the release service runs
  (`anonymise.release.tabulate`), in this process. It needs what only the server has: the
  store and the disclosure-control secret. Every query is audited with `--actor`.
- anywhere else, with `--service URL`: through the release service's API, signed in as a
  local account (`--user`, password prompted) or with a session token in
  $PORTAL_SESSION_TOKEN. No secret or store is needed; the service audits the query.

Either way `--format json` prints `portal.documents.table_document`: the same document the
API returns, so a table can be cited and asked for again.
"""

from __future__ import annotations

import getpass
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from registry.environment import SESSION_TOKEN_VARIABLE, SettingsError, session_token

if TYPE_CHECKING:
    from rich.console import Console as RichConsole

# The store, the privacy engine and their polars, numpy and SQLAlchemy are imported inside
# the local (on the server) branch only: through `--service` this command is a thin HTTP
# client, and those imports were most of its start-up time. For the same reason the client
# reads its one setting (the session token) through `registry.environment`, not pydantic,
# and imports rich only to print a table or an error.

# Where `make run` publishes the demo county (Makefile DEMO_DIR). Its disclosure-control
# secret is anonymise.cellkey.DEFAULT_DEMO_SECRET_FILE.
DEMO_STORE_PATH = Path("data") / "demo" / "portal.sqlite"


class Console:
    """rich's console, made on its first use: a table fetched as CSV or JSON prints
    without importing rich at all."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: RichConsole | None = None

    def print(self, *objects: Any, **kwargs: Any) -> None:
        if self._console is None:
            from rich.console import Console as RichConsole

            self._console = RichConsole(**self._options)
        self._console.print(*objects, **kwargs)


def register(app: typer.Typer) -> None:
    app.command("measures")(measures)
    app.command("table")(table)


ServiceOpt = Annotated[
    str | None,
    typer.Option(
        "--service",
        help="Go through the release service at this URL instead of the local store.",
    ),
]
UserOpt = Annotated[
    str | None,
    typer.Option(
        "--user",
        help="With --service: a local account (password prompted); else $PORTAL_SESSION_TOKEN.",
    ),
]


def _store_url(store: str | None, console: Console) -> str:
    """The store asked for; else $PORTAL_STORE_URL; else, when there is no store under
    data/ but `make run` has published the demo there, the demo store (said on stderr, so a
    planner trying the CLI after `make run` gets the tables the portal shows)."""
    from pipelines.store import DEFAULT_SQLITE_PATH, default_store_url
    from registry.settings import ServiceSettings

    settings = ServiceSettings.load()
    if store or settings.store_url is not None:
        return store or default_store_url(settings)
    if not DEFAULT_SQLITE_PATH.exists() and DEMO_STORE_PATH.exists():
        Console(stderr=True).print(
            f"[dim]Using the demo store {DEMO_STORE_PATH} (synthetic data, published by "
            "`make run`); pass --store for another.[/dim]",
            soft_wrap=True,
        )
        return f"sqlite:///{DEMO_STORE_PATH.resolve()}"
    return default_store_url(settings)


def _is_demo_store(url: str) -> bool:
    return DEMO_STORE_PATH.exists() and url.removeprefix("sqlite:///") in (
        str(DEMO_STORE_PATH),
        str(DEMO_STORE_PATH.resolve()),
    )


def _secret(url: str, *, demo: bool, console: Console) -> bytes:
    """The disclosure-control secret for tabulating from `url`. The demo store's own secret
    (data/demo/sdc.key, written by `make run`) is used for the demo store when no other is
    configured; a missing secret is never answered with advice to make a new one when one
    exists (a new secret would not match the published release)."""
    from anonymise import cellkey
    from registry.settings import ServiceSettings

    demo_secret = cellkey.DEFAULT_DEMO_SECRET_FILE
    settings = ServiceSettings.load()
    configured = settings.sdc_secret is not None or settings.sdc_secret_file is not None
    try:
        if not configured and not demo and _is_demo_store(url) and demo_secret.exists():
            return cellkey.load_sdc_secret(key_file=demo_secret)
        return cellkey.load_sdc_secret(demo=demo)
    except cellkey.SecretNotConfiguredError as e:
        if not configured and demo_secret.exists():
            _fail(
                console,
                "no disclosure-control secret is configured for this store. The demo's "
                f"secret is in {demo_secret}: for the demo store pass --demo, or set "
                f"${cellkey.SECRET_FILE_ENV}={demo_secret}. For a production store use "
                f"the secret its release service uses (${cellkey.SECRET_ENV} or "
                f"${cellkey.SECRET_FILE_ENV}).",
                2,
            )
        _fail(console, str(e), 2)
        raise


def _fail(console: Console, message: str, code: int = 1) -> None:
    from rich.markup import escape

    console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code=code)


@dataclass(frozen=True)
class _Response:
    status_code: int
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


class _Service:
    """A signed-in client of the release service's API. The standard library's HTTP client:
    a table through the service is one request, and httpx's import cost more than it."""

    def __init__(self, url: str, user: str | None, console: Console) -> None:
        self.console = console
        if not url.startswith(("http://", "https://")):
            _fail(console, f"--service needs an http:// or https:// address, not {url!r}", 2)
        self.base = url.rstrip("/")
        self.headers = {"Accept": "application/json"}
        # No proxy from the environment: the service is the council's own, and a session
        # token must not pass through a proxy it did not choose (httpx's trust_env=False).
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            token = session_token()
        except SettingsError as exc:
            _fail(console, str(exc), 2)
            raise
        if user:
            password = getpass.getpass(f"Password for {user}: ")
            body = {"username": user, "password": password}
            response = self._send("POST", "/v1/sessions/local", body=body)
            if response.status_code != 200:
                _fail(console, _message(response), 2)
            token = response.json()["token"]
        if not token:
            _fail(console, f"--service needs --user NAME or ${SESSION_TOKEN_VARIABLE}", 2)
        self.headers["Authorization"] = f"Bearer {token}"

    def _send(
        self,
        method: str,
        path: str,
        params: list[tuple[str, str]] | None = None,
        body: dict[str, Any] | None = None,
    ) -> _Response:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self.headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        # The scheme was checked in __init__ (http or https only).
        request = urllib.request.Request(  # noqa: S310
            f"{self.base}{path}{query}", data=data, headers=headers, method=method
        )
        try:
            with self.opener.open(request, timeout=60.0) as r:
                return _Response(r.status, r.read().decode("utf-8"))
        except urllib.error.HTTPError as e:  # an answer: the caller reads its detail
            return _Response(e.code, e.read().decode("utf-8", "replace"))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            _fail(self.console, f"cannot reach the release service: {reason}", 2)
            raise

    def get(self, path: str, params: list[tuple[str, str]] | None = None) -> _Response:
        response = self._send("GET", path, params=params)
        if response.status_code != 200:
            _fail(self.console, _message(response))
        return response

    def close(self) -> None:
        self.opener.close()


def _message(response: Any) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(detail, dict):
        problems = detail.get("problems") or []
        return "\n".join([str(detail.get("message", "")), *(f"  - {p}" for p in problems)])
    return str(detail)


def measures(
    store: Annotated[
        str | None,
        typer.Option(help="Store URL; default: SQLite under data/ (the demo's after `make run`)."),
    ] = None,
    service: ServiceOpt = None,
    user: UserOpt = None,
) -> None:
    """List every published measure with its definition and allowed breakdowns."""
    console = Console(emoji=False)
    if service:
        client = _Service(service, user, console)
        try:
            doc = client.get("/v1/measures").json()
        finally:
            client.close()
        head = f"release {doc['release_id']}"
        rows = {r["measure"]: r for r in doc["measures"]}
    else:
        from pipelines.store import Store

        st = Store(_store_url(store, console))
        try:
            latest = st.latest_release()
            if latest:
                metas = st.read_meta(latest.release_id)
            else:
                # Only without a release: derive (holidays, the need rules) costs every
                # `portal table` call its import time otherwise.
                from pipelines.derive import MEASURES

                metas = {n: m.meta for n, m in MEASURES.items()}
        finally:
            st.dispose()
        head = f"release {latest.release_id}" if latest else "no release published yet"
        rows = {name: m.to_row() for name, m in metas.items()}
    from rich.markup import escape

    console.print(f"[bold]Measures[/bold] ({head})\n", soft_wrap=True)
    for name in sorted(rows):
        m = rows[name]
        console.print(f"[bold]{name}[/bold]: {escape(m['title'])} ({m['unit']})", soft_wrap=True)
        console.print(f"  {escape(m['definition'])}", soft_wrap=True)
        console.print(f"  breakdowns: {', '.join(m['breakdowns'])}", soft_wrap=True)
        den = m.get("denominator")
        if den:
            per = "%" if den["per"] == 100 else f"per {den['per']:,}"
            console.print(f"  rate: {per} of {den['measure']}", soft_wrap=True)


def _parse_where(items: list[str]) -> dict[str, list[str]]:
    where: dict[str, list[str]] = {}
    for item in items:
        if "=" not in item:
            raise typer.BadParameter(f"--where expects name=value, got {item!r}")
        k, v = item.split("=", 1)
        where.setdefault(k.strip(), []).append(v.strip())
    return where


def table(
    measure: Annotated[str, typer.Argument(help="Measure name (see `portal measures`).")],
    by: Annotated[str, typer.Option(help="Comma-separated breakdowns, e.g. locality,year.")] = "",
    where: Annotated[
        list[str] | None, typer.Option(help="Filter name=value; repeat for more.")
    ] = None,
    margins: Annotated[bool, typer.Option("--margins", help="Add total rows.")] = False,
    store: Annotated[
        str | None,
        typer.Option(help="Store URL; default: SQLite under data/ (the demo's after `make run`)."),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    demo: Annotated[
        bool, typer.Option("--demo", help="Use the demo disclosure-control secret.")
    ] = False,
    actor: Annotated[str, typer.Option(help="Who is asking (written to the audit log).")] = "cli",
    release: Annotated[str | None, typer.Option(help="A release id (default: the latest).")] = None,
    service: ServiceOpt = None,
    user: UserOpt = None,
) -> None:
    """Print a protected table (cell-key perturbed, small counts suppressed)."""
    console = Console(emoji=False)
    if fmt not in ("table", "csv", "json"):
        raise typer.BadParameter("--format must be table, csv or json")
    breakdowns = [b for b in by.split(",") if b]
    filters = _parse_where(where or [])
    if service:
        client = _Service(service, user, console)
        params: list[tuple[str, str]] = [("format", "csv" if fmt == "csv" else "json")]
        if breakdowns:
            params.append(("by", ",".join(breakdowns)))
        params.extend(("where", f"{k}:{v}") for k, vs in filters.items() for v in vs)
        if margins:
            params.append(("margins", "true"))
        if release:
            params.append(("release", release))
        try:
            response = client.get(f"/v1/tables/{measure}", params=params)
        finally:
            client.close()
        if fmt == "csv":
            sys.stdout.write(response.text)
            return
        doc = response.json()
        csv_text = None
    else:
        from anonymise import cellkey
        from anonymise.policy import default_policy
        from anonymise.release import NoReleaseError, QueryError, tabulate
        from pipelines.store import Store
        from portal.documents import table_csv, table_document
        from registry.errors import StoreError

        policy = default_policy()
        url = _store_url(store, console)
        secret = _secret(url, demo=demo, console=console)
        ptable = cellkey.ptable_for(policy.max_noise, policy.variance, secret)
        st = Store(url)
        try:
            result = tabulate(
                st,
                measure,
                by=breakdowns,
                where=filters,
                policy=policy,
                margins=margins,
                ptable=ptable,
                release_id=release,
                actor=actor,
            )
        except (QueryError, NoReleaseError, StoreError, LookupError) as e:
            _fail(console, str(e))
            return
        finally:
            st.dispose()
        doc = table_document(result)
        csv_text = table_csv(result)
    if fmt == "csv":
        sys.stdout.write(csv_text or "")
        return
    if fmt == "json":
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        return
    _print_table(console, doc)


def _print_table(console: Console, doc: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    shown = [c["name"] for c in doc["columns"] if not c["name"].endswith("_value")]
    values = {c["name"] for c in doc["columns"] if c["role"] == "value"}
    t = Table(title=f"{doc['title']} (release {doc['release_id']}, data as at {doc['data_as_at']})")
    for c in shown:
        t.add_column(c, justify="right" if c in values else "left")
    for row in doc["rows"]:
        t.add_row(*[escape(str(row[c])) for c in shown])
    console.print(t)
    for f in doc["footnotes"]:
        console.print(f"[dim]{escape(f)}[/dim]", soft_wrap=True)
