"""A request's worst-case cost, from the tiers' prices as the inference service reports them. No grpc here."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable

from costmesh.v1 import common_pb2, inference_pb2, orchestrator_pb2
from services.common.errors import CostmeshError, MissingConfig
from services.common.tokens import count_messages, count_text
from services.orchestrator.spend import RESERVE_MARGIN

log = logging.getLogger(__name__)
FetchPrices = Callable[[], Awaitable[inference_pb2.PricesResponse]]
REFRESH_S = 60.0
# A summary's length is the summarizer's own setting (COSTMESH_SUMMARIZER_SUMMARY_TOKENS, 200 by default),
# not the request's max_tokens; this bounds it for the reservation.
SUMMARY_TOKENS_BOUND = 512  # prices change with a redeploy of inference, not per request
# An embedding input is cut to its model's length (MiniLM: 256 tokens; OpenAI's: 8191), and no tokenizer
# spends more than one token per byte plus its two special tokens.
EMBEDDING_TOKENS_BOUND = 8192


def calls_of(tier: common_pb2.Tier.ValueType) -> list[common_pb2.Tier.ValueType]:
    """The model calls a request may make: its answer on the planned tier (routed: the cheap answer and
    an escalation), plus a cheap summary when pruning summarizes its history."""
    if tier == common_pb2.TIER_SMALL:
        return [common_pb2.TIER_SMALL, common_pb2.TIER_SMALL]
    if tier == common_pb2.TIER_LARGE:
        return [common_pb2.TIER_LARGE, common_pb2.TIER_SMALL]
    return [common_pb2.TIER_SMALL, common_pb2.TIER_LARGE, common_pb2.TIER_SMALL]


def prompt_tokens(request: orchestrator_pb2.CompletionRequest) -> int:
    """The prompt's tokens as the tiers may count them: o200k's count times RESERVE_MARGIN, but at least
    one token per byte of non-ASCII text (byte-level BPEs such as SmolLM2's can spend a token per byte of
    CJK or emoji, where o200k has one for a whole word)."""
    texts = [m.content for m in request.messages] + [d.text for d in request.documents]
    o200k = count_messages([(str(m.role), m.content) for m in request.messages])
    o200k += sum(count_text(d.text) for d in request.documents)
    non_ascii = sum(len(t.encode()) - sum(c.isascii() for c in t) for t in texts)
    return max(math.ceil(RESERVE_MARGIN * o200k), o200k + non_ascii)


class PriceBook:
    def __init__(self, fetch: FetchPrices) -> None:
        self._fetch = fetch
        self._prices: inference_pb2.PricesResponse | None = None
        self._fetched_at = 0.0

    async def _current(self) -> inference_pb2.PricesResponse:
        if self._prices is None or time.monotonic() - self._fetched_at > REFRESH_S:
            try:
                self._prices = await self._fetch()
            except CostmeshError:
                if self._prices is None:
                    raise
                log.warning("inference's prices unreachable; reserving at the last ones known")
            self._fetched_at = time.monotonic()
        return self._prices

    async def worst_case_usd(self, request: orchestrator_pb2.CompletionRequest) -> float:
        """Every call the request may make, each with the whole prompt and every token max_tokens allows."""
        prices = await self._current()
        by_tier = {p.tier: p for p in prices.tiers}
        completion = request.sampling.max_tokens or prices.default_max_tokens
        prompt = prompt_tokens(request)
        total = 0.0
        calls = calls_of(request.tier)
        for i, tier in enumerate(calls):
            price = by_tier.get(tier) or by_tier.get(common_pb2.TIER_LARGE) or by_tier[common_pb2.TIER_SMALL]
            summary = i == len(calls) - 1  # the last call is pruning's summary
            out = max(completion, SUMMARY_TOKENS_BOUND) if summary else completion
            usd = 1e-6 * (prompt * price.input_per_m + out * price.output_per_m)
            total += usd * (price.batch_discount if request.lane == common_pb2.LANE_BATCH else 1.0)
        return total

    async def worst_case_embedding_usd(self, request: orchestrator_pb2.EmbeddingsRequest) -> float:
        """Every input at one token per byte (bounded by the longest input a model takes)."""
        prices = await self._current()
        if not prices.HasField("embedding"):
            raise MissingConfig("the inference service has no embedding model")
        tokens = sum(min(len(text.encode()) + 2, EMBEDDING_TOKENS_BOUND) for text in request.input)
        usd = 1e-6 * tokens * prices.embedding.input_per_m
        return usd * (prices.embedding.batch_discount if request.lane == common_pb2.LANE_BATCH else 1.0)
