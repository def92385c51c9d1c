"""In-process fakes of the orchestrator's Stages and Generator, for unit tests of the pipeline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from costmesh.v1 import (
    cache_pb2,
    common_pb2,
    compressor_pb2,
    inference_pb2,
    router_pb2,
    summarizer_pb2,
)
from services.inference.domain import Usage
from services.inference.pricing import DEFAULT_PRICES, cost_of


def priced(
    text: str,
    tier: common_pb2.Tier.ValueType,
    prompt_tokens: int = 100,
    finish_reason: str = "stop",
    logprobs: tuple[float, ...] = (-0.1, -0.2),
    removed: dict[str, int] | None = None,
) -> inference_pb2.GenerateResponse:
    """An answer priced the way the inference service prices it (so the ledger's invariant is real)."""
    model = "gpt-4o-mini" if tier == common_pb2.TIER_SMALL else "gpt-4o"
    usage = Usage(prompt_tokens, len(text.split()), 0)
    cost = cost_of(usage, model, "gpt-4o", DEFAULT_PRICES, removed)
    return inference_pb2.GenerateResponse(
        text=text,
        model=model,
        finish_reason=finish_reason,
        usage=common_pb2.TokenUsage(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens),
        cost=common_pb2.CostReport(
            cost_usd=cost.cost_usd,
            baseline_cost_usd=cost.baseline_cost_usd,
            savings_usd=cost.savings_usd,
            price_model=model,
            savings_by_intervention=dict(cost.by_intervention),
        ),
        logprobs=[
            inference_pb2.TokenLogprob(
                token=f"t{i}",
                logprob=lp,
                top=[
                    inference_pb2.TopLogprob(token=f"t{i}", logprob=lp),
                    inference_pb2.TopLogprob(token="u", logprob=-9),
                ],
            )
            for i, lp in enumerate(logprobs)
        ],
    )


@dataclass
class FakeStages:
    route_response: router_pb2.RouteResponse = field(
        default_factory=lambda: router_pb2.RouteResponse(
            decision=common_pb2.RouteDecision(tier=common_pb2.TIER_SMALL, classifier="rules", reason="short")
        )
    )
    assess_response: router_pb2.AssessResponse | Exception | None = None
    prune_response: summarizer_pb2.PruneResponse | None = None
    routes: list[router_pb2.RouteRequest] = field(default_factory=list)
    assessed: list[router_pb2.AssessRequest] = field(default_factory=list)
    pruned: list[summarizer_pb2.PruneRequest] = field(default_factory=list)
    lookups: list[cache_pb2.LookupRequest] = field(default_factory=list)
    stored: list[cache_pb2.StoreRequest] = field(default_factory=list)

    async def lookup(self, request: cache_pb2.LookupRequest, timeout_s: float) -> cache_pb2.LookupResponse:
        self.lookups.append(request)
        return cache_pb2.LookupResponse(decision=common_pb2.CacheDecision(kind=common_pb2.CACHE_HIT_KIND_MISS))

    async def store(self, request: cache_pb2.StoreRequest, timeout_s: float) -> cache_pb2.StoreResponse:
        self.stored.append(request)
        return cache_pb2.StoreResponse()

    async def route(self, request: router_pb2.RouteRequest, timeout_s: float) -> router_pb2.RouteResponse:
        self.routes.append(request)
        return self.route_response

    async def assess(self, request: router_pb2.AssessRequest, timeout_s: float) -> router_pb2.AssessResponse:
        self.assessed.append(request)
        if isinstance(self.assess_response, Exception):
            raise self.assess_response
        if self.assess_response is None:
            raise AssertionError("Assess was not expected")
        return self.assess_response

    async def prune(self, request: summarizer_pb2.PruneRequest, timeout_s: float) -> summarizer_pb2.PruneResponse:
        self.pruned.append(request)
        return self.prune_response or summarizer_pb2.PruneResponse(messages=request.messages)

    async def compress(
        self, request: compressor_pb2.CompressRequest, timeout_s: float
    ) -> compressor_pb2.CompressResponse:
        return compressor_pb2.CompressResponse(documents=request.documents)


@dataclass
class FakeGenerator:
    """Answers per tier; records each call as ("unary" | "stream", tier, request)."""

    answers: dict[int, inference_pb2.GenerateResponse]
    calls: list[tuple[str, int, inference_pb2.GenerateRequest]] = field(default_factory=list)

    def _answer(self, kind: str, request: inference_pb2.GenerateRequest) -> inference_pb2.GenerateResponse:
        sent = inference_pb2.GenerateRequest()
        sent.CopyFrom(request)
        self.calls.append((kind, request.tier, sent))
        answer = inference_pb2.GenerateResponse()
        answer.CopyFrom(self.answers[request.tier])
        return answer

    async def generate(
        self, request: inference_pb2.GenerateRequest, timeout_s: float
    ) -> inference_pb2.GenerateResponse:
        return self._answer("unary", request)

    async def generate_stream(
        self, request: inference_pb2.GenerateRequest, timeout_s: float
    ) -> AsyncIterator[str | inference_pb2.GenerateResponse]:
        answer = self._answer("stream", request)
        words = answer.text.split(" ")
        for i, word in enumerate(words):
            yield word if i == 0 else " " + word
        yield answer
