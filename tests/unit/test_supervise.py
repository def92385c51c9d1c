"""The supervisor restarts a component whose process died, with backoff, and leaves stopped ones alone."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

from launcher import stack
from launcher.process import Component, ProcessTable
from launcher.settings import StackSettings
from launcher.supervise import Watch, check, restarts, supervise


def sleeper(name: str) -> Component:
    return Component(name, "", [sys.executable, "-c", "import time; time.sleep(120)"], lambda: True)


def wait_for(condition: object, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_a_killed_component_is_restarted_and_a_stopped_one_is_not(tmp_path: Path) -> None:
    table = ProcessTable(tmp_path)
    components = [sleeper("orchestrator"), sleeper("cache")]
    for c in components:
        table.start(c)
    stop = threading.Event()
    watcher = threading.Thread(target=supervise, args=(table, tmp_path, components, stop, 0.05))
    watcher.start()
    try:
        first = table.pid("orchestrator")
        assert first is not None
        os.killpg(first, signal.SIGKILL)  # as the SIGKILL of the orchestrator
        assert wait_for(lambda: table.pid("orchestrator") not in (None, first))
        assert wait_for(lambda: restarts(tmp_path, "orchestrator") == 1)  # counted just after the start
        table.stop("cache")  # what `down` does: the pid file goes first, so it stays down
        time.sleep(1.5)
        assert table.pid("cache") is None and restarts(tmp_path, "cache") == 0
    finally:
        stop.set()
        watcher.join()
        table.stop("orchestrator")


def test_quick_deaths_back_off_doubling(tmp_path: Path) -> None:
    table = ProcessTable(tmp_path)
    dies = Component("router", "", [sys.executable, "-c", "pass"], lambda: True)  # exits at once
    table.start(dies)
    watches = {"router": Watch(dies)}
    now = time.monotonic()
    wait_for(lambda: table.pid("router") is None)
    assert check(table, tmp_path, watches, now) == []  # found dead: the backoff starts
    assert check(table, tmp_path, watches, now + 1.0) == ["router"]  # 1 s later: restarted
    wait_for(lambda: table.pid("router") is None)
    check(table, tmp_path, watches, now + 1.1)
    assert check(table, tmp_path, watches, now + 2.5) == []  # the second wait is 2 s
    assert check(table, tmp_path, watches, now + 3.2) == ["router"]
    assert restarts(tmp_path, "router") == 2


def test_down_stops_the_supervisor_first_and_status_shows_restarts(tmp_path: Path) -> None:
    settings = StackSettings(run_dir=tmp_path / "run", data_dir=tmp_path / "data")
    table = ProcessTable(settings.run_dir)
    table.start(sleeper("supervisor"))
    (settings.run_dir / "restarts").mkdir()
    (settings.run_dir / "restarts" / "orchestrator").write_text("3 1800000000\n")
    rows = {row.name: row for row in stack.status(settings)}
    assert "restarted 3x" in rows["orchestrator"].note
    stopped = stack.down(settings, say=lambda _: None)
    assert stopped[0] == "supervisor" and table.pid("supervisor") is None
