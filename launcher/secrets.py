"""The local stack's secrets: generated once under DATA_DIR/secrets, read by every tool that talks to it.

`costmesh up` creates them before it starts anything; any later reader (a bench, a test, `costmesh ask`)
gets the same values. The folder is 0700 and each file 0600: the secrets never appear on a command line,
where every local user could read them (/proc/PID/cmdline), only in files and in the environment of the
processes that need them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

MESH_TOKEN = "mesh-token"  # the stage services' shared secret (services/common/meshauth.py)
REDIS_PASSWORD = "redis-password"
WEAVIATE_API_KEY = "weaviate-api-key"
# Weaviate's cluster data API (CLUSTER_DATA_BIND_PORT) takes basic auth besides binding loopback (the
# listener upstream binds every interface; deploy/weaviate/bind-host.patch binds CLUSTER_BIND_ADDR).
WEAVIATE_CLUSTER_PASSWORD = "weaviate-cluster-password"
ALL = (MESH_TOKEN, REDIS_PASSWORD, WEAVIATE_API_KEY, WEAVIATE_CLUSTER_PASSWORD)


def folder(data_dir: Path) -> Path:
    path = data_dir / "secrets"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)  # mkdir's mode is filtered by the umask, and an older folder may be wider
    return path


def secret(data_dir: Path, name: str) -> str:
    """The secret called ``name``, created on first use. Concurrent first uses agree on one value."""
    path = folder(data_dir) / name
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    # Written whole under a private name, then linked into place: a reader never sees a half-written file,
    # and of two processes creating it at once, the second link fails and that process reads the first's.
    draft = path.with_name(f".{name}.{secrets.token_hex(8)}.draft")  # unique per caller, threads included
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(32))
    try:
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
    finally:
        draft.unlink()
    return _read(path)


def ensure_all(data_dir: Path) -> None:
    """Creates whichever secrets do not exist yet."""
    for name in ALL:
        secret(data_dir, name)


def private_file(path: Path, text: str) -> Path:
    """Writes ``text`` to a file only its owner can read (a config file that holds a secret)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(fd, "w") as out:
        out.write(text)
    return path


def _read(path: Path) -> str:
    value = path.read_text().strip()
    if not value:
        raise RuntimeError(f"{path} is empty; delete it and run `costmesh up` to generate a new one")
    return value
