"""The orchestrator's plan and cost merge: pure functions."""

from __future__ import annotations

import pytest

from costmesh.v1 import common_pb2, router_pb2
from services.orchestrator import ledger
from services.orchestrator.escalation import EscalationPolicy, cut_by_request, judge
from services.orchestrator.plan import QualityTarget, make_plan

SMALL, LARGE = common_pb2.TIER_SMALL, common_pb2.TIER_LARGE


def route(tier: common_pb2.Tier.ValueType, classifier: str = "rules", **fields: object) -> router_pb2.RouteResponse:
    return router_pb2.RouteResponse(
        decision=common_pb2.RouteDecision(tier=tier, classifier=classifier),
        **fields,  # type: ignore[arg-type]
    )


def test_only_a_routed_cheap_answer_is_judged() -> None:
    assert make_plan(route(SMALL), True).judged
    assert not make_plan(route(SMALL), True).assessed
    assert make_plan(route(SMALL, assess_after=True), True).assessed
    assert not make_plan(route(SMALL), False).judged  # the cascade is off
    assert not make_plan(route(SMALL, "request"), True).judged  # never second-guessed
    assert not make_plan(route(LARGE, "default"), True).judged


def test_multi_step_is_planned_on_the_large_tier_unjudged() -> None:
    plan = make_plan(route(SMALL, needs_multi_step=True), True)
    assert plan.tier == LARGE and not plan.judged
    assert plan.skipped_cheap is not None and plan.skipped_cheap[0] == "multi_step"
    # A request that set the small tier keeps it, multi-step or not.
    assert make_plan(route(SMALL, "request", needs_multi_step=True), True).tier == SMALL


def test_quality_target_per_tenant() -> None:
    target = QualityTarget(1.0, {"strict": 0.2})
    assert target.for_tenant("strict") == 0.2 and target.for_tenant("other") == 1.0


def test_cut_by_request() -> None:
    assert cut_by_request("length", 64, 64)
    assert not cut_by_request("length", 0, 64)  # the service default: the large tier may go further
    assert not cut_by_request("length", 64, 20)  # cut below the request's limit: a tier cap
    assert not cut_by_request("stop", 64, 64)
    policy = EscalationPolicy()
    assert judge("Paris is", "length", [-0.1], "", policy)[0] == "truncated"
    assert judge("Paris is", "length", [-0.1], "", policy, truncation_ok=True) == ("", "")


def _report(cost: float, baseline: float, parts: dict[str, float]) -> common_pb2.CostReport:
    return common_pb2.CostReport(
        cost_usd=cost, baseline_cost_usd=baseline, savings_usd=baseline - cost, savings_by_intervention=parts
    )


def test_ledger_parts_add_up() -> None:
    cheap = _report(0.001, 0.02, {"routing": 0.019})
    large = _report(0.015, 0.02, {"pruning": 0.005})
    merged = ledger.with_summaries(ledger.escalated(cheap, large), 0.0008)
    assert merged.cost_usd == pytest.approx(0.015 + 0.001 + 0.0008)
    assert dict(merged.savings_by_intervention) == pytest.approx({"pruning": 0.005 - 0.0008, "escalation": -0.001})
    assert sum(merged.savings_by_intervention.values()) == pytest.approx(merged.baseline_cost_usd - merged.cost_usd)
    assert merged.savings_usd == pytest.approx(merged.baseline_cost_usd - merged.cost_usd)
    # No summary call (nothing pruned, or the summary was cached): nothing changes.
    assert ledger.with_summaries(large, 0.0) == large
    assert large.cost_usd == 0.015  # inputs are not modified
