"""Helpers for tests that need the release service: a small release, and the service running
for real (uvicorn on a free port, in this process) so the portal's HTTP client talks to it
over a socket exactly as it does in production."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import uvicorn

from anonymise.policy import default_policy
from pipelines.store import Store
from portal.service import accounts
from portal.service.app import create_app
from portal.service.config import ServiceConfig, parse_config

SERVICE_TOKEN = "test-service-credential-" + "x" * 24  # noqa: S105 - a test value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def small_release(url: str, *, data_as_at: date = date(2025, 3, 31)) -> str:
    """A release of the release-layer tests' cubes (two measures, one a rate)."""
    from tests.test_release import CUBES

    store = Store(url)
    try:
        return store.write_release(
            dict(CUBES.cubes), CUBES.meta, policy_id=default_policy().ref, data_as_at=data_as_at
        )
    finally:
        store.dispose()


def service_config(
    store_url: str,
    *,
    demo: bool = False,
    work_dir: Path | None = None,
    raw: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    **overrides: Any,
) -> ServiceConfig:
    config = parse_config(
        raw or {}, env=env or {}, demo=demo, store_url=store_url, work_dir=work_dir
    )
    return replace(config, **overrides) if overrides else config


def accounts_file(path: Path, users: dict[str, tuple[str, list[str]]]) -> Path:
    """An accounts file: user name -> (password hash, roles)."""
    lines = []
    for name, (pw_hash, roles) in users.items():
        lines += [
            f"[accounts.{name}]",
            f'name = "{name.title()}"',
            f"roles = {roles!r}".replace("'", '"'),
            f'password_hash = "{pw_hash}"',
            "",
        ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def cheap_hasher() -> None:
    """argon2 with small parameters: the tests sign in many times (production keeps the
    library's defaults)."""
    from argon2 import PasswordHasher

    accounts.HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    accounts._DUMMY.clear()


class LiveService:
    """The release service for real: uvicorn in a thread of this process, on a free port."""

    def __init__(self, config: ServiceConfig, *, sdc_secret: bytes, store: Store | None = None):
        self.store = store or Store(config.store_url)
        self.app = create_app(
            config, sdc_secret=sdc_secret, service_token=SERVICE_TOKEN, store=self.store
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def state(self) -> Any:
        return self.app.state.service

    def use(self, config: ServiceConfig) -> None:
        self.state.use_config(config)

    def __enter__(self) -> LiveService:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the release service did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.store.dispose()
