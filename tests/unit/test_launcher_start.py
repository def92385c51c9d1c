import os
from pathlib import Path

from services.cli.process import Component, ProcessTable
from services.cli.stack import _start


def test_a_running_but_unhealthy_component_is_waited_for_not_started_twice(tmp_path: Path) -> None:
    table = ProcessTable(tmp_path)
    (table.pids / "svc.pid").write_text(str(os.getpid()))  # a live process of "ours"
    answers = iter([False, False, True])
    component = Component("svc", "127.0.0.1:1", ["false"], probe=lambda: next(answers))
    said: list[str] = []
    assert _start(component, table, 5, said.append) is False
    assert (table.pids / "svc.pid").read_text() == str(os.getpid())  # not overwritten by a second start
    assert "already running" in said[0]
