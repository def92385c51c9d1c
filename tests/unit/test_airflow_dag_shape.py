"""The distillation DAG (deploy/airflow/dags/costmesh_distill.py) as Airflow parses and runs it, without the stack.

Airflow lives in its own environment (.venv-airflow, scripts/setup-airflow-env.sh), not in .venv: each check
runs a small script there, which prints one JSON line back. A fake `costmesh` (COSTMESH_BIN) stands in for
the `costmesh distill` commands and records how it was called.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT

AIRFLOW_BIN = ROOT / ".venv-airflow" / "bin"
DAGS = ROOT / "deploy" / "airflow" / "dags"

pytestmark = pytest.mark.skipif(
    not (AIRFLOW_BIN / "python").exists(), reason="no .venv-airflow: run scripts/setup-airflow-env.sh"
)

# Log lines on stdout and stderr first, as the real commands may print; the JSON result is the last line.
FAKE_COSTMESH = """#!/bin/sh
printf '%s\\n' "$*" >> "$FAKE_CALLS"
echo "working on $2"
echo "a log line" >&2
[ "$2" = "$FAKE_SILENT" ] && exit 0
case "$2" in
  drift) echo "{\\"task\\": \\"t\\", \\"drifted\\": $FAKE_DRIFTED, \\"requests\\": 9, \\"source\\": \\"router\\"}" ;;
  collect) echo '{"task": "t", "collected": 3, "dataset": "/data/t-collected.jsonl"}' ;;
  gate) echo '{"passed": false, "why": "agreement 0.80 below floor 0.95"}'; exit 1 ;;
  *) echo "{\\"task\\": \\"t\\", \\"step\\": \\"$2\\"}" ;;
esac
"""

SHAPE = """
import json
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=DAGS)
dag = bag.dags.get("costmesh_distill")
print(json.dumps({
    "import_errors": {str(k): v for k, v in bag.import_errors.items()},
    "dag_ids": sorted(bag.dag_ids),
    "downstream": {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks} if dag else {},
    "params": dag.params.dump() if dag else {},
    "schedule": repr(dag.schedule) if dag else None,
    "catchup": dag.catchup if dag else None,
    "sense_drift_bases": [c.__name__ for c in type(dag.task_dict["sense_drift"]).__mro__] if dag else [],
}))
"""

# Calls the tasks' own functions (no DAG run, no database): what each one runs and returns.
CALLS = """
import json, os
from airflow.dag_processing.dagbag import DagBag

dag = DagBag(dag_folder=DAGS).dags["costmesh_distill"]
fn = {t.task_id: t.python_callable for t in dag.tasks}
params = dict(dag.params.dump(), task="t")
out = {}
os.environ["FAKE_DRIFTED"] = "false"
out["quiet"] = fn["sense_drift"](params=params)
out["quiet_forced"] = fn["sense_drift"](params=dict(params, force=True))
os.environ["FAKE_DRIFTED"] = "true"
out["drifted"] = fn["sense_drift"](params=params)
collected = fn["collect"](params=params)
out["label"] = fn["label"](collected, params=params)
fn["label"](collected, params=dict(params, source_file="", limit=None))
os.environ["FAKE_SILENT"] = "train"  # exits 0 without a JSON line
for step in ("gate", "train"):
    try:
        fn[step](params=params)
    except Exception as e:
        out[step] = f"{type(e).__name__}: {e}"
print(json.dumps(out))
"""


def airflow_env(home: Path, calls: Path) -> dict[str, str]:
    """Airflow's settings for a throwaway home (never ~/airflow), and the fake costmesh."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "COSTMESH_"))}
    fake = home / "costmesh"
    home.mkdir(parents=True, exist_ok=True)
    fake.write_text(FAKE_COSTMESH)
    fake.chmod(0o755)
    return {
        **env,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "COSTMESH_BIN": str(fake),
        "FAKE_CALLS": str(calls),
        "FAKE_DRIFTED": "true",
        "FAKE_SILENT": "",
    }


def in_airflow(script: str, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [str(AIRFLOW_BIN / "python"), "-c", f"DAGS = {str(DAGS)!r}\n{script}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def airflow(*args: str, env: dict[str, str], timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AIRFLOW_BIN / "airflow"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def test_the_dag_imports_cleanly_and_runs_its_steps_in_order(tmp_path: Path) -> None:
    shape = in_airflow(SHAPE, airflow_env(tmp_path / "airflow", tmp_path / "calls"))
    assert shape["import_errors"] == {}
    assert shape["dag_ids"] == ["costmesh_distill"]
    assert shape["downstream"] == {
        "sense_drift": ["collect"],
        "collect": ["label"],
        "label": ["train"],
        "train": ["evaluate"],
        "evaluate": ["gate"],
        "gate": ["shadow"],
        "shadow": ["promote"],
        "promote": [],
    }
    assert "ShortCircuitOperator" in shape["sense_drift_bases"]
    assert shape["schedule"] == "None"
    assert shape["catchup"] is False
    assert shape["params"] == {
        "task": "banking77",
        "source_file": "bench/data/banking77/train.csv",
        "limit": 2000,
        "epochs": 3,
        "floor": 0.95,
        "min_shadow": 200,
        "shadow_replay": 200,
        "force": False,
    }


def test_each_step_runs_its_command_and_returns_the_last_json_line(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    out = in_airflow(CALLS, airflow_env(tmp_path / "airflow", calls))
    assert (out["quiet"], out["quiet_forced"], out["drifted"]) == (False, True, True)
    assert out["label"] == {"task": "t", "step": "label"}
    assert out["gate"] == "CommandFailed: costmesh distill gate exited 1: agreement 0.80 below floor 0.95"
    assert out["train"].startswith("CommandFailed: costmesh distill train printed no JSON")
    assert calls.read_text().splitlines() == [
        "distill drift --task t",
        "distill drift --task t",
        "distill drift --task t",
        "distill collect --task t",
        # A relative source file is the project root's (found from the DAG file's place, no COSTMESH_ROOT).
        f"distill label --task t --from {ROOT / 'bench/data/banking77/train.csv'} --limit 2000",
        "distill label --task t --from /data/t-collected.jsonl",  # no source file: what collect exported
        "distill gate --task t --floor 0.95",
        "distill train --task t --epochs 3 --limit 2000",
    ]


def test_a_refused_gate_fails_the_run_and_nothing_after_it_runs(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    env = airflow_env(tmp_path / "airflow", calls)
    migrated = airflow("db", "migrate", env=env)
    assert migrated.returncode == 0, migrated.stdout[-3000:] + migrated.stderr[-3000:]
    conf = {"task": "t", "force": True, "floor": 0, "min_shadow": 1, "shadow_replay": 4, "epochs": 1, "limit": 40}
    run = airflow("dags", "test", "costmesh_distill", "-c", json.dumps(conf), env=env)
    assert run.returncode != 0, run.stdout[-3000:]
    assert "agreement 0.80 below floor 0.95" in run.stdout  # the gate's reason, in the task's log
    # The run's conf reached every command, and nothing after the gate ran (tests/e2e/test_airflow_dag.py
    # reads the task states back from Airflow).
    assert calls.read_text().splitlines() == [
        "distill drift --task t",
        "distill collect --task t",
        f"distill label --task t --from {ROOT / 'bench/data/banking77/train.csv'} --limit 40",
        "distill train --task t --epochs 1 --limit 40",
        "distill eval --task t --limit 40",
        "distill gate --task t --floor 0",
    ]
