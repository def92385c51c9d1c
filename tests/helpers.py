"""Small helpers several test modules share."""

from __future__ import annotations

import functools
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def costmesh(*args: str, env: dict[str, str] | None = None, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    """Runs the `costmesh` command line from the checkout, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


@functools.cache
def api_key(tenant: str, *options: str) -> str:
    """A key for the tenant, made with `costmesh keys create` as a user would (once per tenant and options)."""
    done = costmesh("keys", "create", "--tenant", tenant, *options, timeout_s=60)
    assert done.returncode == 0, done.stderr
    key: str = json.loads(done.stdout)["key"]
    return key
