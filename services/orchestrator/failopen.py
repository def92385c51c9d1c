"""The fail-open policy and stage timing: one place decides what a failed stage costs a request.

Optional stages (cache, router, summarizer, compressor, Assess) get min(budget, time left) and degrade to
None on any failure, counted and timed; required stages (the model calls) get the time left and raise.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
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
        with tracer.start_as_current_span(f"stage.{stage}") as span:
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
        with tracer.start_as_current_span(f"stage.{stage}"):
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
