"""The promotion path against the real Redis: the gate refuses a student below the floor, a pass starts the
shadow period, and promotion needs enough live comparisons that agree as well as the held-out split did."""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis.asyncio as redis

from launcher.settings import StackSettings
from services.cli import distill_ops
from services.cli.tasks import with_store
from services.common.tasks import REGISTRY_KEY, SHADOW_PREFIX, Task, TaskStore
from tests import stack

EVALUATION = {"student": "", "agreement": 0.90, "teacher_accuracy": 0.60, "student_accuracy": 0.55}


@pytest.fixture(scope="module")
def settings() -> Iterator[StackSettings]:
    s = StackSettings()
    started = stack.start(s, ["redis"])
    yield s
    stack.stop(s, started)


@pytest.fixture
def task(settings: StackSettings) -> Iterator[Task]:
    name = f"gate-{secrets.token_hex(4)}"
    student = f"{name}-v1"
    t = Task(
        name=name,
        instruction="Classify.",
        student=student,
        adapter_path="/nowhere",
        evaluation=EVALUATION | {"student": student},
    ).moved_to("training")
    with_store(settings, lambda store: store.put(t))
    yield t

    async def clean() -> None:
        client = redis.Redis.from_url(settings.redis_url())
        await client.hdel(REGISTRY_KEY, name)  # type: ignore[misc]
        await client.delete(SHADOW_PREFIX + name)
        await client.aclose()

    asyncio.run(clean())


def run(settings: StackSettings, capsys: pytest.CaptureFixture[str], action: str, **fields: object) -> tuple[int, dict]:
    args = argparse.Namespace(**fields)
    code = distill_ops.COMMANDS[action](args, settings)
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def state(settings: StackSettings, name: str) -> Task:
    return with_store(settings, lambda store: store.get(name))


def test_the_gate_refuses_a_student_below_the_floor(settings, task, capsys) -> None:  # type: ignore[no-untyped-def]
    # 0.55 < 0.95 x 0.60 = 0.57: refused, and the task stays where it was.
    code, out = run(settings, capsys, "gate", task=task.name, floor=0.95)
    assert code == 1 and out["passed"] is False and "0.550 < 0.570" in out["why"]
    assert state(settings, task.name).state == "training"


def test_a_passing_student_is_shadowed_then_promoted_on_live_agreement(settings, task, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out = run(settings, capsys, "gate", task=task.name, floor=0.9)  # 0.55 >= 0.54
    assert code == 0 and out["passed"] and state(settings, task.name).state == "shadow"

    code, out = run(settings, capsys, "promote", task=task.name, min_shadow=10)
    assert code == 1 and "0 shadow comparisons, 10 needed" in out["why"]

    async def record(store: TaskStore, agree: int, disagree: int) -> None:
        for _ in range(agree):
            await store.record_shadow(task.name, True)
        for _ in range(disagree):
            await store.record_shadow(task.name, False)

    with_store(settings, lambda store: record(store, 6, 4))  # live 0.60, far below the held-out 0.90
    code, out = run(settings, capsys, "promote", task=task.name, min_shadow=10)
    assert code == 1 and "live agreement 0.600" in out["why"]
    assert state(settings, task.name).state == "shadow"

    with_store(settings, lambda store: record(store, 30, 0))  # 36 / 40 = 0.90
    code, out = run(settings, capsys, "promote", task=task.name, min_shadow=10)
    assert code == 0 and out["promoted"] and out["student"] == task.student
    promoted = state(settings, task.name)
    assert promoted.state == "serving" and promoted.served_student() == (task.student, "/nowhere")


def test_a_student_evaluated_before_retraining_cannot_pass_the_gate(settings, task, capsys) -> None:  # type: ignore[no-untyped-def]
    with_store(settings, lambda store: store.put(replace(task, student=f"{task.name}-v2")))
    with pytest.raises(Exception, match="evaluate the current student first"):
        run(settings, capsys, "gate", task=task.name, floor=0.0)
