"""The inference backends against real vLLM OpenAI-compatible servers."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from launcher.settings import StackSettings
from services.common.errors import BackendUnavailable
from services.inference.backends.registry import make_backend
from services.inference.core import InferenceCore, InferenceMetrics, TierConfig
from services.inference.domain import ChatMessage, ChatPrompt, Completion, Sampling, Tier

pytestmark = pytest.mark.integration

PROMPT = ChatPrompt(
    (ChatMessage("user", "What is the capital of France? Answer in one sentence."),), Sampling(max_tokens=32)
)


def small(settings: StackSettings) -> str:
    return settings.model_url("small")


async def test_complete_with_usage_and_logprobs(infra: StackSettings) -> None:
    backend = make_backend("vllm", small(infra), infra.small_model, "")
    try:
        assert await backend.healthy()
        prompt = ChatPrompt(PROMPT.messages, Sampling(max_tokens=32, logprobs=True))
        result = await backend.complete(prompt, 60)
        assert "Paris" in result.text
        assert result.finish_reason == "stop"
        assert result.usage.prompt_tokens > 5
        assert 0 < result.usage.completion_tokens <= 32
        assert len(result.logprobs) == result.usage.completion_tokens
        assert all(lp <= 0 for _, lp in result.logprobs)
    finally:
        await backend.close()


async def test_truncated_answer_reports_length(infra: StackSettings) -> None:
    backend = make_backend("vllm", small(infra), infra.small_model, "")
    try:
        result = await backend.complete(
            ChatPrompt((ChatMessage("user", "Write a long story about a dragon."),), Sampling(max_tokens=5)), 60
        )
        assert result.finish_reason == "length"
        assert result.usage.completion_tokens == 5
    finally:
        await backend.close()


async def test_stream_matches_usage(infra: StackSettings) -> None:
    backend = make_backend("vllm", small(infra), infra.small_model, "")
    try:
        pieces, final = [], None
        async for item in backend.stream(PROMPT, 60):
            if isinstance(item, Completion):
                final = item
            else:
                pieces.append(item)
        assert final is not None
        assert "".join(pieces) == final.text
        assert len(pieces) >= 2
        assert final.usage.completion_tokens > 0
    finally:
        await backend.close()


async def test_large_tier_answers(infra: StackSettings) -> None:
    backend = make_backend("vllm", infra.model_url("large"), infra.large_model, "")
    try:
        result = await backend.complete(PROMPT, 120)
        assert "Paris" in result.text
    finally:
        await backend.close()


async def test_dead_backend_falls_over_to_the_live_one(infra: StackSettings) -> None:
    dead = make_backend("vllm", "http://127.0.0.1:9/v1", infra.small_model, "")  # nothing listens on port 9
    live = make_backend("vllm", small(infra), infra.small_model, "")
    core = InferenceCore(
        {Tier.SMALL: TierConfig([dead, live], "gpt-4o-mini"), Tier.LARGE: TierConfig([live], "gpt-4o")},
        InferenceMetrics(CollectorRegistry()),
    )
    try:
        result = await core.generate(Tier.SMALL, PROMPT, 60)
        assert result.fell_back
        assert "Paris" in result.completion.text
        assert result.cost.cost_usd > 0
        with pytest.raises(BackendUnavailable):
            await dead.complete(PROMPT, 5)
    finally:
        await core.close()
