"""Runs a tier: tries its backends in order, prices the answer. No grpc here."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter

from services.common.errors import BackendUnavailable, InvalidInput
from services.inference.backends.base import ChatBackend
from services.inference.domain import ChatPrompt, Completion, GenerateResult, Tier
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


class InferenceCore:
    def __init__(
        self,
        tiers: dict[Tier, TierConfig],
        metrics: InferenceMetrics,
        prices: dict[str, Price] | None = None,
    ) -> None:
        self._tiers = tiers
        self._metrics = metrics
        self._prices = prices or DEFAULT_PRICES
        for config in tiers.values():
            if config.price_model not in self._prices:
                raise InvalidInput(f"no price for {config.price_model!r}")

    def _tier(self, tier: Tier) -> TierConfig:
        try:
            return self._tiers[tier]
        except KeyError:
            raise InvalidInput(f"tier {tier.value!r} is not configured") from None

    def _priced(
        self, tier: Tier, completion: Completion, backend: str, removed_prompt_tokens: int, fell_back: bool
    ) -> GenerateResult:
        cost = cost_of(
            completion.usage,
            self._tier(tier).price_model,
            self._tiers[Tier.LARGE].price_model if Tier.LARGE in self._tiers else self._tier(tier).price_model,
            self._prices,
            removed_prompt_tokens,
        )
        self._metrics.cost.labels(tier.value).inc(cost.cost_usd)
        self._metrics.baseline.labels(tier.value).inc(cost.baseline_cost_usd)
        self._metrics.tokens.labels(tier.value, "prompt").inc(completion.usage.prompt_tokens)
        self._metrics.tokens.labels(tier.value, "completion").inc(completion.usage.completion_tokens)
        return GenerateResult(completion, backend, cost, fell_back)

    async def generate(
        self, tier: Tier, prompt: ChatPrompt, timeout_s: float, removed_prompt_tokens: int = 0
    ) -> GenerateResult:
        errors: list[str] = []
        for index, backend in enumerate(self._tier(tier).backends):
            try:
                completion = await backend.complete(prompt, timeout_s)
            except BackendUnavailable as exc:
                log.warning("%s tier: %s", tier.value, exc)
                errors.append(str(exc))
                continue
            if index:
                self._metrics.fallbacks.labels(tier.value, backend.name).inc()
            return self._priced(tier, completion, backend.name, removed_prompt_tokens, fell_back=index > 0)
        raise BackendUnavailable(f"every {tier.value} backend failed: {'; '.join(errors)}")

    async def stream(
        self, tier: Tier, prompt: ChatPrompt, timeout_s: float, removed_prompt_tokens: int = 0
    ) -> AsyncIterator[str | GenerateResult]:
        """Deltas, then one GenerateResult. Falls over to the next backend only before the first delta."""
        errors: list[str] = []
        for index, backend in enumerate(self._tier(tier).backends):
            started = False
            try:
                async for item in backend.stream(prompt, timeout_s):
                    if isinstance(item, Completion):
                        yield self._priced(tier, item, backend.name, removed_prompt_tokens, fell_back=index > 0)
                        return
                    started = True
                    yield item
            except BackendUnavailable as exc:
                if started:
                    raise
                errors.append(str(exc))
        raise BackendUnavailable(f"every {tier.value} backend failed: {'; '.join(errors)}")

    async def health(self) -> bool:
        """Healthy when every tier has at least one backend that answers."""
        for config in self._tiers.values():
            if not any([await b.healthy() for b in config.backends]):
                return False
        return True

    async def close(self) -> None:
        for config in self._tiers.values():
            for backend in config.backends:
                await backend.close()
