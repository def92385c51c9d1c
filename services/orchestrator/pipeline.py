"""The request pipeline, in its real stage order:

exact cache lookup -> embedding -> (semantic lookup || router) -> (summarizer || compressor) -> plan
-> inference [-> assess -> escalation] -> cache store

The stages before the model call are in prepare.py, the plan in plan.py, the cascade (judging the cheap
answer, escalating once) in cascade.py, the cost merge in ledger.py and the fail-open policy in
failopen.py; spotcheck.py re-checks a sampled share of semantic hits after they are served. Optional
stages fail open (counted, marked degraded in the response); only the model call can fail a request. No
grpc here: stages are reached through the Stages Protocol.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import numpy as np
from opentelemetry import trace

from costmesh.v1 import cache_pb2, common_pb2, inference_pb2, orchestrator_pb2
from services.common.embedding import Embedder
from services.common.errors import BudgetExceeded, InvalidInput
from services.common.tasks import TaskTable, match_proto
from services.orchestrator import ledger
from services.orchestrator.cascade import Cascade, mark_escalated
from services.orchestrator.distill import TaskRecorder, student_request, task_plan
from services.orchestrator.escalation import EscalationPolicy
from services.orchestrator.failopen import StageRunner, budget_span, left
from services.orchestrator.metrics import OrchestratorMetrics
from services.orchestrator.plan import Plan, QualityTarget, make_plan
from services.orchestrator.prepare import Budgets, Prepared, Preparer
from services.orchestrator.spotcheck import SpotChecker
from services.orchestrator.stages import Generator, Stages

REPLAY_CHUNK_WORDS = 4  # a cached or judged answer is replayed on CompleteStream a few words per chunk


class Pipeline:
    def __init__(
        self,
        stages: Stages,
        generator: Generator,
        budgets: Budgets,
        default_tier: common_pb2.Tier.ValueType,
        metrics: OrchestratorMetrics,
        embedder: Embedder | None = None,
        escalation: EscalationPolicy | None = None,  # None: the cheap tier's answers are never second-guessed
        quality: QualityTarget | None = None,
        spot_checker: SpotChecker | None = None,  # None: semantic hits are served unchecked
        recorder: TaskRecorder | None = None,  # None: no shadow comparisons, no pair collection
        tasks: TaskTable | None = None,  # the registry snapshot a named task is checked against
    ) -> None:
        quality = quality or QualityTarget()
        self._stages = stages
        self._generator = generator
        self._budgets = budgets
        self._metrics = metrics
        self._run = StageRunner(metrics)
        self._spot_checker = spot_checker
        self._recorder = recorder
        self._tasks = tasks
        self._preparer = Preparer(stages, self._run, budgets, default_tier, metrics, embedder, quality)
        self._cascade = (
            None if escalation is None else Cascade(stages, generator, self._run, escalation, budgets, quality, metrics)
        )

    # ---- public entry points -------------------------------------------------------------------------

    async def complete(
        self, request: orchestrator_pb2.CompletionRequest, timeout_s: float
    ) -> orchestrator_pb2.CompletionResponse:
        deadline = time.monotonic() + timeout_s
        self._check_task(request)
        prepared = await self._preparer.prepare(request, deadline)
        if prepared.generate is None:
            self._served_hit(request, prepared.response)
            return prepared.response
        plan = self._plan(request, prepared)
        result = await self._generate(request, prepared, plan, deadline)
        return await self._finish(request, prepared, plan, result, deadline)

    async def stream(
        self, request: orchestrator_pb2.CompletionRequest, timeout_s: float
    ) -> AsyncIterator[orchestrator_pb2.CompletionChunk]:
        deadline = time.monotonic() + timeout_s
        self._check_task(request)
        prepared = await self._preparer.prepare(request, deadline)
        if prepared.generate is None:  # cache hit: replay it as a stream
            self._served_hit(request, prepared.response)
            for chunk in _replay(prepared.response):
                yield chunk
            return
        plan = self._plan(request, prepared)
        if plan.judged:
            # The cheap answer must be judged before anyone sees it: generate, judge, then replay.
            result = await self._generate(request, prepared, plan, deadline)
            for chunk in _replay(await self._finish(request, prepared, plan, result, deadline)):
                yield chunk
            return
        generate, response = prepared.generate, prepared.response
        if left(deadline) <= 0:
            raise BudgetExceeded("no time left for inference")
        started = time.perf_counter()
        final: inference_pb2.GenerateResponse | None = None
        with budget_span("inference", left(deadline), deadline):
            async for item in self._generator.generate_stream(generate, left(deadline)):
                if isinstance(item, str):
                    yield orchestrator_pb2.CompletionChunk(delta=item)
                else:
                    final = item
        self._run.record(response, "inference", started, "ok")
        if final is None:
            raise BudgetExceeded("the model stream ended without a final response")
        yield orchestrator_pb2.CompletionChunk(final=await self._finish(request, prepared, plan, final, deadline))

    def _task_without_router(self, request: orchestrator_pb2.CompletionRequest, prepared: Prepared) -> None:
        """A router that missed its budget matched no task: the orchestrator's own snapshot does (the same
        rule, without the router's drift metrics), so a task's requests keep their student under load."""
        route = prepared.route
        assert route is not None
        if route.HasField("task") or not route.decision.fell_back or self._tasks is None:
            return
        found = self._tasks.match(request.task, np.asarray(prepared.embedding.values, dtype=np.float32))
        if found is not None:
            route.task.CopyFrom(match_proto(found))

    def _check_task(self, request: orchestrator_pb2.CompletionRequest) -> None:
        if request.task and self._tasks is not None and request.task not in self._tasks:
            raise InvalidInput(f"unknown task {request.task[:64]!r}; `costmesh tasks list` shows the tasks")

    def _served_hit(
        self, request: orchestrator_pb2.CompletionRequest, response: orchestrator_pb2.CompletionResponse
    ) -> None:
        if self._spot_checker is not None:
            self._spot_checker.after_hit(request, response)  # schedules, never waits

    # ---- plan, model call, store ---------------------------------------------------------------------

    def _plan(self, request: orchestrator_pb2.CompletionRequest, prepared: Prepared) -> Plan:
        """Decided once, after routing: the tier to call and whether its answer is judged."""
        assert prepared.route is not None and prepared.generate is not None  # a cache miss
        cascade = self._cascade is not None
        self._task_without_router(request, prepared)
        plan = task_plan(make_plan(prepared.route, cascade), prepared.route, request, cascade)
        prepared.generate.tier = plan.tier
        if prepared.route.HasField("task"):
            prepared.response.route.task = prepared.route.task.name
        if plan.shadow is not None:  # the teacher answers while a candidate shadows it: the route says so
            prepared.response.route.tier = plan.tier
        if plan.task is not None and not plan.judged:  # the cascade is off: the student's answer is final
            t = plan.task
            prepared.generate = student_request(prepared.generate, request, t.student, t.adapter_path, t.instruction)
        if plan.skipped_cheap is not None:
            mark_escalated(prepared.response, self._metrics, *plan.skipped_cheap)
        trace.get_current_span().set_attribute("costmesh.plan", plan.why)
        return plan

    async def _generate(
        self, request: orchestrator_pb2.CompletionRequest, prepared: Prepared, plan: Plan, deadline: float
    ) -> inference_pb2.GenerateResponse:
        if plan.judged:
            assert self._cascade is not None  # make_plan judges only when the cascade is on
            return await self._cascade.answer(request, prepared, plan, deadline)
        generate = prepared.generate
        assert generate is not None  # a cache miss
        return await self._run.required(
            "inference", lambda t: self._generator.generate(generate, t), deadline, prepared.response
        )

    async def _finish(
        self,
        request: orchestrator_pb2.CompletionRequest,
        prepared: Prepared,
        plan: Plan,
        result: inference_pb2.GenerateResponse,
        deadline: float,
    ) -> orchestrator_pb2.CompletionResponse:
        response = prepared.response
        response.route.student = plan.task is not None and not response.route.escalated
        response.answer = result.text
        response.model = result.model
        response.finish_reason = result.finish_reason
        response.usage.CopyFrom(result.usage)
        response.cost.CopyFrom(ledger.with_summaries(result.cost, prepared.summary_cost_usd))
        tier_name = common_pb2.Tier.Name(response.route.tier)
        self._metrics.requests.labels(tier=tier_name, cache="miss").inc()
        self._metrics.count_savings(tier_name, response.cost)
        answer = cache_pb2.CachedAnswer(
            answer=result.text,
            model=result.model,
            tier=response.route.tier,
            finish_reason=result.finish_reason,
            usage=result.usage,
            cost_usd=response.cost.cost_usd,
            baseline_cost_usd=response.cost.baseline_cost_usd,
        )
        store = cache_pb2.StoreRequest(
            key=prepared.key, control=request.cache, answer=answer, embedding=prepared.embedding
        )
        await self._run.optional(
            "cache_store", lambda t: self._stages.store(store, t), self._budgets.cache_store_s, deadline, response
        )
        if self._recorder is not None and prepared.route is not None and prepared.generate is not None:
            self._recorder.after_answer(request, response, plan, prepared.route, prepared.generate)
        return response


def _replay(response: orchestrator_pb2.CompletionResponse) -> Iterator[orchestrator_pb2.CompletionChunk]:
    """A finished answer as a stream: a few words per chunk, then the full response."""
    words = response.answer.split(" ")
    for i in range(0, len(words), REPLAY_CHUNK_WORDS):
        piece = " ".join(words[i : i + REPLAY_CHUNK_WORDS])
        yield orchestrator_pb2.CompletionChunk(delta=piece if i == 0 else " " + piece)
    yield orchestrator_pb2.CompletionChunk(final=response)
