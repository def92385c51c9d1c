"""The plan: decided once, after routing, and followed by both Complete and CompleteStream.

Which tier answers, and whether the cheap answer is judged before anyone sees it. A judged answer is
generated whole (it may be thrown away); every other plan streams the model's own deltas. Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from costmesh.v1 import common_pb2, router_pb2


@dataclass(frozen=True)
class QualityTarget:
    """Accuracy points the cascade may lose against all-large: the operator's default and per-tenant overrides."""

    default_pts: float = 1.0
    per_tenant: Mapping[str, float] = field(default_factory=dict)

    def for_tenant(self, tenant: str) -> float:
        return self.per_tenant.get(tenant, self.default_pts)


@dataclass(frozen=True)
class Plan:
    tier: common_pb2.Tier.ValueType
    judged: bool  # the cheap answer is judged (hard rules, then Assess or the logprob thresholds)
    assessed: bool  # ... and Router.Assess has the last word (the route said assess_after)
    why: str
    # (reason, detail) when the plan skipped the cheap tier the router chose: an escalation before the call.
    skipped_cheap: tuple[str, str] | None = None
    task: router_pb2.TaskMatch | None = None  # the task whose student is the cheap answer (distill.py)
    shadow: router_pb2.TaskMatch | None = None  # the task whose candidate answers alongside the teacher


def make_plan(route: router_pb2.RouteResponse, escalation: bool) -> Plan:
    """`escalation`: whether the cascade is on (COSTMESH_ORCHESTRATOR_ESCALATION)."""
    decision = route.decision
    if decision.classifier == "request":
        return Plan(decision.tier, False, False, "tier set by the request: never second-guessed")
    if decision.tier != common_pb2.TIER_SMALL:
        return Plan(decision.tier, False, False, f"{decision.classifier} route to the large tier")
    if not escalation:
        return Plan(decision.tier, False, False, "the cascade is off: the cheap answer is kept as it is")
    if route.needs_multi_step:
        detail = "the router saw a multi-step task: the cheap tier was skipped"
        return Plan(common_pb2.TIER_LARGE, False, False, "multi-step task", ("multi_step", detail))
    judge = "Assess" if route.assess_after else "the logprob thresholds"
    return Plan(decision.tier, True, route.assess_after, f"cheap tier; hard rules, then {judge}")
