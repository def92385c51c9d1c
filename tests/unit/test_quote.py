"""A request's reserved worst case: every call it may make, at full length."""

from __future__ import annotations

import pytest

from costmesh.v1 import common_pb2, inference_pb2, orchestrator_pb2
from services.orchestrator.quote import SUMMARY_TOKENS_BOUND, PriceBook, calls_of, prompt_tokens

PRICES = inference_pb2.PricesResponse(
    tiers=[
        inference_pb2.TierPrice(tier=common_pb2.TIER_SMALL, input_per_m=1.0, output_per_m=2.0, batch_discount=0.5),
        inference_pb2.TierPrice(tier=common_pb2.TIER_LARGE, input_per_m=10.0, output_per_m=20.0, batch_discount=0.5),
    ],
    default_max_tokens=100,
)


def request(tier: common_pb2.Tier.ValueType, max_tokens: int = 0, lane: int = 0) -> orchestrator_pb2.CompletionRequest:
    return orchestrator_pb2.CompletionRequest(
        messages=[common_pb2.Message(role=common_pb2.ROLE_USER, content="What is the capital of France?")],
        sampling=common_pb2.SamplingParams(max_tokens=max_tokens),
        tier=tier,
        lane=lane,  # type: ignore[arg-type]
    )


async def fetch() -> inference_pb2.PricesResponse:
    return PRICES


def expected(calls: list[tuple[float, float]], prompt: int, completion: int) -> float:
    """The answer calls at max_tokens, then pruning's summary at its own bound (at least 512 tokens)."""
    *answers, summary = calls
    total = sum(1e-6 * (prompt * i + completion * o) for i, o in answers)
    return total + 1e-6 * (prompt * summary[0] + max(completion, SUMMARY_TOKENS_BOUND) * summary[1])


async def test_a_routed_request_holds_the_cheap_answer_an_escalation_and_a_summary() -> None:
    book = PriceBook(fetch)
    r = request(common_pb2.TIER_UNSPECIFIED)
    n = prompt_tokens(r)
    assert await book.worst_case_usd(r) == pytest.approx(expected([(1, 2), (10, 20), (1, 2)], n, 100))


async def test_a_fixed_tier_holds_that_tier_and_max_tokens_counts() -> None:
    book = PriceBook(fetch)
    small, large = request(common_pb2.TIER_SMALL, 10), request(common_pb2.TIER_LARGE, 10)
    n = prompt_tokens(small)
    assert await book.worst_case_usd(small) == pytest.approx(expected([(1, 2), (1, 2)], n, 10))
    assert await book.worst_case_usd(large) == pytest.approx(expected([(10, 20), (1, 2)], n, 10))


async def test_the_batch_lane_holds_batch_prices() -> None:
    book = PriceBook(fetch)
    realtime = await book.worst_case_usd(request(common_pb2.TIER_LARGE))
    batch = await book.worst_case_usd(request(common_pb2.TIER_LARGE, lane=common_pb2.LANE_BATCH))
    assert batch == pytest.approx(realtime / 2)


def test_non_ascii_text_is_reserved_a_token_per_byte() -> None:
    english = request(common_pb2.TIER_SMALL)
    cjk = request(common_pb2.TIER_SMALL)
    cjk.messages[0].content = "法国的首都是哪里" * 10  # o200k needs few tokens; a byte-level BPE up to 270
    assert prompt_tokens(cjk) >= len(cjk.messages[0].content.encode())
    assert prompt_tokens(english) < len(english.messages[0].content.encode())  # English: o200k x 1.5, not bytes


def test_documents_count_as_prompt() -> None:
    r = request(common_pb2.TIER_SMALL)
    before = prompt_tokens(r)
    r.documents.add(text="Some retrieved context. " * 20)
    assert prompt_tokens(r) > before + 80
    assert calls_of(common_pb2.TIER_UNSPECIFIED).count(common_pb2.TIER_LARGE) == 1
