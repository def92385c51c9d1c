"""Starting, probing and stopping the stack's processes. Each runs in its own session (process group),
so `down` can stop it and everything it spawned, and records its pid in the run folder."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Component:
    name: str
    address: str
    command: list[str]
    probe: Callable[[], bool]  # True once the component answers
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    kind: str = "process"  # "process": we start it; "external": it runs elsewhere, we only probe it
    note: str = ""


class ProcessTable:
    """Pid files under run_dir/pids, logs under run_dir/logs."""

    def __init__(self, run_dir: Path) -> None:
        self.pids = run_dir / "pids"
        self.logs = run_dir / "logs"
        self.pids.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)

    def pid(self, name: str) -> int | None:
        path = self.pids / f"{name}.pid"
        try:
            pid = int(path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _alive(pid) else None

    def start(self, component: Component) -> int:
        log = (self.logs / f"{component.name}.log").open("ab")
        proc = subprocess.Popen(
            component.command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **component.env},
            cwd=component.cwd,
            start_new_session=True,
        )
        (self.pids / f"{component.name}.pid").write_text(str(proc.pid))
        return proc.pid

    def stop(self, name: str, timeout_s: float = 20.0) -> bool:
        """SIGTERM to the component's process group, SIGKILL after timeout_s. True if it was running."""
        pid = self.pid(name)
        (self.pids / f"{name}.pid").unlink(missing_ok=True)
        if pid is None:
            return False
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _group_alive(pid):
            time.sleep(0.1)
        if _group_alive(pid):
            _signal_group(pid, signal.SIGKILL)
        return True

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.logs / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive: reap it if it is our child, and recognise it if it is another process's
    # (killed, not yet reaped by the process that started it).
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False  # no /proc (not Linux): kill(pid, 0) has to do
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"  # the state follows the parenthesised name


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _alive(pgid) or _any_in_group(pgid)


def _any_in_group(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
