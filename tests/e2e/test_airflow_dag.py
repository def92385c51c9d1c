"""The distillation DAG end to end: `airflow dags test costmesh_distill` retrains a small task against the running
mesh, from its drift check to its promotion, and the task ends up serving its student.

Airflow runs from its own environment (.venv-airflow) with a throwaway home and SQLite database, without a
scheduler; its tasks run the `costmesh distill` commands of this checkout (.venv/bin/costmesh).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as redis

from services.common.meshauth import MESH_TOKEN_ENV
from services.common.tasks import REGISTRY_KEY
from tests.e2e.conftest import RunningStack
from tests.helpers import ROOT, costmesh

pytestmark = pytest.mark.e2e
AIRFLOW = ROOT / ".venv-airflow" / "bin" / "airflow"
STEPS = ["sense_drift", "collect", "label", "train", "evaluate", "gate", "shadow", "promote"]
# Small enough for CPU: 40 examples, one epoch; no floor, so the gate's verdict is not what is tested here.
CONF = {"limit": 40, "epochs": 1, "floor": 0, "min_shadow": 1, "shadow_replay": 4, "force": True}


@pytest.fixture(scope="session")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    assert AIRFLOW.exists(), "no .venv-airflow: run `make setup` (scripts/setup-airflow-env.sh)"
    home = tmp_path_factory.mktemp("airflow")
    # The tasks' commands see what an operator's shell would: not the in-process tests' mesh token.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW") and k != MESH_TOKEN_ENV}
    env = {
        **inherited,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "deploy" / "airflow" / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }
    migrated = airflow("db", "migrate", env=env)
    assert migrated.returncode == 0, migrated.stdout[-3000:] + migrated.stderr[-3000:]
    yield env


def airflow(*args: str, env: dict[str, str], timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AIRFLOW), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
    )


def last_json(done: subprocess.CompletedProcess[str]) -> list[dict[str, str]]:
    """Airflow's CLI logs on stdout too: its `-o json` answer is the last line."""
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    answer: list[dict[str, str]] = json.loads(done.stdout.splitlines()[-1])
    return answer


def test_the_dag_retrains_a_task_and_promotes_its_student(
    running_stack: RunningStack, airflow_env: dict[str, str], tmp_path: Path
) -> None:
    name = f"e2edistill{uuid.uuid4().hex[:8]}"
    created = costmesh(
        "tasks",
        "create",
        "--name",
        name,
        "--labels-from",
        "bench/data/banking77/train.csv",
        "--instruction",
        "Classify the bank customer's message into one of the banking77 intent categories.",
    )
    assert created.returncode == 0, created.stderr

    run = airflow(
        "dags", "test", "costmesh_distill", "-c", json.dumps({**CONF, "task": name}), env=airflow_env, timeout_s=1800
    )
    log = tmp_path / "dags-test.log"
    log.write_text(run.stdout + run.stderr)  # the whole run's log, for a failure's post-mortem
    assert run.returncode == 0, f"{log}:\n{run.stdout[-6000:]}{run.stderr[-3000:]}"

    runs = last_json(airflow("dags", "list-runs", "costmesh_distill", "-o", "json", env=airflow_env))
    assert [r["state"] for r in runs] == ["success"]  # this session's Airflow home has seen this run only
    states = last_json(
        airflow("tasks", "states-for-dag-run", "costmesh_distill", runs[0]["run_id"], "-o", "json", env=airflow_env)
    )
    # Every step ran: a skipped drift check would also leave the run "success".
    assert {t["task_id"]: t["state"] for t in states} == dict.fromkeys(STEPS, "success")

    shown = costmesh("tasks", "show", name, "--json")
    assert shown.returncode == 0, shown.stderr
    shown_task = json.loads(shown.stdout)
    assert shown_task["state"] == "serving"
    # Every replayed request was compared live: the shadow step waits for the services to see its state.
    assert shown_task["shadow_n"] >= CONF["shadow_replay"], shown_task


@pytest.fixture(autouse=True)
def forget_tasks(running_stack: RunningStack) -> Iterator[None]:
    """A promoted student left in the registry would answer later tests' banking questions."""
    yield
    settings = running_stack.settings

    async def drop() -> None:
        client = redis.Redis.from_url(settings.redis_url())
        names = [n.decode() for n in await client.hkeys(REGISTRY_KEY) if n.startswith(b"e2edistill")]  # type: ignore[misc]
        if names:
            await client.hdel(REGISTRY_KEY, *names)  # type: ignore[misc]
        await client.aclose()
        for name in names:
            shutil.rmtree(settings.data_dir / "tasks" / name, ignore_errors=True)

    asyncio.run(drop())
