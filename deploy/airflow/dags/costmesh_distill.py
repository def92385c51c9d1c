"""Retrains a task's student when its traffic drifts: sense drift -> collect -> label -> train -> evaluate ->
gate -> shadow -> promote.

Each step runs one `costmesh distill` command, which prints its result as one JSON object on its last stdout
line and exits non-zero on failure; that object is the task's XCom. A refusal (the gate, or promotion) fails
its task, so nothing downstream of it runs. The file imports nothing from costmesh: it runs in its own
environment (.venv-airflow) and reaches costmesh only through the command line.

    COSTMESH_ROOT  the project checkout (default: three folders above this file's folder)
    COSTMESH_BIN   the costmesh command (default: <root>/.venv/bin/costmesh)
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import Param, chain, dag, task

log = logging.getLogger(__name__)


class CommandFailed(RuntimeError):
    """A `costmesh distill` command exited non-zero (a refusal included); its JSON says why when it has one."""


def _root() -> Path:
    # Read when a task runs, not at import: the DAG processor and the task runner may have different envs.
    return Path(os.environ.get("COSTMESH_ROOT") or Path(__file__).resolve().parents[3])


def _costmesh_bin() -> str:
    return os.environ.get("COSTMESH_BIN") or str(_root() / ".venv" / "bin" / "costmesh")


def _last_json(stdout: str) -> dict[str, Any] | None:
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        return None
    try:
        parsed = json.loads(lines[-1])
    except json.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def distill(step: str, task_name: str, *args: str) -> dict[str, Any]:
    """Runs `costmesh distill STEP --task TASK ARGS...` from the project root and returns its JSON result."""
    argv = [_costmesh_bin(), "distill", step, "--task", task_name, *args]
    log.info("running %s", " ".join(argv))
    # stderr is inherited, not captured: a long label or train step shows its progress in the task log as it goes.
    done = subprocess.run(argv, cwd=_root(), stdout=subprocess.PIPE, text=True, check=False)
    result = _last_json(done.stdout)
    log.info("exit %d, result %s", done.returncode, json.dumps(result))
    if done.returncode != 0:
        why = (result or {}).get("why") or "no reason printed (its stderr is in the log above)"
        raise CommandFailed(f"costmesh distill {step} exited {done.returncode}: {why}")
    if result is None:
        raise CommandFailed(f"costmesh distill {step} printed no JSON object on its last line:\n{done.stdout}")
    return result


def _limit(params: dict[str, Any]) -> list[str]:
    return ["--limit", str(params["limit"])] if params.get("limit") else []


@dag(
    dag_id="costmesh_distill",
    # Run on demand (or by an alert); a schedule would only re-sense drift that nobody asked about.
    schedule=None,
    catchup=False,
    max_active_runs=1,  # two runs would train and promote the same task's student at once
    tags=["costmesh", "distill"],
    default_args={"retries": 0, "execution_timeout": timedelta(hours=3)},  # a refusal is an answer, not a flake
    params={
        "task": Param("banking77", type="string", description="the costmesh task to distil"),
        "source_file": Param(
            "bench/data/banking77/train.csv",
            type=["null", "string"],
            description="what to label (relative to the project root); empty labels the collected dataset",
        ),
        "limit": Param(2000, type=["null", "integer"], minimum=1, description="at most this many examples"),
        "epochs": Param(3, type="integer", minimum=1),
        "floor": Param(0.95, type="number", minimum=0, maximum=1, description="the gate's agreement floor"),
        "min_shadow": Param(200, type="integer", minimum=0, description="shadow requests needed to promote"),
        "shadow_replay": Param(200, type="integer", minimum=0, description="held-out requests to shadow"),
        "force": Param(False, type="boolean", description="retrain without waiting for drift"),
    },
)
def costmesh_distill() -> None:
    @task.short_circuit
    def sense_drift(params: dict[str, Any]) -> bool:
        result = distill("drift", params["task"])
        go = bool(params["force"] or result.get("drifted"))
        log.info("drifted=%s force=%s: %s", result.get("drifted"), params["force"], "retrain" if go else "stop")
        return go

    @task
    def collect(params: dict[str, Any]) -> dict[str, Any]:
        return distill("collect", params["task"])

    @task
    def label(collected: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        source = params.get("source_file") or collected["dataset"]
        path = Path(source) if Path(source).is_absolute() else _root() / source
        return distill("label", params["task"], "--from", str(path), *_limit(params))

    @task
    def train(params: dict[str, Any]) -> dict[str, Any]:
        return distill("train", params["task"], "--epochs", str(params["epochs"]), *_limit(params))

    @task
    def evaluate(params: dict[str, Any]) -> dict[str, Any]:
        return distill("eval", params["task"], *_limit(params))

    @task
    def gate(params: dict[str, Any]) -> dict[str, Any]:
        return distill("gate", params["task"], "--floor", str(params["floor"]))

    @task
    def shadow(params: dict[str, Any]) -> dict[str, Any]:
        return distill("shadow", params["task"], "--replay", str(params["shadow_replay"]))

    @task
    def promote(params: dict[str, Any]) -> dict[str, Any]:
        return distill("promote", params["task"], "--min-shadow", str(params["min_shadow"]))

    # Airflow fills each task's `params` argument from the run's context (a run's conf overrides the defaults).
    collected = collect()
    chain(sense_drift(), collected, label(collected), train(), evaluate(), gate(), shadow(), promote())


costmesh_distill()
