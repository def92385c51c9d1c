"""A promoted student behind the router, on the running stack: the router sends the task's requests to it
(named, or by nearest centroid), the student engine loads its adapter on first use, and the router's
drift metrics see every request of the task. The promotion path itself (label, gate, shadow, promote) is
the Airflow DAG's test (test_airflow_dag.py) and tests/integration/test_distill_gate.py."""

from __future__ import annotations

import asyncio
import csv
import json
import shutil
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import replace

import grpc
import httpx
import pytest
import redis.asyncio as redis

from costmesh.v1 import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from services.cli.tasks import with_store
from services.common.tasks import REGISTRY_KEY, Task
from tests.e2e.conftest import RunningStack
from tests.helpers import ROOT, api_key, costmesh
from training.distill import data

pytestmark = pytest.mark.e2e
LABELS = ("card_arrival", "lost_or_stolen_card")
INSTRUCTION = "Classify the banking customer's message. Answer with the intent name only."
REFRESH_S = 7  # the router's and the orchestrator's registry snapshots refresh every 5 s


def banking(n_per_label: int) -> list[data.Row]:
    with (ROOT / "bench" / "data" / "banking77" / "train.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["category"] in LABELS]
    picked = [r for label in LABELS for r in [x for x in rows if x["category"] == label][:n_per_label]]
    # Gold labels stand in for the teacher's here: this test is about serving, not about labelling.
    return [data.Row(r["text"], r["category"], r["category"], "train") for r in picked]


@pytest.fixture(scope="module")
def student_task(running_stack: RunningStack) -> Iterator[Task]:
    settings = running_stack.settings
    name = f"e2e-bank-{uuid.uuid4().hex[:6]}"
    task = Task(name=name, instruction=INSTRUCTION, teacher_prompt=INSTRUCTION, labels=LABELS).moved_to("collecting")
    with_store(settings, lambda store: store.put(task))
    folder = data.task_dir(settings.data_dir, name)
    data.write_rows(folder / "labels.jsonl", banking(24))
    trained = costmesh("distill", "train", "--task", name, "--epochs", "2", timeout_s=900)
    assert trained.returncode == 0, trained.stderr[-3000:]
    result = json.loads(trained.stdout.strip().splitlines()[-1])
    assert result["loss_last"] < result["loss_first"]
    task = with_store(settings, lambda store: store.get(name))
    promoted = replace(task, serving_student=task.student, serving_adapter_path=task.adapter_path)
    promoted = promoted.moved_to("shadow").moved_to("serving")
    with_store(settings, lambda store: store.put(promoted))
    asyncio.run(asyncio.sleep(REFRESH_S))
    yield promoted

    async def clean() -> None:
        client = redis.Redis.from_url(settings.redis_url())
        await client.hdel(REGISTRY_KEY, name)  # type: ignore[misc]
        await client.aclose()

    asyncio.run(clean())
    shutil.rmtree(folder, ignore_errors=True)


def ask(stack: RunningStack, text: str, task: str = "") -> orchestrator_pb2.CompletionResponse:
    request = orchestrator_pb2.CompletionRequest(
        task=task,
        messages=[common_pb2.Message(role=common_pb2.ROLE_USER, content=text)],
        sampling=common_pb2.SamplingParams(max_tokens=16),
        cache=common_pb2.CacheControl(no_cache=True, no_store=True),
    )
    with grpc.insecure_channel(stack.orchestrator) as channel:
        response: orchestrator_pb2.CompletionResponse = orchestrator_pb2_grpc.OrchestratorStub(channel).Complete(
            request, timeout=300, metadata=(("authorization", f"Bearer {api_key('distill-e2e')}"),)
        )
    return response


def test_the_router_sends_a_named_tasks_request_to_its_student(running_stack: RunningStack, student_task: Task) -> None:
    response = ask(running_stack, "My new card still hasn't arrived, when will it come?", student_task.name)
    assert response.route.task == student_task.name
    # The student answered (its adapter's name is the model), unless the cascade judged it and escalated.
    assert response.route.student or response.route.escalated, response.route
    if response.route.student:
        assert response.model == student_task.student
        assert response.answer.strip() in LABELS
        assert response.cost.price_model == "self-hosted-student"
        assert response.cost.savings_by_intervention["distillation"] > 0


def test_an_unnamed_request_near_the_tasks_inputs_is_assigned_to_it(
    running_stack: RunningStack, student_task: Task
) -> None:
    near = ask(running_stack, banking(24)[0].text)  # a training input: within the training p95
    assert near.route.task == student_task.name, (near.route, [(t.stage, t.outcome) for t in near.stages])
    far = ask(running_stack, "Write a haiku about the autumn moon.")
    assert far.route.task == "" and not far.route.student


def test_the_gateway_takes_the_task_header_and_says_who_answered(
    running_stack: RunningStack, student_task: Task
) -> None:
    raw = httpx.post(
        f"http://127.0.0.1:{running_stack.settings.gateway_port}/v1/chat/completions",
        headers={
            "Authorization": f"Bearer {api_key('distill-e2e')}",
            "x-costmesh-task": student_task.name,
            "x-costmesh-cache-control": "no-cache, no-store",
        },
        json={
            "model": "costmesh-auto",
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "I think my card was stolen yesterday"}],
        },
        timeout=300,
    )
    assert raw.status_code == 200, raw.text
    assert raw.headers["x-costmesh-task"] == student_task.name
    assert raw.headers["x-costmesh-student"] in ("true", "false")
    unknown = httpx.post(
        f"http://127.0.0.1:{running_stack.settings.gateway_port}/v1/chat/completions",
        headers={"Authorization": f"Bearer {api_key('distill-e2e')}", "x-costmesh-task": "no-such-task"},
        json={"model": "costmesh-auto", "messages": [{"role": "user", "content": "hello"}]},
        timeout=60,
    )
    assert unknown.status_code == 400 and "unknown task" in unknown.json()["error"]["message"]


def test_the_routers_drift_metrics_count_the_tasks_requests(running_stack: RunningStack, student_task: Task) -> None:
    ask(running_stack, "Where is my card? It has been two weeks.", student_task.name)
    url = f"http://127.0.0.1:{running_stack.settings.metrics_base_port + 1}/metrics"
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    assert f'costmesh_task_centroid_distance_count{{task="{student_task.name}"}}' in text
    assert f'costmesh_task_train_distance{{quantile="0.95",task="{student_task.name}"}}' in text
