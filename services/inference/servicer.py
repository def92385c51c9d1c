"""Proto <-> domain adapter for the Inference service."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import grpc

from costmesh.v1 import common_pb2, inference_pb2, inference_pb2_grpc
from services.common.contracts import role_pairs
from services.common.deadlines import remaining_s
from services.common.errors import InvalidInput, MissingConfig, RateLimited
from services.common.validation import check_enum, check_sampling
from services.inference.core import InferenceCore
from services.inference.domain import ChatMessage, ChatPrompt, GenerateResult, Sampling, Tier
from services.inference.embeddings import EmbeddingCore

TIERS = {common_pb2.TIER_SMALL: Tier.SMALL, common_pb2.TIER_LARGE: Tier.LARGE}
_ADAPTER = re.compile(r"[a-z0-9][a-z0-9_.-]{0,95}")


def to_prompt(request: inference_pb2.GenerateRequest, default_max_tokens: int) -> tuple[Tier, ChatPrompt]:
    if request.tier not in TIERS:
        raise InvalidInput("tier must be TIER_SMALL or TIER_LARGE")
    if request.adapter and request.tier != common_pb2.TIER_SMALL:
        raise InvalidInput("a student (adapter) stands in for the small tier: tier must be TIER_SMALL")
    if request.adapter and not _ADAPTER.fullmatch(request.adapter):
        raise InvalidInput(f"adapter {request.adapter[:80]!r} is invalid: lowercase letters, digits, '.', '-', '_'")
    if not request.messages:
        raise InvalidInput("messages must not be empty")
    messages = [ChatMessage(role, content) for role, content in role_pairs(request.messages)]
    check_sampling(request.sampling)  # a NaN temperature went on to vLLM
    check_enum(request.lane, common_pb2.Lane.DESCRIPTOR, "lane")
    s = request.sampling
    sampling = Sampling(
        temperature=s.temperature if s.HasField("temperature") else 0.0,
        top_p=s.top_p if s.HasField("top_p") else None,
        max_tokens=s.max_tokens or default_max_tokens,
        stop=tuple(s.stop),
        seed=s.seed if s.HasField("seed") else None,
        logprobs=s.logprobs,
    )
    tier = Tier.STUDENT if request.adapter else TIERS[request.tier]
    return tier, ChatPrompt(tuple(messages), sampling, adapter=request.adapter, adapter_path=request.adapter_path)


def lane_of(request: inference_pb2.GenerateRequest | inference_pb2.EmbedRequest) -> str:
    return "batch" if request.lane == common_pb2.LANE_BATCH else "realtime"


def removed_tokens(request: inference_pb2.GenerateRequest) -> dict[str, int]:
    negative = sorted(name for name, n in request.removed_tokens.items() if n < 0)
    if negative:
        raise InvalidInput(f"removed_tokens must be >= 0; negative for {negative}")
    return dict(request.removed_tokens)


def to_response(result: GenerateResult) -> inference_pb2.GenerateResponse:
    c = result.completion
    return inference_pb2.GenerateResponse(
        text=c.text,
        model=c.model,
        backend=result.backend,
        finish_reason=c.finish_reason,
        usage=common_pb2.TokenUsage(
            prompt_tokens=c.usage.prompt_tokens,
            completion_tokens=c.usage.completion_tokens,
            cached_prompt_tokens=c.usage.cached_prompt_tokens,
        ),
        cost=common_pb2.CostReport(
            cost_usd=result.cost.cost_usd,
            baseline_cost_usd=result.cost.baseline_cost_usd,
            savings_usd=result.cost.savings_usd,
            price_model=result.cost.price_model,
            savings_by_intervention=dict(result.cost.by_intervention),
        ),
        logprobs=[
            inference_pb2.TokenLogprob(
                token=t, logprob=lp, top=[inference_pb2.TopLogprob(token=a, logprob=alp) for a, alp in top]
            )
            for (t, lp), top in zip(c.logprobs, c.top_logprobs or [()] * len(c.logprobs), strict=True)
        ],
        fell_back=result.fell_back,
    )


class InferenceServicer(inference_pb2_grpc.InferenceServicer):
    def __init__(
        self,
        core: InferenceCore,
        timeout_s: float,
        default_max_tokens: int,
        embeddings: EmbeddingCore | None = None,
    ) -> None:
        self._core = core
        self._timeout_s = timeout_s
        self._default_max_tokens = default_max_tokens
        self._embeddings = embeddings

    async def Generate(
        self, request: inference_pb2.GenerateRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> inference_pb2.GenerateResponse:
        tier, prompt = to_prompt(request, self._default_max_tokens)
        timeout = remaining_s(context, self._timeout_s)
        result = await self._core.generate(tier, prompt, timeout, removed_tokens(request), lane_of(request))
        return to_response(result)

    async def GenerateStream(
        self, request: inference_pb2.GenerateRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[inference_pb2.GenerateChunk]:
        tier, prompt = to_prompt(request, self._default_max_tokens)
        timeout = remaining_s(context, self._timeout_s)
        async for item in self._core.stream(tier, prompt, timeout, removed_tokens(request), lane_of(request)):
            if isinstance(item, str):
                yield inference_pb2.GenerateChunk(delta=item)
            else:
                yield inference_pb2.GenerateChunk(final=to_response(item))

    async def Prices(
        self, request: inference_pb2.PricesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> inference_pb2.PricesResponse:
        by_tier = {tier: proto for proto, tier in TIERS.items()}
        return inference_pb2.PricesResponse(
            tiers=[
                inference_pb2.TierPrice(
                    tier=by_tier[tier],
                    price_model=model,
                    input_per_m=price.input_per_m,
                    cached_input_per_m=price.cached_input_per_m,
                    output_per_m=price.output_per_m,
                    batch_discount=price.batch_discount,
                )
                for tier, (model, price) in self._core.tier_prices().items()
                if tier in by_tier  # the student tier stands in for small: quotes price it as small
            ],
            default_max_tokens=self._default_max_tokens,
            embedding=self._embedding_price(),
        )

    def _embedding_price(self) -> inference_pb2.TierPrice | None:
        if self._embeddings is None:
            return None
        price = self._embeddings.price
        return inference_pb2.TierPrice(
            price_model=self._embeddings.price_model,
            input_per_m=price.input_per_m,
            cached_input_per_m=price.cached_input_per_m,
            # The discount the batch lane really gets: none where batch embeddings are full-price calls.
            batch_discount=price.batch_discount if self._embeddings.batch_priced else 1.0,
        )

    async def Embed(
        self, request: inference_pb2.EmbedRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> inference_pb2.EmbedResponse:
        if self._embeddings is None:
            raise MissingConfig("no embedding backend is configured here (COSTMESH_INFERENCE_EMBEDDING_BACKEND)")
        check_enum(request.lane, common_pb2.Lane.DESCRIPTOR, "lane")
        timeout = remaining_s(context, self._timeout_s)
        batch = lane_of(request) == "batch"
        if batch and self._embeddings.shares_cores and self._core.batch_must_wait():
            # Real time first: the local embedder runs on the cores the model servers answer on.
            raise RateLimited("real-time requests are using the models; batch embeddings wait", retry_after_s=1.0)
        embedded, cost = await self._embeddings.embed(list(request.input), batch, timeout)
        return inference_pb2.EmbedResponse(
            data=[common_pb2.Embedding(values=row.tolist(), model=embedded.model) for row in embedded.vectors],
            model=embedded.model,
            backend=self._embeddings.backend,
            prompt_tokens=embedded.prompt_tokens,
            truncated=embedded.truncated,
            cost=common_pb2.CostReport(
                cost_usd=cost.cost_usd,
                baseline_cost_usd=cost.baseline_cost_usd,
                savings_usd=cost.savings_usd,
                price_model=cost.price_model,
                savings_by_intervention=dict(cost.by_intervention),
            ),
        )
