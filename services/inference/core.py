"""Runs a tier: tries its backends in order, prices the answer. No grpc here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from prometheus_client import CollectorRegistry, Counter, Gauge

from services.common.errors import BackendUnavailable, InvalidInput, RateLimited
from services.common.tokens import count_messages
from services.inference.backends.base import ChatBackend
from services.inference.batch_api import BatchApiCollector
from services.inference.breaker import CircuitBreaker, State
from services.inference.domain import BATCH_PRIORITY, ChatPrompt, Completion, GenerateResult, Tier
from services.inference.limits import LaneLimiter
from services.inference.pricing import DEFAULT_PRICES, Price, cost_of

log = logging.getLogger(__name__)


@dataclass
class TierConfig:
    backends: Sequence[ChatBackend]
    price_model: str


class InferenceMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.cost = Counter("costmesh_cost_usd", "Dollars spent on model calls", ["tier"], registry=registry)
        self.baseline = Counter(
            "costmesh_baseline_cost_usd", "What the baseline would have spent", ["tier"], registry=registry
        )
        self.tokens = Counter("costmesh_tokens", "Tokens by tier and kind", ["tier", "kind"], registry=registry)
        self.fallbacks = Counter(
            "costmesh_backend_fallbacks", "Requests a later backend answered", ["tier", "backend"], registry=registry
        )
        self.failures = Counter(
            "costmesh_backend_failures", "Calls a backend failed or refused", ["tier", "backend"], registry=registry
        )
        self.skipped = Counter(
            "costmesh_backend_skipped", "Calls not made: the circuit was open", ["tier", "backend"], registry=registry
        )
        self.rate_limited = Counter(
            "costmesh_lane_rate_limited",
            "Requests refused: their lane was over its rate limit",
            ["lane", "tier"],
            registry=registry,
        )
        self.limits_local = Counter(
            "costmesh_lane_limits_local_fallback",
            "Rate-limit checks this replica decided alone: the shared buckets in Redis were unreachable",
            registry=registry,
        )
        self.circuit_open = Gauge(
            "costmesh_backend_circuit_open",
            "1 while a backend's circuit is open",
            ["tier", "backend"],
            registry=registry,
        )


class InferenceCore:
    def __init__(
        self,
        tiers: dict[Tier, TierConfig],
        metrics: InferenceMetrics,
        prices: dict[str, Price] | None = None,
        breaker_failures: int = 3,
        breaker_cooldown_s: float = 30.0,
        limiter: LaneLimiter | None = None,
        batch_apis: dict[tuple[Tier, int], BatchApiCollector] | None = None,
        batch_yield_s: float = 0.0,
    ) -> None:
        self._tiers = tiers
        self._limiter = limiter or LaneLimiter({})
        # (tier, backend index) -> the Batch API that backend's batch-lane calls go through (OpenAI).
        self._batch_apis = batch_apis or {}
        # Real time first: batch-lane calls to a tier are refused while real-time calls to it are in flight
        # or finished less than batch_yield_s ago (0: off). On a small machine both lanes share one engine,
        # and quotas alone cannot keep a batch flood from slowing real-time answers.
        self._batch_yield_s = batch_yield_s
        self._realtime_busy: dict[Tier, int] = dict.fromkeys(tiers, 0)
        self._realtime_done_at: dict[Tier, float] = dict.fromkeys(tiers, -math.inf)
        self._metrics = metrics
        self._breakers = {
            tier: [CircuitBreaker(breaker_failures, breaker_cooldown_s) for _ in config.backends]
            for tier, config in tiers.items()
        }
        self._prices = prices or DEFAULT_PRICES
        for config in tiers.values():
            if config.price_model not in self._prices:
                raise InvalidInput(f"no price for {config.price_model!r}")

    @property
    def price_table(self) -> dict[str, Price]:
        return dict(self._prices)

    def tier_prices(self) -> dict[Tier, tuple[str, Price]]:
        """Each configured tier's price-table row: (price model, price)."""
        return {tier: (config.price_model, self._prices[config.price_model]) for tier, config in self._tiers.items()}

    def _tier(self, tier: Tier) -> TierConfig:
        try:
            return self._tiers[tier]
        except KeyError:
            raise InvalidInput(f"tier {tier.value!r} is not configured") from None

    def _priced(
        self,
        tier: Tier,
        completion: Completion,
        backend: str,
        removed_tokens: Mapping[str, int] | None,
        fell_back: bool,
        lane: str,
    ) -> GenerateResult:
        cost = cost_of(
            completion.usage,
            self._tier(tier).price_model,
            self._tiers[Tier.LARGE].price_model if Tier.LARGE in self._tiers else self._tier(tier).price_model,
            self._prices,
            removed_tokens,
            batch=lane == "batch",
        )
        if tier is Tier.STUDENT:  # a student's saving over the large tier is distillation's, not routing's
            parts = dict(cost.by_intervention)
            parts["distillation"] = parts.pop("routing", 0.0) + parts.pop("distillation", 0.0)
            cost = replace(cost, by_intervention=parts)
        self._metrics.cost.labels(tier.value).inc(cost.cost_usd)
        self._metrics.baseline.labels(tier.value).inc(cost.baseline_cost_usd)
        self._metrics.tokens.labels(tier.value, "prompt").inc(completion.usage.prompt_tokens)
        self._metrics.tokens.labels(tier.value, "completion").inc(completion.usage.completion_tokens)
        return GenerateResult(completion, backend, cost, fell_back)

    def _attempts(self, tier: Tier) -> Iterator[tuple[int, ChatBackend]]:
        """The backends to try, in order, skipping open circuits. Lazy: a backend's breaker is asked only
        when the ones before it have failed, so a half-open trial is never taken and then left unused."""
        backends = self._tier(tier).backends
        skipped = []
        for index, backend in enumerate(backends):
            if self._breakers[tier][index].allows():
                yield index, backend
            else:
                self._metrics.skipped.labels(tier.value, backend.name).inc()
                skipped.append(index)
        if len(skipped) == len(backends):
            # Every circuit is open: try them anyway rather than refuse the request outright.
            yield from ((index, backends[index]) for index in skipped)

    def _record(self, tier: Tier, index: int, ok: bool) -> None:
        breaker = self._breakers[tier][index]
        name = self._tier(tier).backends[index].name
        if ok:
            breaker.succeeded()
        else:
            breaker.failed()
            self._metrics.failures.labels(tier.value, name).inc()
        self._metrics.circuit_open.labels(tier.value, name).set(int(breaker.state is not State.CLOSED))

    def _answered(
        self,
        tier: Tier,
        index: int,
        backend: ChatBackend,
        completion: Completion,
        removed_tokens: Mapping[str, int] | None,
        lane: str,
    ) -> GenerateResult:
        """A backend's answer: its circuit closes, a fall-over is counted, the call is priced."""
        self._record(tier, index, ok=True)
        if index:
            self._metrics.fallbacks.labels(tier.value, backend.name).inc()
        return self._priced(tier, completion, backend.name, removed_tokens, index > 0, lane)

    async def _admit(self, tier: Tier, prompt: ChatPrompt, lane: str) -> ChatPrompt:
        """Charges the lane's rate limits (one request, and the prompt plus the most it may generate);
        the prompt back with the lane's scheduling priority."""
        try:
            if lane == "batch" and self._batch_yield_s and self._realtime_active(tier):
                raise RateLimited(f"real-time requests are using the {tier.value} tier; batch work waits")
            # Counting the prompt's tokens is only worth it where a bucket charges them.
            if self._limiter.limits(lane, tier.value):
                tokens = count_messages([(m.role, m.content) for m in prompt.messages]) + prompt.sampling.max_tokens
                await self._limiter.acquire(lane, tier.value, tokens)
        except RateLimited:
            self._metrics.rate_limited.labels(lane, tier.value).inc()
            raise
        return replace(prompt, priority=BATCH_PRIORITY) if lane == "batch" else prompt

    def batch_must_wait(self) -> bool:
        """True while any tier serves real-time calls (or did within batch_yield_s): batch work that shares
        the machine's cores without a tier of its own (embeddings) waits then too."""
        return bool(self._batch_yield_s) and any(self._realtime_active(tier) for tier in self._tiers)

    def _realtime_active(self, tier: Tier) -> bool:
        idle_s = time.monotonic() - self._realtime_done_at[tier]
        return self._realtime_busy[tier] > 0 or idle_s < self._batch_yield_s

    @contextlib.contextmanager
    def _in_flight(self, tier: Tier, lane: str) -> Iterator[None]:
        if lane == "batch":
            yield
            return
        self._realtime_busy[tier] += 1
        try:
            yield
        finally:
            self._realtime_busy[tier] -= 1
            self._realtime_done_at[tier] = time.monotonic()

    async def generate(
        self,
        tier: Tier,
        prompt: ChatPrompt,
        timeout_s: float,
        removed_tokens: Mapping[str, int] | None = None,
        lane: str = "realtime",
    ) -> GenerateResult:
        self._tier(tier)  # an unknown tier fails before anything is counted
        with self._in_flight(tier, lane):
            admitted = await self._admit(tier, prompt, lane)
            return await self._generate(tier, admitted, timeout_s, removed_tokens, lane)

    async def _generate(
        self, tier: Tier, prompt: ChatPrompt, timeout_s: float, removed_tokens: Mapping[str, int] | None, lane: str
    ) -> GenerateResult:
        errors: list[str] = []
        for index, backend in self._attempts(tier):
            batch_api = self._batch_apis.get((tier, index)) if lane == "batch" else None
            try:
                if batch_api is not None:
                    completion = await asyncio.wait_for(batch_api.complete(prompt), timeout_s)
                else:
                    completion = await backend.complete(prompt, timeout_s)
            except (BackendUnavailable, RateLimited) as exc:
                # A rate limit says the backend is alive: try the next one, but keep this circuit closed.
                self._record(tier, index, ok=isinstance(exc, RateLimited))
                log.warning("%s tier: %s", tier.value, exc)
                errors.append(str(exc))
                continue
            except InvalidInput:
                self._record(tier, index, ok=True)  # the request's fault, not the backend's
                raise
            return self._answered(tier, index, backend, completion, removed_tokens, lane)
        raise BackendUnavailable(f"every {tier.value} backend failed: {'; '.join(errors)}")

    async def stream(
        self,
        tier: Tier,
        prompt: ChatPrompt,
        timeout_s: float,
        removed_tokens: Mapping[str, int] | None = None,
        lane: str = "realtime",
    ) -> AsyncIterator[str | GenerateResult]:
        """Deltas, then one GenerateResult. Falls over to the next backend only before the first delta."""
        self._tier(tier)
        with self._in_flight(tier, lane):
            admitted = await self._admit(tier, prompt, lane)
            async for item in self._stream(tier, admitted, timeout_s, removed_tokens, lane):
                yield item

    async def _stream(
        self, tier: Tier, prompt: ChatPrompt, timeout_s: float, removed_tokens: Mapping[str, int] | None, lane: str
    ) -> AsyncIterator[str | GenerateResult]:
        errors: list[str] = []
        for index, backend in self._attempts(tier):
            started = False
            try:
                async for item in backend.stream(prompt, timeout_s):
                    if isinstance(item, Completion):
                        yield self._answered(tier, index, backend, item, removed_tokens, lane)
                        return
                    started = True
                    yield item
            except (BackendUnavailable, RateLimited) as exc:
                self._record(tier, index, ok=isinstance(exc, RateLimited))
                if started:
                    raise
                errors.append(str(exc))
            except InvalidInput:
                self._record(tier, index, ok=True)
                raise
        raise BackendUnavailable(f"every {tier.value} backend failed: {'; '.join(errors)}")

    async def health(self) -> bool:
        """Healthy when every tier has at least one backend that answers. Students are optional: without
        their engine a task's requests go to the tiers (the orchestrator escalates a failed student)."""
        for tier, config in self._tiers.items():
            if tier is Tier.STUDENT:
                continue
            if not any([await b.healthy() for b in config.backends]):
                return False
        return True

    async def close(self) -> None:
        await self._limiter.close()
        for batch_api in self._batch_apis.values():
            await batch_api.close()
        for config in self._tiers.values():
            for backend in config.backends:
                await backend.close()
