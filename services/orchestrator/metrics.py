"""Orchestrator metrics: outcomes per request, degraded stages, router fallbacks, savings, cache spot-checks."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from costmesh.v1 import common_pb2

SPOT_CHECK_OUTCOMES = ("agree", "disagree", "unclear", "error")


class OrchestratorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "costmesh_requests", "Completed requests by tier and cache result", ["tier", "cache"], registry=registry
        )
        self.degraded = Counter(
            "costmesh_stage_degraded", "Optional stages that failed open", ["stage", "outcome"], registry=registry
        )
        self.routes = Counter(
            "costmesh_route", "Routing decisions by tier (before escalation)", ["tier"], registry=registry
        )
        self.escalations = Counter(
            "costmesh_escalations",
            "Requests escalated from the cheap to the large tier, by reason",
            ["reason"],
            registry=registry,
        )
        self.escalation_baseline = Gauge(
            "costmesh_escalation_rate_baseline",
            "The escalation rate above which CostmeshEscalationRateAboveBaseline fires (a setting)",
            registry=registry,
        )
        self.router_fallbacks = Counter(
            "costmesh_router_fallbacks", "Requests routed by default: router over budget or down", registry=registry
        )
        self.cost = Counter(
            "costmesh_request_cost_usd", "Dollars billed for requests, by tier", ["tier"], registry=registry
        )
        self.baseline = Counter(
            "costmesh_request_baseline_cost_usd",
            "What the same requests would cost on the large model at full context, uncached",
            ["tier"],
            registry=registry,
        )
        self.savings = Counter(
            "costmesh_savings_usd",
            "Dollars saved against the baseline, by intervention and tier",
            ["intervention", "tier"],
            registry=registry,
        )
        self.overspend = Counter(
            "costmesh_overspend_usd",
            "Dollars an intervention cost beyond the baseline (a negative saving), by intervention and tier",
            ["intervention", "tier"],
            registry=registry,
        )
        self.stage_latency = Histogram(
            "costmesh_stage_seconds",
            "Time spent per stage",
            ["stage"],
            registry=registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        # The budgets themselves (settings), so a dashboard can draw each stage's p99 against its budget.
        self.stage_budget = Gauge(
            "costmesh_stage_budget_seconds",
            "Each optional stage's latency budget (a setting)",
            ["stage"],
            registry=registry,
        )
        # Spot-checks of semantic hits (spotcheck.py). agree / disagree give the false-hit rate; unclear (an
        # unparseable verdict) and error (the judge failed or timed out) are kept apart so that rate stays honest.
        self.semantic_checked = Counter(
            "costmesh_cache_semantic_checked",
            "Semantic cache hits re-checked by the large tier, by verdict",
            ["outcome"],
            registry=registry,
        )
        for outcome in SPOT_CHECK_OUTCOMES:
            self.semantic_checked.labels(outcome)  # exported at 0, so a scrape before any check reads 0
        self.semantic_evicted = Counter(
            "costmesh_cache_semantic_evicted",
            "Cache entries evicted because the large tier said a semantic hit's answer did not answer",
            registry=registry,
        )
        self.spotcheck_cost = Counter(
            "costmesh_cache_spotcheck_cost_usd", "Dollars the spot-checks' judge calls cost", registry=registry
        )
        self.spotcheck_in_flight = Gauge(
            "costmesh_cache_spotcheck_in_flight", "Spot-checks scheduled and not finished", registry=registry
        )
        self.spotcheck_skipped = Counter(
            "costmesh_cache_spotcheck_skipped",
            "Sampled semantic hits left unchecked: too many spot-checks already in flight",
            registry=registry,
        )

    def count_savings(self, tier: str, cost: common_pb2.CostReport) -> None:
        self.cost.labels(tier).inc(cost.cost_usd)
        self.baseline.labels(tier).inc(cost.baseline_cost_usd)
        for intervention, usd in cost.savings_by_intervention.items():
            # Counters only go up: a negative saving is counted as overspend instead.
            (self.savings if usd >= 0 else self.overspend).labels(intervention, tier).inc(abs(usd))
