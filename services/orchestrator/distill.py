"""Distillation on the live path: a task's student answers, a candidate shadows the teacher, pairs are kept.

The router says which task a request belongs to (RouteResponse.task, from the registry snapshot). Then:
- serving: the task's student (a LoRA adapter on the student engine) is the cheap answer, judged like any
  other (hard rules, logprobs, and an answer outside the task's labels); a failed judgement, or a student
  that cannot answer, escalates to the large tier as usual;
- shadow: the teacher answers and is served; the candidate answers the same request in the background and
  the two are compared (`costmesh distill promote` reads the agreement);
- collection (opt-in per task): every large-tier answer of the task is appended, redacted, to the task's
  Redis stream, off the hot path, for the next labelled set.
Only single-turn requests (an optional system prompt and one user message, no documents) are a task's: the
student has learnt one message in, one answer out, with its own short instruction in place of the prompt.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from costmesh.v1 import common_pb2, inference_pb2, orchestrator_pb2, router_pb2
from services.common.contracts import role_pairs
from services.common.tasks import TaskStore, normalise_answer, student_prompt
from services.common.tokens import count_messages
from services.orchestrator.plan import Plan
from services.orchestrator.stages import Generator

log = logging.getLogger(__name__)
MAX_IN_FLIGHT = 32  # background shadow calls and stream writes; more are dropped (and counted)
SHADOW_TIMEOUT_S = 60.0
STREAM_MAXLEN = 100_000  # pairs kept per task; approximate trimming keeps XADD O(1)
Redactor = Callable[[str], str]


def single_turn(request: orchestrator_pb2.CompletionRequest) -> bool:
    roles = [m.role for m in request.messages]
    users = roles.count(common_pb2.ROLE_USER)
    others = set(roles) - {common_pb2.ROLE_USER, common_pb2.ROLE_SYSTEM}
    return users == 1 and roles[-1] == common_pb2.ROLE_USER and not others and not request.documents


def task_plan(
    plan: Plan, route: router_pb2.RouteResponse, request: orchestrator_pb2.CompletionRequest, escalation: bool
) -> Plan:
    """The plan with the request's task applied: its student as the cheap answer (judged when the cascade
    is on), or the teacher while a candidate shadows it. A tier set by the request, or a request that is
    not single-turn, is left alone."""
    if not route.HasField("task") or request.tier != common_pb2.TIER_UNSPECIFIED or not single_turn(request):
        return plan
    task = route.task
    if task.student:
        why = f"task {task.name}: its student {task.student} answers"
        return Plan(common_pb2.TIER_SMALL, escalation, False, why, task=task)
    if task.state == "shadow" and task.shadow_student:
        why = f"task {task.name}: the teacher answers while {task.shadow_student} shadows it"
        return Plan(task.teacher_tier or common_pb2.TIER_LARGE, False, False, why, shadow=task)
    return plan


def student_request(
    generate: inference_pb2.GenerateRequest,
    request: orchestrator_pb2.CompletionRequest,
    adapter: str,
    path: str,
    instruction: str,
) -> inference_pb2.GenerateRequest:
    """The teacher's request rewritten for a student: its instruction and the user's message only. The
    prompt tokens it no longer sends are distillation's saving (the baseline prices the full prompt)."""
    student = inference_pb2.GenerateRequest()
    student.CopyFrom(generate)
    del student.messages[:]
    student.messages.extend(student_prompt(instruction, request.messages[-1].content))
    student.tier = common_pb2.TIER_SMALL
    student.adapter, student.adapter_path = adapter, path
    dropped = count_messages(role_pairs(generate.messages)) - count_messages(role_pairs(student.messages))
    if dropped > 0:
        student.removed_tokens["distillation"] = dropped
    return student


def label_problem(answer: str, labels: Sequence[str]) -> str:
    """Why a classification answer is not one of the task's labels ("" when it is, or the task has none)."""
    if not labels or normalise_answer(answer) in {normalise_answer(label) for label in labels}:
        return ""
    return f"{answer.strip()[:60]!r} is not one of the task's {len(labels)} labels"


class DistillMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.shadow = Counter(
            "costmesh_task_shadow",
            "Shadow comparisons of a candidate student with the teacher",
            ["task", "outcome"],
            registry=registry,
        )
        self.collected = Counter(
            "costmesh_task_collected", "Teacher answers recorded for a task", ["task"], registry=registry
        )
        self.dropped = Counter(
            "costmesh_task_background_dropped",
            "Shadow calls or records skipped: too many in flight",
            ["task"],
            registry=registry,
        )


class TaskRecorder:
    """The background half: shadow comparisons and pair collection. Schedules and returns at once."""

    def __init__(
        self, store: TaskStore | None, generator: Generator, metrics: DistillMetrics, redact: Redactor
    ) -> None:
        self._store = store
        self._generator = generator
        self._metrics = metrics
        self._redact = redact
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def after_answer(
        self,
        request: orchestrator_pb2.CompletionRequest,
        response: orchestrator_pb2.CompletionResponse,
        plan: Plan,
        route: router_pb2.RouteResponse,
        generate: inference_pb2.GenerateRequest,
    ) -> None:
        """After a model answer (never a cache hit): the shadow comparison and the pair to collect."""
        if not route.HasField("task") or self._store is None or self._closed or not single_turn(request):
            return
        task = route.task
        teacher_answered = response.route.tier == (task.teacher_tier or common_pb2.TIER_LARGE)
        if plan.shadow is not None and teacher_answered:
            shadow = plan.shadow
            student = student_request(
                generate, request, shadow.shadow_student, shadow.shadow_adapter_path, shadow.instruction
            )
            student.request_id = f"{response.request_id}:shadow"
            self._spawn(shadow.name, self._compare(shadow.name, student, response.answer))
        if task.collect and teacher_answered and response.finish_reason != "length":
            record = {
                "request_id": response.request_id,
                "tenant": request.tenant,
                "text": self._redact(request.messages[-1].content),
                "teacher": self._redact(response.answer),
                "model": response.model,
                "ts": f"{time.time():.3f}",
            }
            self._spawn(task.name, self._collect(task.name, record))

    def _spawn(self, task: str, work: Coroutine[Any, Any, None]) -> None:
        if len(self._tasks) >= MAX_IN_FLIGHT:
            self._metrics.dropped.labels(task).inc()
            work.close()  # never started: close it so it is not reported as never awaited
            return
        running = asyncio.create_task(work)
        self._tasks.add(running)
        running.add_done_callback(self._tasks.discard)

    async def _compare(self, task: str, student: inference_pb2.GenerateRequest, teacher_answer: str) -> None:
        assert self._store is not None
        try:
            answer = await self._generator.generate(student, SHADOW_TIMEOUT_S)
        except Exception as exc:  # the shadow never affects what was served
            log.warning("shadow call for task %s failed: %r", task, exc)
            self._metrics.shadow.labels(task, "error").inc()
            return
        agree = normalise_answer(answer.text) == normalise_answer(teacher_answer)
        self._metrics.shadow.labels(task, "agree" if agree else "disagree").inc()
        try:
            await self._store.record_shadow(task, agree)
        except Exception as exc:
            log.warning("recording a shadow comparison for task %s failed: %s", task, exc)

    async def _collect(self, task: str, record: dict[str, str]) -> None:
        assert self._store is not None
        try:
            await self._store.append_pair(task, record, STREAM_MAXLEN)
        except Exception as exc:  # collection is best effort: never the request's failure
            log.warning("recording a pair for task %s failed: %s", task, exc)
            return
        self._metrics.collected.labels(task).inc()

    async def close(self, timeout_s: float = 5.0) -> None:
        self._closed = True
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
            for running in pending:
                running.cancel()
