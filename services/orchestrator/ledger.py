"""The cost merge: what a request paid, as one CostReport whose parts add up to baseline - cost.

Each model call is priced by the inference service (services/inference/pricing.py). Two more calls can
belong to one request: the rejected cheap answer of an escalation, and the summaries pruning asked the
cheap tier for. Both are charged here, each against the intervention that caused it. Pure, no I/O.
"""

from __future__ import annotations

from costmesh.v1 import common_pb2


def _settled(cost: common_pb2.CostReport) -> common_pb2.CostReport:
    cost.savings_usd = cost.baseline_cost_usd - cost.cost_usd
    return cost


def escalated(cheap: common_pb2.CostReport, large: common_pb2.CostReport) -> common_pb2.CostReport:
    """The large answer's cost plus the rejected cheap call, which is the escalation's (negative) saving."""
    merged = common_pb2.CostReport()
    merged.CopyFrom(large)
    merged.cost_usd += cheap.cost_usd
    merged.savings_by_intervention["escalation"] = -cheap.cost_usd
    return _settled(merged)


def with_summaries(cost: common_pb2.CostReport, summary_cost_usd: float) -> common_pb2.CostReport:
    """Pruning's own model calls charged to the request: pruning's saving is net of what its summaries cost."""
    if summary_cost_usd <= 0:
        return cost
    merged = common_pb2.CostReport()
    merged.CopyFrom(cost)
    merged.cost_usd += summary_cost_usd
    merged.savings_by_intervention["pruning"] = cost.savings_by_intervention.get("pruning", 0.0) - summary_cost_usd
    return _settled(merged)
