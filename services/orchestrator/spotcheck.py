"""Spot-checks of semantic cache hits: the false-hit rate as production sees it.

A semantic hit serves the answer stored for another, similar question. The guard and the verifier decide
that before serving, on the cache's own evidence; nothing afterwards says how often they were wrong. So a
sampled share of the semantic hits the orchestrator serves (COSTMESH_CACHE_VERIFY_SAMPLE, 5 % by default)
is shown to the large tier after the response has gone: "does this cached answer answer this question?".
`yes` counts agree, `no` counts disagree and evicts the entry from both tiers, so the next similar question
gets a fresh answer. An unparseable verdict (unclear) and a failed or timed-out judge call (error) are
counted apart: the disagree rate is disagree / (agree + disagree) of real verdicts only.

Checks run as background tasks and never delay a response; a bounded number are in flight at once (the
rest are counted as skipped), and shutdown waits briefly for them, then cancels the rest. No grpc here.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from opentelemetry import trace

from costmesh.v1 import cache_pb2, common_pb2, inference_pb2, orchestrator_pb2
from services.common.errors import RateLimited
from services.orchestrator.metrics import OrchestratorMetrics
from services.orchestrator.stages import CacheInvalidator, Generator
from services.orchestrator.warmup import WARM_UP_TENANT

log = logging.getLogger(__name__)
tracer = trace.get_tracer("costmesh.orchestrator")

Outcome = Literal["agree", "disagree", "unclear", "error"]
MAX_IN_FLIGHT = 32  # past this the large tier is the bottleneck: more queued checks only hold memory
DRAIN_S = 1.0  # at shutdown, after the server's own grace: checks this close to done still count
RETRY_S = 2.0  # the batch lane refuses while its quota is spent or real-time calls hold the tier
EVICT_TIMEOUT_S = 2.0  # off the hot path: the lookup budget (0.1 s) is for requests that wait
JUDGE_MAX_TOKENS = 3  # "yes" or "no" and a stop; more only costs
CONTEXT_TURNS = 4  # earlier non-system turns shown to the judge, the most recent ones
CONTEXT_CHARS = 300  # per earlier turn: enough for what "it" refers to
TEXT_CHARS = 2000  # per question and per answer: the judge's prompt stays small and cheap

_VERDICTS: dict[str, Outcome] = {"yes": "agree", "no": "disagree"}
_SYSTEM = "You check answers served from a cache. Reply with one word: yes or no."


@dataclass(frozen=True)
class SpotCheckConfig:
    sample: float = 0.05  # share of semantic hits checked
    timeout_s: float = 120.0  # per check, waits for the batch lane's quota included
    # Spot-checks are not latency-critical: the batch lane is priced at batch prices and yields to real time.
    lane: common_pb2.Lane.ValueType = common_pb2.LANE_BATCH


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _role(message: common_pb2.Message) -> str:
    return common_pb2.Role.Name(message.role).removeprefix("ROLE_").lower()


def judge_messages(messages: Sequence[common_pb2.Message], answer: str) -> list[common_pb2.Message] | None:
    """The judge's prompt: the last user turn as the question, earlier turns briefly, the cached answer.
    None without a user turn (nothing to judge against)."""
    users = [i for i, m in enumerate(messages) if m.role == common_pb2.ROLE_USER]
    if not users:
        return None
    question, earlier = messages[users[-1]], messages[: users[-1]]
    # System prompts can change what a right answer is ("reply with the letter only"): always shown.
    context = [m for m in earlier if m.role == common_pb2.ROLE_SYSTEM]
    context += [m for m in earlier if m.role != common_pb2.ROLE_SYSTEM][-CONTEXT_TURNS:]
    parts = []
    if context:
        turns = "\n".join(f"{_role(m)}: {_clip(m.content, CONTEXT_CHARS)}" for m in context)
        parts.append(f"Conversation so far (for context):\n{turns}")
    parts.append(f"Question: {_clip(question.content, TEXT_CHARS)}")
    parts.append(f"Cached answer: {_clip(answer, TEXT_CHARS)}")
    parts.append("Does this cached answer answer this question? Reply with yes or no.")
    return [
        common_pb2.Message(role=common_pb2.ROLE_SYSTEM, content=_SYSTEM),
        common_pb2.Message(role=common_pb2.ROLE_USER, content="\n\n".join(parts)),
    ]


def verdict(text: str) -> Outcome:
    """The judge's first word: yes agrees, no disagrees, anything else is unclear."""
    words = re.findall(r"[a-z]+", text.lower())
    return _VERDICTS.get(words[0] if words else "", "unclear")


@dataclass(frozen=True)
class _Check:
    generate: inference_pb2.GenerateRequest
    invalidate: cache_pb2.InvalidateRequest


class SpotChecker:
    def __init__(
        self,
        judge: Generator,
        cache: CacheInvalidator,
        metrics: OrchestratorMetrics,
        config: SpotCheckConfig,
        draw: Callable[[], float] | None = None,  # uniform in [0, 1); injectable for tests
    ) -> None:
        self._judge = judge
        self._cache = cache
        self._metrics = metrics
        self._config = config
        self._draw = draw or random.Random().random
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def after_hit(
        self, request: orchestrator_pb2.CompletionRequest, response: orchestrator_pb2.CompletionResponse
    ) -> None:
        """Schedules a check of a served semantic hit, for a sampled share of them; returns at once."""
        if (
            self._closed
            or response.cache.kind != common_pb2.CACHE_HIT_KIND_SEMANTIC
            or request.tenant == WARM_UP_TENANT
            or self._draw() >= self._config.sample
        ):
            return
        if len(self._tasks) >= MAX_IN_FLIGHT:
            self._metrics.spotcheck_skipped.inc()
            return
        check = self._prepare(request, response)
        if check is None:
            return
        task = asyncio.create_task(self._run(check))
        self._tasks.add(task)
        task.add_done_callback(self._done)
        self._metrics.spotcheck_in_flight.set(len(self._tasks))

    def _prepare(
        self, request: orchestrator_pb2.CompletionRequest, response: orchestrator_pb2.CompletionResponse
    ) -> _Check | None:
        # Built now, copied out of the request and response: the task keeps no reference to either.
        messages = judge_messages(request.messages, response.answer)
        if messages is None:
            return None
        generate = inference_pb2.GenerateRequest(
            tenant=request.tenant,
            request_id=f"{response.request_id}:spotcheck",
            tier=common_pb2.TIER_LARGE,
            messages=messages,
            sampling=common_pb2.SamplingParams(temperature=0.0, max_tokens=JUDGE_MAX_TOKENS),
            lane=self._config.lane,
        )
        return _Check(generate, cache_pb2.InvalidateRequest(tenant=request.tenant, key=response.cache.entry_key))

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._metrics.spotcheck_in_flight.set(len(self._tasks))

    async def _run(self, check: _Check) -> None:
        with tracer.start_as_current_span("cache.spotcheck") as span:
            outcome = await self._judged(check)
            span.set_attribute("costmesh.spotcheck.outcome", outcome)
            self._metrics.semantic_checked.labels(outcome).inc()
            if outcome == "disagree":
                await self._evict(check.invalidate)

    async def _judged(self, check: _Check) -> Outcome:
        deadline = asyncio.get_running_loop().time() + self._config.timeout_s
        try:
            async with asyncio.timeout_at(deadline):
                answer = await self._ask(check.generate, deadline)
        except Exception as exc:  # any failure is one outcome: the check did not happen
            log.warning("cache spot-check failed: %r", exc)
            return "error"
        self._metrics.spotcheck_cost.inc(answer.cost.cost_usd)
        return verdict(answer.text)

    async def _ask(self, generate: inference_pb2.GenerateRequest, deadline: float) -> inference_pb2.GenerateResponse:
        """The judge's answer; a refusal by the lane's rate limit is retried until the deadline."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                return await self._judge.generate(generate, deadline - loop.time())
            except RateLimited:
                await asyncio.sleep(RETRY_S)

    async def _evict(self, invalidate: cache_pb2.InvalidateRequest) -> None:
        if not invalidate.key:
            log.warning("spot-check disagreed but the cache named no entry_key; nothing evicted")
            return
        try:
            removed = await self._cache.invalidate(invalidate, EVICT_TIMEOUT_S)
        except Exception as exc:  # the entry stays; the next disagreeing check tries again
            log.warning("evicting cache entry %s failed: %s", invalidate.key, exc)
            self._metrics.degraded.labels("cache_evict", "error").inc()
            return
        if removed.removed:
            self._metrics.semantic_evicted.inc()

    async def drain(self, timeout_s: float) -> None:
        """Stops taking checks, waits up to timeout_s for those in flight, then cancels the rest (uncounted)."""
        self._closed = True
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def close(self) -> None:
        await self.drain(DRAIN_S)
