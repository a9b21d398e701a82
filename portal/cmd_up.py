"""`portal up`: start the release service and the portal, and stop both together.

What `make run` runs (`portal up --demo`):

1. the release service (`portal serve`) with this environment: the disclosure-control
   secret, the pseudonymisation key, the store and the work folder reach it and only it;
2. a wait until its `/v1/health` answers;
3. the portal (Streamlit, `portal_web.py`) with a scrubbed environment: PATH, HOME, LANG,
   LC_*, TERM, the service URL and credential, and PORTAL_DEMO in demo mode; nothing else
   (no key, no secret, no store URL, no work path); headless, file watcher off.

In demo mode the service credential is a fresh random one for every launch. Ctrl-C
(SIGINT) or SIGTERM stops both; if either process stops on its own, the other is stopped
too and `portal up` exits with an error.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from portal.service.config import ServiceTokenError, load_service_token
from registry.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[1]
WEB_SCRIPT = "portal_web.py"
# The only variables the web process inherits, besides the ones `portal up` sets.
WEB_ENV_ALLOW = ("PATH", "HOME", "LANG", "TERM")
WEB_ENV_PREFIX_ALLOW = ("LC_",)
# Test hook: a file where the web process records every file it opens (portal.web.boot).
AUDIT_ENV = "PORTAL_AUDIT_OPENS"
HEALTH_TIMEOUT_S = 90.0


def register(app: typer.Typer) -> None:
    app.command("up")(up)


def web_environment(
    environ: Mapping[str, str], *, service_url: str, token: str, demo: bool
) -> dict[str, str]:
    """The web process's whole environment: an allow-list, never a deny-list."""
    env = {
        k: v for k, v in environ.items() if k in WEB_ENV_ALLOW or k.startswith(WEB_ENV_PREFIX_ALLOW)
    }
    env["PORTAL_SERVICE_URL"] = service_url
    env["PORTAL_SERVICE_TOKEN"] = token
    if demo:
        env["PORTAL_DEMO"] = "1"
    audit = ServiceSettings.load(environ).audit_opens
    if audit is not None:
        env[AUDIT_ENV] = str(audit)
    return env


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v1/health", timeout=2) as response:  # noqa: S310
            return bool(response.status == 200)
    except OSError:
        return False


def _wait_for(
    service: subprocess.Popen[bytes], url: str, stopping: Callable[[], bool]
) -> str | None:
    """Wait until the service answers; the reason it never will, or None."""
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while not _healthy(url):
        if stopping():
            return None
        if service.poll() is not None:
            return "the release service did not start (its error is above)"
        if time.monotonic() > deadline:
            return f"the release service did not answer within {HEALTH_TIMEOUT_S:.0f} s"
        time.sleep(0.2)
    return None


def _stop(proc: subprocess.Popen[bytes], name: str) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        typer.echo(f"portal up: {name} did not stop in 15 s; killing it", err=True)
        proc.kill()
        proc.wait(timeout=5)


def up(
    demo: Annotated[
        bool, typer.Option("--demo", help="Demo mode: demo accounts, a fresh credential.")
    ] = False,
    port: Annotated[int, typer.Option(help="The portal's port.")] = 8501,
    address: Annotated[str, typer.Option(help="The portal's address.")] = "127.0.0.1",
    service_port: Annotated[int, typer.Option(help="The release service's port.")] = 8600,
    store: Annotated[str | None, typer.Option(help="Store URL (the service's only).")] = None,
    work: Annotated[
        Path | None, typer.Option(help="The pipeline's work folder (the service's only).")
    ] = None,
) -> None:
    """Start the release service and the portal (Ctrl-C stops both)."""
    if demo:
        token = secrets.token_urlsafe(32)
    else:
        try:
            token = load_service_token()
        except ServiceTokenError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=2) from None
    service_url = f"http://127.0.0.1:{service_port}"
    service_env = {k: v for k, v in os.environ.items() if k != "PORTAL_SERVICE_TOKEN_FILE"}
    service_env["PORTAL_SERVICE_TOKEN"] = token
    service_env.pop(AUDIT_ENV, None)
    serve = [sys.executable, "-m", "portal.cli", "serve", "--port", str(service_port)]
    serve += ["--store", store] if store else []
    serve += ["--work", str(work)] if work else []
    serve += ["--demo"] if demo else []
    web = [
        sys.executable,
        "-m",
        "portal.web.boot",
        "run",
        WEB_SCRIPT,
        "--server.port",
        str(port),
        "--server.address",
        address,
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
    ]

    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    service = subprocess.Popen(serve, cwd=ROOT, env=service_env)  # noqa: S603
    portal: subprocess.Popen[bytes] | None = None
    code = 0
    try:
        problem = _wait_for(service, service_url, lambda: stopping)
        if problem:
            typer.echo(f"portal up: {problem}", err=True)
            code = 1
        elif not stopping:
            portal = subprocess.Popen(  # noqa: S603
                web,
                cwd=ROOT,
                env=web_environment(os.environ, service_url=service_url, token=token, demo=demo),
            )
            typer.echo(
                f"portal up: release service {service_url} (pid {service.pid}), portal "
                f"http://{address}:{port} (pid {portal.pid}); Ctrl-C stops both",
                err=True,
            )
        while portal is not None and not stopping:
            if service.poll() is not None or portal.poll() is not None:
                which = "release service" if service.poll() is not None else "portal"
                typer.echo(f"portal up: the {which} stopped; stopping the other", err=True)
                code = 1
                break
            time.sleep(0.2)
    finally:
        if portal is not None:
            _stop(portal, "the portal")
        _stop(service, "the release service")
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if code:
        raise typer.Exit(code=code)
