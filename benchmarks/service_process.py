"""Waiting for a release service started by a benchmark (`portal serve` in its own process)."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request


def wait_until_up(base: str, service: subprocess.Popen[bytes], *, tries: int = 300) -> None:
    """Return once `base`/v1/health answers; stop the benchmark if the process exits first
    or it never answers (a minute)."""
    for _ in range(tries):
        try:
            with urllib.request.urlopen(f"{base}/v1/health", timeout=1):  # noqa: S310 - http://127.0.0.1
                return
        except OSError:
            if service.poll() is not None:
                sys.exit("the release service did not start")
            time.sleep(0.2)
    sys.exit("the release service did not answer")
