"""`portal serve`: the release service (the only process with the secrets and the store)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from anonymise.cellkey import SecretNotConfiguredError, load_sdc_secret
from pipelines.store import Store
from portal.service.config import ConfigError, ServiceTokenError, load_config, load_service_token
from registry.errors import StoreError


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8600,
    store: Annotated[
        str | None, typer.Option(help="Store URL; default: $PORTAL_STORE_URL, else SQLite.")
    ] = None,
    work: Annotated[
        Path | None, typer.Option(help="The pipeline's work folder (admin figures, extracts).")
    ] = None,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo", help="Demo mode: demo accounts; refused under a production configuration."
        ),
    ] = False,
) -> None:
    """Run the release service: protected tables, releases, extracts and sign-in over HTTP."""
    import uvicorn

    from portal.service.app import create_app

    console = Console(stderr=True)

    def fail(message: str, code: int = 2) -> None:
        console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
        raise typer.Exit(code=code)

    try:
        config = load_config(demo=True if demo else None, store_url=store, work_dir=work)
        token = load_service_token()
        secret = load_sdc_secret(demo=config.demo)
        target = Store(config.store_url)
    except (ConfigError, ServiceTokenError, SecretNotConfiguredError, StoreError) as exc:
        fail(str(exc))
        return
    app = create_app(config, sdc_secret=secret, service_token=token, store=target)
    del secret, token
    mode = "DEMO MODE (demo accounts, synthetic data)" if config.demo else "production"
    console.print(
        f"Release service ({mode}) on http://{host}:{port}  API docs: /docs  "
        f"sign-in: {config.auth_mode or 'not configured'}",
        soft_wrap=True,
    )
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    finally:
        target.dispose()
