import os
import time
from pathlib import Path

from launcher.process import Component, ProcessTable
from launcher.stack import _start


def test_a_running_but_unhealthy_component_is_waited_for_not_started_twice(tmp_path: Path) -> None:
    table = ProcessTable(tmp_path)
    (table.pids / "svc.pid").write_text(str(os.getpid()))  # a live process of "ours"
    answers = iter([False, False, True])
    component = Component("svc", "127.0.0.1:1", ["false"], probe=lambda: next(answers))
    said: list[str] = []
    assert _start(component, table, 5, said.append) is False
    assert (table.pids / "svc.pid").read_text() == str(os.getpid())  # not overwritten by a second start
    assert "already running" in said[0]


def test_a_killed_component_not_yet_reaped_by_another_process_counts_as_gone(tmp_path: Path) -> None:
    import subprocess
    import sys

    # The grandchild is killed while its parent (not us) has not reaped it: a zombie of another process.
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess,sys,time; p=subprocess.Popen(['sleep','60']); print(p.pid, flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        table = ProcessTable(tmp_path)
        (table.pids / "svc.pid").write_text(str(child))
        assert table.pid("svc") == child
        os.kill(child, 9)
        for _ in range(50):
            if table.pid("svc") is None:
                break
            time.sleep(0.05)
        assert table.pid("svc") is None
    finally:
        parent.kill()
        parent.wait()
