"""Backend fall-over and circuit breaking in the inference core, with in-process fake backends."""

import asyncio
from dataclasses import replace

import pytest
from prometheus_client import CollectorRegistry

from services.common.errors import BackendUnavailable, RateLimited
from services.inference.backends.openai_compatible import request_args
from services.inference.core import InferenceCore, InferenceMetrics, TierConfig
from services.inference.domain import BATCH_PRIORITY, ChatMessage, ChatPrompt, Completion, Sampling, Tier
from services.inference.limits import LaneLimit, LaneLimiter
from tests.service.fakes import DeadBackend, EchoBackend

PROMPT = ChatPrompt((ChatMessage("user", "hello there"),), Sampling(max_tokens=16))


class CountingDead(DeadBackend):
    def __init__(self) -> None:
        super().__init__("dead")
        self.calls = 0

    async def complete(self, prompt: ChatPrompt, timeout_s: float) -> Completion:
        self.calls += 1
        return await super().complete(prompt, timeout_s)


def build(*backends: EchoBackend) -> tuple[InferenceCore, CollectorRegistry]:
    registry = CollectorRegistry()
    tiers = {Tier.SMALL: TierConfig(list(backends), "gpt-4o-mini"), Tier.LARGE: TierConfig([EchoBackend()], "gpt-4o")}
    return InferenceCore(tiers, InferenceMetrics(registry), breaker_failures=2, breaker_cooldown_s=3600), registry


def sample(registry: CollectorRegistry, name: str, backend: str) -> float | None:
    return registry.get_sample_value(name, {"tier": "small", "backend": backend})


async def test_dead_backend_is_skipped_once_its_circuit_opens() -> None:
    dead, live = CountingDead(), EchoBackend("live")
    core, registry = build(dead, live)
    for _ in range(5):
        result = await core.generate(Tier.SMALL, PROMPT, 5)
        assert result.backend == "live" and result.fell_back
    assert dead.calls == 2  # two failures open the circuit; later requests skip it
    assert sample(registry, "costmesh_backend_fallbacks_total", "live") == 5
    assert sample(registry, "costmesh_backend_failures_total", "dead") == 2
    assert sample(registry, "costmesh_backend_skipped_total", "dead") == 3
    assert sample(registry, "costmesh_backend_circuit_open", "dead") == 1


async def test_every_circuit_open_still_tries_rather_than_refusing() -> None:
    dead = CountingDead()
    core, _ = build(dead)
    for _ in range(3):
        with pytest.raises(BackendUnavailable, match="every small backend failed"):
            await core.generate(Tier.SMALL, PROMPT, 5)
    assert dead.calls == 3


async def test_stream_falls_over_before_the_first_delta() -> None:
    core, _ = build(DeadBackend("dead"), EchoBackend("live"))
    items = [item async for item in core.stream(Tier.SMALL, PROMPT, 5)]
    *deltas, final = items
    assert "".join(str(d) for d in deltas).strip() == "echo: hello there"
    assert not isinstance(final, str) and final.backend == "live" and final.fell_back


async def test_batch_lane_over_its_limit_is_refused_while_real_time_is_served() -> None:
    registry = CollectorRegistry()
    backend = EchoBackend("live")
    limiter = LaneLimiter({("batch", "small"): LaneLimit(1, 10_000)})
    tiers = {Tier.SMALL: TierConfig([backend], "gpt-4o-mini"), Tier.LARGE: TierConfig([EchoBackend()], "gpt-4o")}
    core = InferenceCore(tiers, InferenceMetrics(registry), limiter=limiter)
    first = await core.generate(Tier.SMALL, PROMPT, 5, lane="batch")
    assert first.cost.by_intervention["batch"] > 0  # priced at batch prices
    with pytest.raises(RateLimited, match="batch lane"):
        await core.generate(Tier.SMALL, PROMPT, 5, lane="batch")
    assert len(backend.prompts) == 1  # the refused request never reached the model
    assert backend.prompts[0].priority == BATCH_PRIORITY  # queued behind real time on priority servers
    for _ in range(5):
        await core.generate(Tier.SMALL, PROMPT, 5)  # real time: its own (unlimited) quota
    assert registry.get_sample_value("costmesh_lane_rate_limited_total", {"lane": "batch", "tier": "small"}) == 1
    assert backend.prompts[-1].priority == 0


def test_only_priority_servers_get_the_priority_field() -> None:
    batch_prompt = replace(PROMPT, priority=BATCH_PRIORITY)
    assert request_args("m", batch_prompt, sends_priority=True)["extra_body"] == {"priority": BATCH_PRIORITY}
    assert "extra_body" not in request_args("m", batch_prompt)  # OpenAI has no such field
    assert "extra_body" not in request_args("m", PROMPT, sends_priority=True)


async def test_batch_work_waits_while_real_time_uses_the_tier() -> None:
    slow = EchoBackend("live", delay_s=0.2)
    tiers = {Tier.SMALL: TierConfig([slow], "gpt-4o-mini"), Tier.LARGE: TierConfig([EchoBackend()], "gpt-4o")}
    core = InferenceCore(tiers, InferenceMetrics(CollectorRegistry()), batch_yield_s=0.3)
    await core.generate(Tier.SMALL, PROMPT, 5, lane="batch")  # an idle tier: batch runs
    realtime = asyncio.create_task(core.generate(Tier.SMALL, PROMPT, 5))
    await asyncio.sleep(0.05)
    with pytest.raises(RateLimited, match="real-time requests are using the small tier"):
        await core.generate(Tier.SMALL, PROMPT, 5, lane="batch")  # while real time is in flight
    await realtime
    with pytest.raises(RateLimited):
        await core.generate(Tier.SMALL, PROMPT, 5, lane="batch")  # and for batch_yield_s after it
    await core.generate(Tier.LARGE, PROMPT, 5, lane="batch")  # other tiers are not held back
    await asyncio.sleep(0.35)
    await core.generate(Tier.SMALL, PROMPT, 5, lane="batch")
