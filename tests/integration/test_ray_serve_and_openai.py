"""The Ray Serve and OpenAI backends for real: Ray Serve's ingress, and the OpenAI SDK against vLLM's server
(no OpenAI access exists here). Last, a backend is killed mid-run and the tier falls over to the next one."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from launcher.settings import StackSettings
from services.common.errors import BackendUnavailable, InvalidInput
from services.inference.backends.registry import make_backend
from services.inference.core import InferenceCore, InferenceMetrics, TierConfig
from services.inference.domain import ChatMessage, ChatPrompt, Completion, Sampling, Tier
from tests import stack

pytestmark = pytest.mark.integration

PROMPT = ChatPrompt(
    (ChatMessage("user", "What is the capital of France? Answer in one sentence."),),
    Sampling(max_tokens=24, logprobs=True),
)


def ray_url(settings: StackSettings) -> str:
    return f"http://127.0.0.1:{settings.ray_serve_port}/v1"


def vllm_url(settings: StackSettings) -> str:
    return settings.model_url("small")


async def test_ray_serve_answers_with_usage_logprobs_and_a_stream(infra: StackSettings) -> None:
    backend = make_backend("ray-serve", ray_url(infra), infra.small_model, "")
    try:
        assert await backend.healthy()
        result = await backend.complete(PROMPT, 60)
        assert "Paris" in result.text
        assert result.finish_reason == "stop"
        assert result.usage.prompt_tokens > 5
        assert len(result.logprobs) == result.usage.completion_tokens > 0
        assert all(lp <= 0 for _, lp in result.logprobs)
        pieces, final = [], None
        async for item in backend.stream(PROMPT, 60):
            if isinstance(item, Completion):
                final = item
            else:
                pieces.append(item)
        assert final is not None and "".join(pieces) == final.text == result.text  # greedy: same answer
        assert final.usage.completion_tokens > 0
        truncated = await backend.complete(ChatPrompt(PROMPT.messages, Sampling(max_tokens=3)), 60)
        assert truncated.finish_reason == "length" and truncated.usage.completion_tokens == 3
    finally:
        await backend.close()


async def test_openai_backend_through_the_official_sdk(infra: StackSettings) -> None:
    with pytest.raises(Exception, match="needs OPENAI_API_KEY"):
        make_backend("openai", vllm_url(infra), infra.small_model, "")
    backend = make_backend("openai", vllm_url(infra), infra.small_model, "sk-test")
    try:
        result = await backend.complete(PROMPT, 60)
        assert "Paris" in result.text
        assert result.usage.prompt_tokens > 5 and result.usage.completion_tokens > 0
        # A request the server rejects (400) is the caller's error, not an outage: INVALID_ARGUMENT.
        too_long = ChatPrompt(PROMPT.messages, Sampling(max_tokens=100_000))
        with pytest.raises(InvalidInput, match="rejected the request"):
            await backend.complete(too_long, 60)
    finally:
        await backend.close()


async def test_killed_backend_falls_over_and_its_circuit_opens(infra: StackSettings) -> None:
    ray = make_backend("ray-serve", ray_url(infra), infra.small_model, "")
    vllm = make_backend("vllm", vllm_url(infra), infra.small_model, "")
    registry = CollectorRegistry()
    core = InferenceCore(
        {Tier.SMALL: TierConfig([ray, vllm], "gpt-4o-mini"), Tier.LARGE: TierConfig([vllm], "gpt-4o")},
        InferenceMetrics(registry),
        breaker_failures=1,
        breaker_cooldown_s=3600,
    )
    prompt = ChatPrompt(PROMPT.messages, Sampling(max_tokens=8))
    try:
        first = await core.generate(Tier.SMALL, prompt, 60)
        assert first.backend == "ray-serve" and not first.fell_back
        stack.stop(infra, ["ray-serve"])
        for _ in range(3):
            result = await core.generate(Tier.SMALL, prompt, 60)
            assert result.backend == "vllm" and result.fell_back
        labels = {"tier": "small", "backend": "ray-serve"}
        assert registry.get_sample_value("costmesh_backend_failures_total", labels) == 1
        assert registry.get_sample_value("costmesh_backend_skipped_total", labels) == 2  # the circuit opened
        assert registry.get_sample_value("costmesh_backend_fallbacks_total", {**labels, "backend": "vllm"}) == 3
        with pytest.raises(BackendUnavailable):
            await ray.complete(prompt, 5)
    finally:
        await core.close()
        stack.start(infra, ["ray-serve"])
