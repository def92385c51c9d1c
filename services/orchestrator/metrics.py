"""Orchestrator metrics: outcomes per request, degraded stages, router fallbacks, savings."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class OrchestratorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "costmesh_requests", "Completed requests by tier and cache result", ["tier", "cache"], registry=registry
        )
        self.degraded = Counter(
            "costmesh_stage_degraded", "Optional stages that failed open", ["stage", "outcome"], registry=registry
        )
        self.router_fallbacks = Counter(
            "costmesh_router_fallbacks", "Requests routed by default: router over budget or down", registry=registry
        )
        self.savings = Counter(
            "costmesh_savings_usd",
            "Dollars saved against the baseline, by intervention",
            ["intervention"],
            registry=registry,
        )
        self.stage_latency = Histogram(
            "costmesh_stage_seconds",
            "Time spent per stage",
            ["stage"],
            registry=registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
