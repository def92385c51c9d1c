"""Spot-checks of semantic hits: sampled, off the hot path, evicting what the large tier disagrees with."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from costmesh.v1 import cache_pb2, common_pb2, inference_pb2, orchestrator_pb2
from services.cache.settings import CacheSettings
from services.common.errors import BackendUnavailable, RateLimited
from services.orchestrator import spotcheck
from services.orchestrator.metrics import OrchestratorMetrics
from services.orchestrator.pipeline import Pipeline
from services.orchestrator.prepare import Budgets
from services.orchestrator.settings import OrchestratorSettings
from services.orchestrator.spotcheck import SpotCheckConfig, SpotChecker, judge_messages, verdict
from services.orchestrator.warmup import WARM_UP_TENANT
from tests.unit.pipeline_fakes import FakeGenerator, FakeStages, priced

LARGE = common_pb2.TIER_LARGE
USER, ASSISTANT, SYSTEM = common_pb2.ROLE_USER, common_pb2.ROLE_ASSISTANT, common_pb2.ROLE_SYSTEM
CACHED = "Paris is the capital of France."
KINDS = {"exact": common_pb2.CACHE_HIT_KIND_EXACT, "semantic": common_pb2.CACHE_HIT_KIND_SEMANTIC}


class FakeEmbedder:
    name = "fake-embedder"
    dimensions = 2

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([[0.6, 0.8]] * len(texts))


@dataclass
class HitStages(FakeStages):
    """A cache that answers with `hit` ("exact", "semantic" or "miss") and records invalidations."""

    hit: str = "semantic"
    invalidated: list[cache_pb2.InvalidateRequest] = field(default_factory=list)
    invalidate_error: Exception | None = None

    async def lookup(self, request: cache_pb2.LookupRequest, timeout_s: float) -> cache_pb2.LookupResponse:
        self.lookups.append(request)
        kind = KINDS.get(self.hit)
        exact_tier = request.tiers == cache_pb2.LOOKUP_TIERS_EXACT_ONLY
        if kind is None or (kind == common_pb2.CACHE_HIT_KIND_EXACT) != exact_tier:
            return cache_pb2.LookupResponse(decision=common_pb2.CacheDecision(kind=common_pb2.CACHE_HIT_KIND_MISS))
        return cache_pb2.LookupResponse(
            decision=common_pb2.CacheDecision(kind=kind, key="request-key", entry_key="entry-key", similarity=0.95),
            answer=cache_pb2.CachedAnswer(answer=CACHED, model="gpt-4o", tier=LARGE, baseline_cost_usd=0.01),
        )

    async def invalidate(self, request: cache_pb2.InvalidateRequest, timeout_s: float) -> cache_pb2.InvalidateResponse:
        self.invalidated.append(request)
        if self.invalidate_error is not None:
            raise self.invalidate_error
        return cache_pb2.InvalidateResponse(removed=2)  # the entry in both tiers


@dataclass
class FakeJudge:
    """The large tier as judge: answers `text`, or raises `errors` in turn first, or waits for `gate`."""

    text: str = "yes"
    errors: list[Exception] = field(default_factory=list)
    gate: asyncio.Event | None = None
    calls: list[inference_pb2.GenerateRequest] = field(default_factory=list)

    async def generate(
        self, request: inference_pb2.GenerateRequest, timeout_s: float
    ) -> inference_pb2.GenerateResponse:
        self.calls.append(request)
        if self.gate is not None:
            await self.gate.wait()
        if self.errors:
            raise self.errors.pop(0)
        return inference_pb2.GenerateResponse(text=self.text, cost=common_pb2.CostReport(cost_usd=0.0002))

    async def generate_stream(
        self, request: inference_pb2.GenerateRequest, timeout_s: float
    ) -> AsyncIterator[str | inference_pb2.GenerateResponse]:
        raise AssertionError("the judge is asked unary")
        yield ""  # an async generator, like the real one


@dataclass
class Rig:
    pipeline: Pipeline
    checker: SpotChecker
    stages: HitStages
    judge: FakeJudge
    generator: FakeGenerator
    registry: CollectorRegistry

    def checked(self, outcome: str) -> float | None:
        return self.registry.get_sample_value("costmesh_cache_semantic_checked_total", {"outcome": outcome})

    def value(self, name: str) -> float | None:
        return self.registry.get_sample_value(name)


def rig(
    hit: str = "semantic",
    judge: FakeJudge | None = None,
    sample: float = 1.0,
    draws: Iterator[float] | None = None,
    timeout_s: float = 5.0,
) -> Rig:
    registry = CollectorRegistry()
    metrics = OrchestratorMetrics(registry)
    stages, judge = HitStages(hit=hit), judge or FakeJudge()
    draw = None if draws is None else draws.__next__
    checker = SpotChecker(judge, stages, metrics, SpotCheckConfig(sample=sample, timeout_s=timeout_s), draw)
    generator = FakeGenerator({LARGE: priced("Fresh answer.", LARGE)})
    pipeline = Pipeline(stages, generator, Budgets(router_s=1.0), LARGE, metrics, FakeEmbedder(), spot_checker=checker)
    return Rig(pipeline, checker, stages, judge, generator, registry)


def ask(text: str = "What's the capital city of France?", tenant: str = "acme") -> orchestrator_pb2.CompletionRequest:
    return orchestrator_pb2.CompletionRequest(
        tenant=tenant, messages=[common_pb2.Message(role=USER, content=text)], tier=LARGE
    )


# ---- outcomes ------------------------------------------------------------------------------------------


async def test_a_disagreeing_judge_evicts_the_entry_the_hit_served() -> None:
    r = rig(judge=FakeJudge("No."))
    reply = await r.pipeline.complete(ask(), 10.0)
    assert reply.cache.kind == common_pb2.CACHE_HIT_KIND_SEMANTIC and reply.answer == CACHED
    await r.checker.drain(5.0)
    [call] = r.judge.calls
    assert call.tier == LARGE and call.lane == common_pb2.LANE_BATCH and call.tenant == "acme"
    assert call.sampling.max_tokens == spotcheck.JUDGE_MAX_TOKENS and call.sampling.temperature == 0.0
    prompt = call.messages[-1].content
    assert "What's the capital city of France?" in prompt and CACHED in prompt
    # The entry that answered, not the request's own exact key.
    assert r.stages.invalidated == [cache_pb2.InvalidateRequest(tenant="acme", key="entry-key")]
    assert r.checked("disagree") == 1 and r.checked("agree") == 0
    assert r.value("costmesh_cache_semantic_evicted_total") == 1
    assert r.value("costmesh_cache_spotcheck_cost_usd_total") == pytest.approx(0.0002)


async def test_an_agreeing_judge_evicts_nothing() -> None:
    r = rig(judge=FakeJudge("Yes, it does"))
    await r.pipeline.complete(ask(), 10.0)
    await r.checker.drain(5.0)
    assert len(r.judge.calls) == 1 and r.stages.invalidated == []
    assert r.checked("agree") == 1 and r.checked("disagree") == 0
    assert r.value("costmesh_cache_semantic_evicted_total") == 0


async def test_an_unparseable_verdict_is_unclear_and_kept_out_of_the_rate() -> None:
    r = rig(judge=FakeJudge("Possibly"))
    await r.pipeline.complete(ask(), 10.0)
    await r.checker.drain(5.0)
    assert r.checked("unclear") == 1 and r.checked("agree") == 0 and r.checked("disagree") == 0
    assert r.stages.invalidated == []


async def test_a_failing_judge_counts_error_and_never_fails_the_request() -> None:
    r = rig(judge=FakeJudge(errors=[BackendUnavailable("inference: down")]))
    reply = await r.pipeline.complete(ask(), 10.0)
    assert reply.answer == CACHED
    await r.checker.drain(5.0)
    assert r.checked("error") == 1 and r.checked("disagree") == 0 and r.stages.invalidated == []
    assert r.value("costmesh_cache_spotcheck_cost_usd_total") == 0


async def test_a_judge_past_the_timeout_counts_error() -> None:
    r = rig(judge=FakeJudge(gate=asyncio.Event()), timeout_s=0.05)
    await r.pipeline.complete(ask(), 10.0)
    await r.checker.drain(5.0)
    assert r.checked("error") == 1


async def test_a_batch_lane_refusal_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spotcheck, "RETRY_S", 0.001)
    r = rig(judge=FakeJudge("no", errors=[RateLimited("batch lane is over its large-tier rate limit")] * 2))
    await r.pipeline.complete(ask(), 10.0)
    await r.checker.drain(5.0)
    assert len(r.judge.calls) == 3 and r.checked("disagree") == 1 and r.checked("error") == 0


async def test_a_failed_eviction_is_counted_and_the_verdict_kept() -> None:
    r = rig(judge=FakeJudge("no"))
    r.stages.invalidate_error = ConnectionError("cache down")
    await r.pipeline.complete(ask(), 10.0)
    await r.checker.drain(5.0)
    assert r.checked("disagree") == 1 and r.value("costmesh_cache_semantic_evicted_total") == 0
    assert (
        r.registry.get_sample_value("costmesh_stage_degraded_total", {"stage": "cache_evict", "outcome": "error"}) == 1
    )


# ---- what is checked -----------------------------------------------------------------------------------


async def test_sample_zero_never_asks_the_judge() -> None:
    r = rig(sample=0.0)
    for _ in range(20):
        await r.pipeline.complete(ask(), 10.0)
    await r.checker.drain(5.0)
    assert r.judge.calls == [] and sum(r.checked(o) or 0 for o in ("agree", "disagree", "unclear", "error")) == 0


async def test_the_sample_is_a_share_of_semantic_hits_drawn_per_hit() -> None:
    r = rig(sample=0.05, draws=iter([0.01, 0.5, 0.049, 0.05]))  # checked below the share only
    for _ in range(4):
        await r.pipeline.complete(ask(), 10.0)
    await r.checker.drain(5.0)
    assert len(r.judge.calls) == 2


@pytest.mark.parametrize("hit", ["exact", "miss"])
async def test_exact_hits_and_misses_are_never_checked(hit: str) -> None:
    r = rig(hit=hit)
    reply = await r.pipeline.complete(ask(), 10.0)
    await r.checker.drain(5.0)
    assert reply.cache.kind == (KINDS.get(hit) or common_pb2.CACHE_HIT_KIND_MISS)
    assert r.judge.calls == []
    assert len(r.generator.calls) == (hit == "miss")


async def test_a_streamed_semantic_hit_is_checked_too() -> None:
    r = rig()
    chunks = [c async for c in r.pipeline.stream(ask(), 10.0)]
    await r.checker.drain(5.0)
    assert chunks[-1].final.answer == CACHED and len(r.judge.calls) == 1


async def test_warm_up_traffic_is_never_checked() -> None:
    r = rig()
    await r.pipeline.complete(ask(tenant=WARM_UP_TENANT), 10.0)
    await r.checker.drain(5.0)
    assert r.judge.calls == []


# ---- off the hot path ----------------------------------------------------------------------------------


async def test_the_response_is_returned_before_the_judge_answers() -> None:
    gate = asyncio.Event()
    r = rig(judge=FakeJudge("no", gate=gate))
    reply = await r.pipeline.complete(ask(), 10.0)  # returns while the judge is blocked
    assert reply.answer == CACHED
    await asyncio.sleep(0)  # let the background check start
    assert len(r.judge.calls) == 1 and r.checked("disagree") == 0 and r.stages.invalidated == []
    assert r.value("costmesh_cache_spotcheck_in_flight") == 1
    gate.set()
    await r.checker.drain(5.0)
    assert r.checked("disagree") == 1 and len(r.stages.invalidated) == 1
    assert r.value("costmesh_cache_spotcheck_in_flight") == 0


async def test_shutdown_cancels_unfinished_checks_uncounted_and_takes_no_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(spotcheck, "DRAIN_S", 0.01)
    r = rig(judge=FakeJudge(gate=asyncio.Event()))
    await r.pipeline.complete(ask(), 10.0)
    await asyncio.sleep(0)
    await r.checker.close()
    assert sum(r.checked(o) or 0 for o in ("agree", "disagree", "unclear", "error")) == 0
    assert r.value("costmesh_cache_spotcheck_in_flight") == 0
    await r.pipeline.complete(ask(), 10.0)  # still served after close, just not checked
    await asyncio.sleep(0)
    assert len(r.judge.calls) == 1


async def test_checks_past_the_in_flight_cap_are_skipped_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spotcheck, "MAX_IN_FLIGHT", 2)
    gate = asyncio.Event()
    r = rig(judge=FakeJudge(gate=gate))
    for _ in range(3):
        await r.pipeline.complete(ask(), 10.0)
    assert r.value("costmesh_cache_spotcheck_skipped_total") == 1
    gate.set()
    await r.checker.drain(5.0)
    assert r.checked("agree") == 2


# ---- the judge's prompt and verdict --------------------------------------------------------------------


def test_the_judge_sees_the_last_user_turn_the_earlier_turns_briefly_and_the_answer() -> None:
    turns = [common_pb2.Message(role=SYSTEM, content="Reply with the letter only.")]
    for i in range(6):
        turns.append(common_pb2.Message(role=USER, content=f"question {i}"))
        turns.append(common_pb2.Message(role=ASSISTANT, content=f"answer {i} " + "x" * 1000))
    turns.append(common_pb2.Message(role=USER, content="And the capital of Spain?"))
    messages = judge_messages(turns, "Madrid.")
    assert messages is not None
    system, user = messages
    assert system.role == SYSTEM and "yes or no" in system.content
    prompt = user.content
    assert "system: Reply with the letter only." in prompt  # a system prompt can change what is right
    assert "question 4" in prompt and "question 5" in prompt and "question 3" not in prompt  # the last 4 turns
    assert "Question: And the capital of Spain?" in prompt and "Cached answer: Madrid." in prompt
    assert len(prompt) < 2 * spotcheck.TEXT_CHARS  # earlier turns clipped
    assert judge_messages([common_pb2.Message(role=SYSTEM, content="hi")], "x") is None


@pytest.mark.parametrize(
    ("text", "outcome"),
    [
        ("yes", "agree"),
        ("Yes.", "agree"),
        ("  YES, it", "agree"),
        ("No", "disagree"),
        ("no.", "disagree"),
        ("\nNo,", "disagree"),
        ("Not really", "unclear"),
        ("Yesterday", "unclear"),
        ("", "unclear"),
        ("The answer", "unclear"),
    ],
)
def test_the_verdict_is_the_first_word(text: str, outcome: str) -> None:
    assert verdict(text) == outcome


# ---- the setting ---------------------------------------------------------------------------------------


def test_the_sample_is_read_under_the_name_the_issue_gives_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert OrchestratorSettings().cache_verify_sample == 0.05
    monkeypatch.setenv("COSTMESH_CACHE_VERIFY_SAMPLE", "0.2")
    assert OrchestratorSettings().cache_verify_sample == 0.2
    CacheSettings()  # the cache service, whose prefix the name shares, must not reject it as a typo
    monkeypatch.setenv("COSTMESH_ORCHESTRATOR_CACHE_VERIFY_SAMPLE", "0.3")
    assert OrchestratorSettings().cache_verify_sample == 0.2  # the issue's name wins when both are set
    monkeypatch.delenv("COSTMESH_CACHE_VERIFY_SAMPLE")
    assert OrchestratorSettings().cache_verify_sample == 0.3  # the prefixed name alone
    assert OrchestratorSettings(cache_verify_sample=1.0).cache_verify_sample == 1.0  # by name in code
    monkeypatch.delenv("COSTMESH_ORCHESTRATOR_CACHE_VERIFY_SAMPLE")
    monkeypatch.setenv("COSTMESH_CACHE_VERIFY_SAMPLE", "1.5")
    with pytest.raises(ValueError, match="COSTMESH_CACHE_VERIFY_SAMPLE"):
        OrchestratorSettings()
