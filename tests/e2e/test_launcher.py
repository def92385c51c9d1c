"""`costmesh up` / `down` on a private run folder and ports: down leaves no process of ours behind."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from launcher.process import ProcessTable
from tests.helpers import costmesh, free_port

pytestmark = pytest.mark.e2e


def test_up_then_down_leaves_nothing_running(tmp_path: Path) -> None:
    env = {
        "COSTMESH_STACK_RUN_DIR": str(tmp_path / "run"),
        "COSTMESH_STACK_DATA_DIR": str(tmp_path / "data"),
        "COSTMESH_STACK_REDIS_PORT": str(free_port()),
        "COSTMESH_STACK_ROUTER_PORT": str(free_port()),
        "COSTMESH_STACK_METRICS_BASE_PORT": str(free_port()),
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return costmesh(*args, env=env, timeout_s=120)

    up = cli("up", "--only", "redis", "router")
    assert up.returncode == 0, up.stdout + up.stderr
    table = ProcessTable(tmp_path / "run")
    pids = [table.pid("redis"), table.pid("router")]
    assert all(pids), up.stdout
    # A demo key for `costmesh ask`, printed once and kept where only this user can read it.
    demo = tmp_path / "data" / "secrets" / "demo-key"
    assert demo.read_text().strip() in up.stdout and demo.stat().st_mode & 0o777 == 0o600
    again = cli("up", "--only", "redis", "router")  # idempotent: nothing new is started
    assert "already serving" in again.stdout
    assert demo.read_text().strip() in again.stdout  # the same key, still valid
    assert [table.pid("redis"), table.pid("router")] == pids

    down = cli("down", "--only", "redis", "router")
    assert down.returncode == 0
    assert "stopped 2 component(s)" in down.stdout
    for pid in pids:
        assert pid is not None
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    assert table.pid("redis") is None
