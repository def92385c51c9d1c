"""A rate-limited escalation is retried on its own: the cheap call is neither rerun nor dropped from the cost."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from costmesh.v1 import common_pb2, inference_pb2, orchestrator_pb2
from services.common.errors import RateLimited
from services.orchestrator import cascade
from services.orchestrator.escalation import EscalationPolicy
from services.orchestrator.metrics import OrchestratorMetrics
from services.orchestrator.pipeline import Pipeline
from services.orchestrator.plan import QualityTarget
from services.orchestrator.prepare import Budgets
from tests.unit.pipeline_fakes import FakeGenerator, FakeStages, priced

SMALL, LARGE = common_pb2.TIER_SMALL, common_pb2.TIER_LARGE


class ThrottledLarge(FakeGenerator):
    """The large tier refuses `throttled` calls with RESOURCE_EXHAUSTED (no model call, nothing charged)."""

    throttled = 0

    async def generate(
        self, request: inference_pb2.GenerateRequest, timeout_s: float
    ) -> inference_pb2.GenerateResponse:
        if request.tier == LARGE and self.throttled:
            self.throttled -= 1
            self.calls.append(("throttled", request.tier, request))
            raise RateLimited("inference: batch lane is over its large-tier rate limit", retry_after_s=0.001)
        return await super().generate(request, timeout_s)


def pipeline(generator: FakeGenerator) -> Pipeline:
    return Pipeline(
        FakeStages(),
        generator,
        Budgets(router_s=1.0, assess_s=1.0),
        LARGE,
        OrchestratorMetrics(CollectorRegistry()),
        None,
        EscalationPolicy(),
        QualityTarget(1.0),
    )


def truncated_cheap(throttled: int) -> ThrottledLarge:
    """A cheap answer cut off without a request limit: the cascade escalates it."""
    gen = ThrottledLarge({SMALL: priced("Paris is the", SMALL, finish_reason="length"), LARGE: priced("Paris.", LARGE)})
    gen.throttled = throttled
    return gen


def ask() -> orchestrator_pb2.CompletionRequest:
    return orchestrator_pb2.CompletionRequest(
        tenant="acme", messages=[common_pb2.Message(role=common_pb2.ROLE_USER, content="What is the capital?")]
    )


def tiers_called(gen: FakeGenerator) -> list[tuple[str, int]]:
    return [(kind, tier) for kind, tier, _ in gen.calls]


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cascade, "RETRY_BASE_S", 0.001)


async def test_a_rate_limited_escalation_is_retried_without_rerunning_the_cheap_call() -> None:
    gen = truncated_cheap(throttled=2)
    reply = await pipeline(gen).complete(ask(), 10.0)
    assert tiers_called(gen) == [("unary", SMALL), ("throttled", LARGE), ("throttled", LARGE), ("unary", LARGE)]
    assert reply.route.escalated and reply.answer == "Paris."
    # Both model calls that answered are in the cost: the cheap one is not lost.
    assert reply.cost.cost_usd == pytest.approx(gen.answers[SMALL].cost.cost_usd + gen.answers[LARGE].cost.cost_usd)


async def test_an_escalation_that_stays_throttled_keeps_the_cheap_answer() -> None:
    gen = truncated_cheap(throttled=100)
    reply = await pipeline(gen).complete(ask(), 10.0)
    assert tiers_called(gen).count(("unary", SMALL)) == 1  # never rerun
    assert tiers_called(gen).count(("throttled", LARGE)) == cascade.ESCALATION_ATTEMPTS
    assert reply.answer == "Paris is the" and not reply.route.escalated
    assert "rate-limited" in reply.route.escalation_reason
    assert reply.cost.cost_usd == pytest.approx(gen.answers[SMALL].cost.cost_usd)
    assert any(s.stage == "escalation" and s.outcome == "throttled" for s in reply.stages)
