"""The orchestrator's pipeline against fake stages: the plan, streaming, the cascade, Assess, the ledger."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from costmesh.v1 import cache_pb2, common_pb2, orchestrator_pb2, router_pb2, summarizer_pb2
from services.orchestrator.escalation import EscalationPolicy
from services.orchestrator.metrics import OrchestratorMetrics
from services.orchestrator.pipeline import Pipeline
from services.orchestrator.plan import QualityTarget
from services.orchestrator.prepare import Budgets
from tests.unit.pipeline_fakes import FakeGenerator, FakeStages, priced

SMALL, LARGE = common_pb2.TIER_SMALL, common_pb2.TIER_LARGE
LARGE_ANSWER = "Paris is the capital of France, on the Seine."


class FakeEmbedder:
    name = "fake-embedder"
    dimensions = 2

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([[0.6, 0.8]] * len(texts))


def route(tier: common_pb2.Tier.ValueType = SMALL, **fields: object) -> router_pb2.RouteResponse:
    return router_pb2.RouteResponse(
        decision=common_pb2.RouteDecision(tier=tier, classifier="learned", reason="test"),
        **fields,  # type: ignore[arg-type]
    )


def ask(text: str = "What is the capital of France?", **fields: object) -> orchestrator_pb2.CompletionRequest:
    return orchestrator_pb2.CompletionRequest(
        tenant="acme",
        messages=[common_pb2.Message(role=common_pb2.ROLE_USER, content=text)],
        **fields,  # type: ignore[arg-type]
    )


def build(stages: FakeStages, generator: FakeGenerator, escalation: bool = True) -> tuple[Pipeline, CollectorRegistry]:
    registry = CollectorRegistry()
    pipeline = Pipeline(
        stages,
        generator,
        Budgets(router_s=1.0, assess_s=1.0),
        LARGE,
        OrchestratorMetrics(registry),
        FakeEmbedder(),
        EscalationPolicy() if escalation else None,
        QualityTarget(1.0, {"acme": 0.5}),
    )
    return pipeline, registry


def generator(cheap: str = "Paris.", **cheap_fields: object) -> FakeGenerator:
    return FakeGenerator({SMALL: priced(cheap, SMALL, **cheap_fields), LARGE: priced(LARGE_ANSWER, LARGE)})  # type: ignore[arg-type]


def escalations(registry: CollectorRegistry, reason: str) -> float | None:
    return registry.get_sample_value("costmesh_escalations_total", {"reason": reason})


async def chunks_of(pipeline: Pipeline, request: orchestrator_pb2.CompletionRequest) -> list[object]:
    return [c async for c in pipeline.stream(request, 10.0)]


# ---- the plan and streaming ----------------------------------------------------------------------------


async def test_multi_step_request_streams_the_large_tiers_deltas() -> None:
    gen = generator()
    pipeline, registry = build(FakeStages(route_response=route(SMALL, needs_multi_step=True)), gen)
    chunks = [c async for c in pipeline.stream(ask("Plan it step by step."), 10.0)]
    deltas = [c.delta for c in chunks if c.WhichOneof("chunk") == "delta"]
    assert len(deltas) > 1 and chunks[-1].WhichOneof("chunk") == "final"
    assert "".join(deltas) == LARGE_ANSWER
    assert [(kind, tier) for kind, tier, _ in gen.calls] == [("stream", LARGE)]  # streamed, not replayed
    final = chunks[-1].final
    assert final.route.escalated and final.route.escalation_reason.startswith("multi_step")
    assert escalations(registry, "multi_step") == 1


@pytest.mark.parametrize(
    ("request_fields", "routed"),
    [({"tier": LARGE}, route(SMALL)), ({}, route(LARGE)), ({"tier": SMALL}, route(SMALL))],
    ids=["tier-set-by-request", "router-chose-large", "small-set-by-request"],
)
async def test_unjudged_plans_stream_from_inference(
    request_fields: dict[str, object], routed: router_pb2.RouteResponse
) -> None:
    gen = generator("Paris is the capital.")
    pipeline, _ = build(FakeStages(route_response=routed), gen)
    chunks = await chunks_of(pipeline, ask(**request_fields))
    assert [kind for kind, _, _ in gen.calls] == ["stream"]
    assert len(chunks) > 2  # more than one delta, then the final chunk


async def test_a_judged_cheap_answer_is_not_streamed_before_judging() -> None:
    gen = generator("I'm not sure, maybe Lyon?")
    pipeline, _ = build(FakeStages(), gen)
    chunks = [c async for c in pipeline.stream(ask(), 10.0)]
    text = "".join(c.delta for c in chunks if c.WhichOneof("chunk") == "delta")
    assert text == LARGE_ANSWER  # nothing of the rejected cheap answer reached the client
    assert [(kind, tier) for kind, tier, _ in gen.calls] == [("unary", SMALL), ("unary", LARGE)]
    assert chunks[-1].final.route.escalation_reason.startswith("hedging")


async def test_cheap_request_asks_for_logprobs_to_judge_its_answer() -> None:
    gen = generator()
    pipeline, _ = build(FakeStages(), gen)
    reply = await pipeline.complete(ask(), 10.0)
    assert gen.calls[0][2].sampling.logprobs and not reply.route.escalated
    assert reply.answer == "Paris."


# ---- truncation ----------------------------------------------------------------------------------------


async def test_truncation_at_the_requests_own_max_tokens_is_kept_and_stored() -> None:
    gen = generator("Paris is the", finish_reason="length")
    stages = FakeStages()
    pipeline, _ = build(stages, gen)
    reply = await pipeline.complete(ask(sampling=common_pb2.SamplingParams(max_tokens=3)), 10.0)
    assert not reply.route.escalated and reply.answer == "Paris is the" and reply.finish_reason == "length"
    assert [tier for _, tier, _ in gen.calls] == [SMALL]
    assert len(stages.stored) == 1 and stages.stored[0].answer.finish_reason == "length"
    assert stages.stored[0].key.sampling.max_tokens == 3  # the limit is part of the key


async def test_truncation_without_a_request_limit_escalates() -> None:
    gen = generator("Paris is the", finish_reason="length")
    pipeline, registry = build(FakeStages(), gen)
    reply = await pipeline.complete(ask(), 10.0)
    assert reply.route.escalated and reply.route.escalation_reason.startswith("truncated")
    assert escalations(registry, "truncated") == 1


async def test_truncation_below_the_requests_limit_escalates() -> None:
    # The cheap tier stopped at its own cap (2 tokens) before the request's 50: the large tier may go further.
    gen = generator("Paris is", finish_reason="length")
    pipeline, _ = build(FakeStages(), gen)
    reply = await pipeline.complete(ask(sampling=common_pb2.SamplingParams(max_tokens=50)), 10.0)
    assert reply.route.escalation_reason.startswith("truncated")


# ---- Assess ----------------------------------------------------------------------------------------------


async def test_assess_keep_false_escalates_with_reason_estimator() -> None:
    stages = FakeStages(
        route_response=route(SMALL, assess_after=True, p_cheap_good=0.7),
        assess_response=router_pb2.AssessResponse(keep=False, p_cheap_good=0.3, threshold=0.6, reason="p 0.30 < 0.60"),
    )
    gen = generator(logprobs=(-0.05, -0.5, -0.01))
    pipeline, registry = build(stages, gen)
    reply = await pipeline.complete(ask(), 10.0)
    assert reply.route.escalated and reply.route.escalation_reason == "estimator: p 0.30 < 0.60"
    assert reply.answer == LARGE_ANSWER
    assert escalations(registry, "estimator") == 1
    sent = stages.assessed[0]
    assert sent.tenant == "acme" and sent.messages[-1].content == "What is the capital of France?"
    assert list(sent.embedding.values) == pytest.approx([0.6, 0.8])
    assert sent.answer.tokens == 3 and sent.answer.min_logprob == pytest.approx(-0.5)
    assert sent.answer.chars == len("Paris.")
    assert sent.max_quality_loss_pts == pytest.approx(0.5)  # the tenant's own target
    assert stages.routes[0].max_quality_loss_pts == pytest.approx(0.5)


async def test_an_answer_without_alternatives_is_judged_by_the_thresholds_not_assessed() -> None:
    # Ray Serve returns no top-k: the estimator would read that as certainty, so it is not asked.
    stages = FakeStages(route_response=route(SMALL, assess_after=True))  # Assess would raise if called
    gen = generator(logprobs=(-3.0, -3.0))
    for token in gen.answers[SMALL].logprobs:
        del token.top[:]
    pipeline, registry = build(stages, gen)
    reply = await pipeline.complete(ask(), 10.0)
    assert not stages.assessed
    assert reply.route.escalated and escalations(registry, "low_confidence") == 1


async def test_assess_keep_true_overrides_the_logprob_thresholds() -> None:
    stages = FakeStages(
        route_response=route(SMALL, assess_after=True), assess_response=router_pb2.AssessResponse(keep=True)
    )
    pipeline, _ = build(stages, generator(logprobs=(-3.0, -2.5)))  # the thresholds alone would escalate
    reply = await pipeline.complete(ask(), 10.0)
    assert not reply.route.escalated and reply.answer == "Paris."


async def test_hard_rules_run_before_assess() -> None:
    stages = FakeStages(
        route_response=route(SMALL, assess_after=True), assess_response=router_pb2.AssessResponse(keep=True)
    )
    pipeline, _ = build(stages, generator("I don't know."))
    reply = await pipeline.complete(ask(), 10.0)
    assert reply.route.escalation_reason.startswith("hedging") and stages.assessed == []


@pytest.mark.parametrize(("logprobs", "escalated"), [((-3.0, -2.5), True), ((-0.1, -0.2), False)])
async def test_assess_failing_falls_back_to_the_logprob_thresholds(
    logprobs: tuple[float, ...], escalated: bool
) -> None:
    stages = FakeStages(route_response=route(SMALL, assess_after=True), assess_response=ConnectionError("down"))
    pipeline, registry = build(stages, generator(logprobs=logprobs))
    reply = await pipeline.complete(ask(), 10.0)
    assert len(stages.assessed) == 1
    assert reply.route.escalated is escalated
    if escalated:
        assert reply.route.escalation_reason.startswith("low_confidence")
    assert {t.stage: t.outcome for t in reply.stages}["assess"] == "error"
    assert registry.get_sample_value("costmesh_stage_degraded_total", {"stage": "assess", "outcome": "error"}) == 1


async def test_without_assess_after_the_estimator_is_not_asked() -> None:
    stages = FakeStages(route_response=route(SMALL))
    pipeline, _ = build(stages, generator(logprobs=(-3.0, -2.5)))
    reply = await pipeline.complete(ask(), 10.0)
    assert reply.route.escalation_reason.startswith("low_confidence") and stages.assessed == []


# ---- the ledger ------------------------------------------------------------------------------------------


def _adds_up(cost: common_pb2.CostReport) -> None:
    assert cost.savings_usd == pytest.approx(cost.baseline_cost_usd - cost.cost_usd)
    assert sum(cost.savings_by_intervention.values()) == pytest.approx(cost.baseline_cost_usd - cost.cost_usd)


async def test_summary_cost_is_charged_and_pruning_savings_are_net() -> None:
    summary_cost = 0.0004
    stages = FakeStages(
        prune_response=summarizer_pb2.PruneResponse(
            messages=[common_pb2.Message(role=common_pb2.ROLE_USER, content="What is the capital of France?")],
            report=common_pb2.PruningReport(applied=True, tokens_before=1100, tokens_after=100),
            cost=common_pb2.CostReport(cost_usd=summary_cost, price_model="gpt-4o-mini"),
        )
    )
    answer = priced("Paris.", SMALL, removed={"pruning": 1000})
    gen = FakeGenerator({SMALL: answer, LARGE: priced(LARGE_ANSWER, LARGE)})
    pipeline, _ = build(stages, gen, escalation=False)
    request = ask(lane=common_pb2.LANE_BATCH)
    reply = await pipeline.complete(request, 10.0)
    assert stages.pruned[0].lane == common_pb2.LANE_BATCH  # summaries go on the request's lane
    assert gen.calls[0][2].removed_tokens["pruning"] == 1000
    assert reply.cost.cost_usd == pytest.approx(answer.cost.cost_usd + summary_cost)
    gross = answer.cost.savings_by_intervention["pruning"]
    assert reply.cost.savings_by_intervention["pruning"] == pytest.approx(gross - summary_cost)
    _adds_up(reply.cost)
    assert stages.stored[0].answer.cost_usd == pytest.approx(reply.cost.cost_usd)


async def test_escalation_pays_for_both_calls_and_the_parts_add_up() -> None:
    gen = generator("I'm not sure.")
    pipeline, _ = build(FakeStages(), gen)
    reply = await pipeline.complete(ask(), 10.0)
    cheap = gen.answers[SMALL].cost.cost_usd
    assert reply.cost.cost_usd == pytest.approx(gen.answers[LARGE].cost.cost_usd + cheap)
    assert reply.cost.savings_by_intervention["escalation"] == pytest.approx(-cheap)
    _adds_up(reply.cost)


# ---- the embedding when the cache is bypassed ----------------------------------------------------------


async def test_no_cache_still_embeds_for_the_router_but_skips_the_semantic_tier() -> None:
    stages = FakeStages()
    pipeline, _ = build(stages, generator())
    await pipeline.complete(ask(cache=common_pb2.CacheControl(no_cache=True, no_store=True)), 10.0)
    assert list(stages.routes[0].embedding.values) == pytest.approx([0.6, 0.8])  # the estimator needs it
    assert [lk.tiers for lk in stages.lookups] == [cache_pb2.LOOKUP_TIERS_EXACT_ONLY]
    stages = FakeStages()
    pipeline, _ = build(stages, generator())
    await pipeline.complete(ask(cache=common_pb2.CacheControl(no_cache=True), tier=LARGE), 10.0)
    assert list(stages.stored[0].embedding.values) == pytest.approx([0.6, 0.8])  # the semantic store reads it
    stages = FakeStages()
    pipeline, _ = build(stages, generator())
    await pipeline.complete(ask(cache=common_pb2.CacheControl(no_cache=True, no_store=True), tier=LARGE), 10.0)
    assert not stages.stored or not stages.stored[0].embedding.values  # nobody reads it
