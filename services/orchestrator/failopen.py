"""The fail-open policy and stage timing: one place decides what a failed stage costs a request.

Optional stages (cache, router, summarizer, compressor, Assess) get min(budget, time left) and degrade to
None on any failure, counted and timed; required stages (the model calls) get the time left and raise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

from opentelemetry import trace

from costmesh.v1 import common_pb2, orchestrator_pb2
from services.common.errors import BudgetExceeded
from services.orchestrator.metrics import OrchestratorMetrics

log = logging.getLogger(__name__)
T = TypeVar("T")
tracer = trace.get_tracer("costmesh.orchestrator")


def left(deadline: float) -> float:
    return deadline - time.monotonic()


def is_timeout(exc: BaseException) -> bool:
    if isinstance(exc, TimeoutError):
        return True
    code = getattr(exc, "code", None)
    return callable(code) and getattr(code(), "name", "") == "DEADLINE_EXCEEDED"


@contextlib.contextmanager
def budget_span(stage: str, budget_s: float, deadline: float) -> Iterator[trace.Span]:
    """The stage's span, carrying its budget and the request's time left when it started, and marked when
    the stage took longer than its budget: Jaeger's timeline then shows where a latency budget went."""
    started = time.perf_counter()
    with tracer.start_as_current_span(f"stage.{stage}") as span:
        span.set_attribute("costmesh.budget_ms", round(budget_s * 1000, 3))
        span.set_attribute("costmesh.deadline_left_ms", round(left(deadline) * 1000, 3))
        try:
            yield span
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            over = elapsed_ms > budget_s * 1000
            span.set_attribute("costmesh.over_budget", over)
            if over:
                span.add_event("costmesh.budget_overrun", {"costmesh.elapsed_ms": round(elapsed_ms, 3)})


class StageRunner:
    """Runs stages for one pipeline, recording each one's time and outcome in the response it serves."""

    def __init__(self, metrics: OrchestratorMetrics) -> None:
        self._metrics = metrics

    async def optional(
        self,
        stage: str,
        call: Callable[[float], Awaitable[T]],
        budget_s: float,
        deadline: float,
        response: orchestrator_pb2.CompletionResponse,
    ) -> T | None:
        """Runs an optional stage within min(budget, time left); on any failure returns None (fail open)."""
        started = time.perf_counter()
        timeout = min(budget_s, left(deadline))
        with budget_span(stage, budget_s, deadline) as span:
            try:
                if timeout <= 0:
                    raise TimeoutError
                async with asyncio.timeout(timeout):
                    result = await call(timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                outcome = "timeout" if is_timeout(exc) else "error"
                span.set_attribute("costmesh.outcome", outcome)
                log.warning("stage %s %s, degrading: %s", stage, outcome, exc)
                self.degraded(response, stage, started, outcome)
                return None
        self.record(response, stage, started, "ok")
        return result

    async def required(
        self,
        stage: str,
        call: Callable[[float], Awaitable[T]],
        deadline: float,
        response: orchestrator_pb2.CompletionResponse,
    ) -> T:
        """Runs a stage the request cannot do without, within the time left; failures propagate."""
        started = time.perf_counter()
        timeout = left(deadline)
        if timeout <= 0:
            raise BudgetExceeded(f"no time left for {stage}")
        with budget_span(stage, timeout, deadline):  # a required stage's budget is the time left
            result = await call(timeout)
        self.record(response, stage, started, "ok")
        return result

    def degraded(self, response: orchestrator_pb2.CompletionResponse, stage: str, started: float, outcome: str) -> None:
        self._metrics.degraded.labels(stage=stage, outcome=outcome).inc()
        self.record(response, stage, started, outcome)

    def record(self, response: orchestrator_pb2.CompletionResponse, stage: str, started: float, outcome: str) -> None:
        seconds = time.perf_counter() - started
        response.stages.append(common_pb2.StageTiming(stage=stage, duration_ms=seconds * 1000, outcome=outcome))
        self._metrics.stage_latency.labels(stage=stage).observe(seconds)
