"""`costmesh up --supervise`: a small supervisor that restarts a component whose process exited.

It runs as a process of its own (recorded as `supervisor` in the run folder, stopped first by `down`)
and watches the pid files `up` wrote. A component whose pid file is there but whose process is gone has
died: it is started again, after a backoff that doubles with each quick death (1 s up to 30 s) and resets
once it has stayed up a minute. A component `down` stopped has no pid file, so it stays stopped. Restarts
are counted in run_dir/restarts/<name>, which `costmesh status` shows.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from launcher.process import Component, ProcessTable

log = logging.getLogger(__name__)
SUPERVISOR = "supervisor"
BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 30.0
STABLE_S = 60.0  # up this long: the next death starts the backoff afresh


@dataclass
class Watch:
    component: Component
    failures: int = 0
    retry_at: float = 0.0
    started_at: float = field(default_factory=time.monotonic)


def restarts_file(run_dir: Path, name: str) -> Path:
    return run_dir / "restarts" / name


def restarts(run_dir: Path, name: str) -> int:
    try:
        return int(restarts_file(run_dir, name).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _count_restart(run_dir: Path, name: str) -> int:
    path = restarts_file(run_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = restarts(run_dir, name) + 1
    path.write_text(f"{count} {int(time.time())}\n")
    return count


def check(table: ProcessTable, run_dir: Path, watches: dict[str, Watch], now: float) -> list[str]:
    """One pass: restarts what died and is due. Returns the names restarted."""
    restarted = []
    for name, watch in list(watches.items()):
        if not (table.pids / f"{name}.pid").exists():
            continue  # stopped by `down` (or never started): not ours to bring back
        if table.pid(name) is not None:
            if now - watch.started_at >= STABLE_S:
                watch.failures = 0
            continue
        if now < watch.retry_at:
            continue
        if watch.retry_at == 0.0:  # just found dead: wait out the backoff before the first restart
            watch.retry_at = now + min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2**watch.failures)
            continue
        table.start(watch.component)
        count = _count_restart(run_dir, name)
        log.warning("%s exited; restarted it (restart %d)", name, count)
        watch.failures += 1
        watch.retry_at = 0.0
        watch.started_at = now
        restarted.append(name)
    return restarted


def supervise(
    table: ProcessTable,
    run_dir: Path,
    components: Sequence[Component],
    stop: threading.Event,
    poll_s: float = 0.5,
) -> None:
    """Watches the components that have a pid file, until `stop` is set."""
    watches = {c.name: Watch(c) for c in components if c.kind == "process"}
    while not stop.is_set():
        check(table, run_dir, watches, time.monotonic())
        stop.wait(poll_s)


def main() -> None:
    """The supervisor process: `python -m launcher.supervise` (started by `costmesh up --supervise`)."""
    from launcher.components import stack  # noqa: PLC0415 - the stack's parts, only in this process
    from launcher.settings import StackSettings  # noqa: PLC0415 - imports components' dependencies

    logging.basicConfig(level="INFO", format="%(asctime)s supervisor %(levelname)s: %(message)s")
    settings = StackSettings()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    supervise(ProcessTable(settings.run_dir), settings.run_dir, stack(settings), stop)


if __name__ == "__main__":
    main()
