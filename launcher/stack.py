"""`costmesh up`, `down` and `status`: the local stack's life cycle."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from launcher import secrets
from launcher.components import stack
from launcher.process import Component, ProcessTable
from launcher.settings import ROOT, StackSettings
from launcher.supervise import SUPERVISOR, restarts


class StartupError(RuntimeError):
    pass


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    address: str
    running: bool  # a process of ours runs (or, for an external component, nothing to run)
    healthy: bool
    note: str


def _wait(component: Component, table: ProcessTable, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if component.probe():
            return
        if component.kind == "process" and table.pid(component.name) is None:
            raise StartupError(f"{component.name} exited during start-up:\n{table.log_tail(component.name)}")
        time.sleep(0.5)
    raise StartupError(f"{component.name} not healthy after {timeout_s:.0f}s:\n{table.log_tail(component.name)}")


def _start(component: Component, table: ProcessTable, timeout_s: float, say: Callable[[str], None]) -> bool:
    """Starts one component unless it already answers. True if this call started it."""
    if component.probe():
        say(f"  {component.name:<13} already serving at {component.address}")
        return False
    if component.kind == "external":
        raise StartupError(f"{component.name} at {component.address} ({component.note}) does not answer")
    if table.pid(component.name) is not None:
        # Ours and running, but not healthy yet (starting, or waiting for a dependency): wait for it. A
        # second copy would fail on the port, and its pid file would orphan the first.
        _wait(component, table, timeout_s)
        say(f"  {component.name:<13} already running; ready at {component.address}")
        return False
    table.start(component)
    started = time.monotonic()
    _wait(component, table, timeout_s)
    say(f"  {component.name:<13} ready at {component.address} in {time.monotonic() - started:.1f}s")
    return True


def up(settings: StackSettings, only: Sequence[str] = (), say: Callable[[str], None] = print) -> list[str]:
    """Starts what is not running yet, in dependency order; the model servers start side by side.

    Returns the names of the components this call started. On failure, stops those again.
    """
    secrets.ensure_all(settings.data_dir)  # once: the mesh token, Redis's password, Weaviate's keys
    table = ProcessTable(settings.run_dir)
    components = [c for c in stack(settings) if not only or c.name in only]
    started: list[str] = []
    try:
        slow = [c for c in components if c.name.startswith("vllm-")]
        rest = [c for c in components if c not in slow]
        infra = [c for c in rest if c.name in ("redis", "weaviate", "jaeger", "prometheus")]
        services = [c for c in rest if c not in infra]
        # Redis, Weaviate, Jaeger, Prometheus and the model servers do not depend on each other: start them
        # together.
        with ThreadPoolExecutor(max_workers=len(infra + slow) or 1) as pool:
            futures = {pool.submit(_start, c, table, settings.startup_timeout_s, say): c for c in infra + slow}
            errors = []
            for future, component in futures.items():
                try:
                    if future.result():
                        started.append(component.name)
                except StartupError as exc:
                    errors.append(str(exc))
            if errors:
                raise StartupError("\n".join(errors))
        for component in services:  # inference first, orchestrator last
            if _start(component, table, settings.startup_timeout_s, say):
                started.append(component.name)
    except BaseException:
        for name in reversed(started):
            table.stop(name)
        raise
    return started


def start_supervisor(settings: StackSettings, say: Callable[[str], None] = print) -> bool:
    """Starts the supervisor (supervise.py) unless it runs. True if this call started it."""
    table = ProcessTable(settings.run_dir)
    if table.pid(SUPERVISOR) is not None:
        say(f"  {SUPERVISOR:<13} already watching")
        return False
    env = {f"COSTMESH_STACK_{k.upper()}": str(getattr(settings, k)) for k in ("run_dir", "data_dir")}
    command = [str(settings.python), "-m", "launcher.supervise"]
    table.start(Component(SUPERVISOR, "", command, lambda: True, env=env, cwd=ROOT))
    say(f"  {SUPERVISOR:<13} restarts what exits (backoff 1-30 s); restarts show in `costmesh status`")
    return True


def down(settings: StackSettings, only: Sequence[str] = (), say: Callable[[str], None] = print) -> list[str]:
    """Stops what `up` started (services first), by the pids it recorded; the supervisor before anything,
    so it does not bring back what is being stopped."""
    table = ProcessTable(settings.run_dir)
    stopped = []
    if not only and table.stop(SUPERVISOR):
        stopped.append(SUPERVISOR)
        say(f"  {SUPERVISOR:<13} stopped")
    for component in reversed(stack(settings)):
        if only and component.name not in only:
            continue
        if table.stop(component.name):
            stopped.append(component.name)
            say(f"  {component.name:<13} stopped")
    return stopped


def status(settings: StackSettings) -> list[ComponentStatus]:
    table = ProcessTable(settings.run_dir)
    out = []
    for c in stack(settings):
        running = c.kind == "external" or table.pid(c.name) is not None
        count = restarts(settings.run_dir, c.name)
        note = "; ".join(part for part in (c.note, f"restarted {count}x" if count else "") if part)
        out.append(ComponentStatus(c.name, c.address, running, c.probe(), note))
    return out
