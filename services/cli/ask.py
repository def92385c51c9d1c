"""`costmesh ask`: one request through the orchestrator, with the generated stubs."""

from __future__ import annotations

import json
from typing import Any

import grpc

from costmesh.v1 import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from services.common.contracts import TIER_CHOICES

TIERS = TIER_CHOICES


def build_request(
    prompt: str, tenant: str, tier: str, max_tokens: int, no_cache: bool, system: str, task: str = ""
) -> orchestrator_pb2.CompletionRequest:
    messages = []
    if system:
        messages.append(common_pb2.Message(role=common_pb2.ROLE_SYSTEM, content=system))
    messages.append(common_pb2.Message(role=common_pb2.ROLE_USER, content=prompt))
    return orchestrator_pb2.CompletionRequest(
        tenant=tenant,
        messages=messages,
        sampling=common_pb2.SamplingParams(max_tokens=max_tokens),
        cache=common_pb2.CacheControl(no_cache=no_cache),
        tier=TIERS[tier],
        task=task,
    )


def summary(response: orchestrator_pb2.CompletionResponse) -> dict[str, Any]:
    """The JSON `costmesh ask --json` prints: the answer and every decision behind it."""
    kind = common_pb2.CacheHitKind.Name(response.cache.kind).removeprefix("CACHE_HIT_KIND_").lower()
    return {
        "request_id": response.request_id,
        "answer": response.answer,
        "model": response.model,
        "finish_reason": response.finish_reason,
        "route": {
            "tier": common_pb2.Tier.Name(response.route.tier).removeprefix("TIER_").lower(),
            "confidence": round(response.route.confidence, 4),
            "reason": response.route.reason,
            "classifier": response.route.classifier,
            "fell_back": response.route.fell_back,
            "escalated": response.route.escalated,
            "escalation_reason": response.route.escalation_reason,
            "task": response.route.task,
            "student": response.route.student,
        },
        "cache": {
            "hit": "miss" if kind in ("miss", "unspecified") else kind,
            "similarity": round(response.cache.similarity, 4),
            "reason": response.cache.reason,
            "degraded": response.cache.degraded,
        },
        "tokens": {
            "prompt": response.usage.prompt_tokens,
            "completion": response.usage.completion_tokens,
            "cached_prompt": response.usage.cached_prompt_tokens,
            "pruned": response.pruning.tokens_before - response.pruning.tokens_after,
            "compressed": response.compression.tokens_before - response.compression.tokens_after,
        },
        "cost_usd": response.cost.cost_usd,
        "baseline_cost_usd": response.cost.baseline_cost_usd,
        "savings_usd": response.cost.savings_usd,
        "savings_by_intervention": dict(response.cost.savings_by_intervention),
        "trace_id": response.trace_id,
        "stages": [{"stage": s.stage, "ms": round(s.duration_ms, 2), "outcome": s.outcome} for s in response.stages],
    }


def auth_metadata(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),) if key else ()


def ask(address: str, request: orchestrator_pb2.CompletionRequest, timeout_s: float, key: str) -> dict[str, Any]:
    with grpc.insecure_channel(address) as channel:
        response = orchestrator_pb2_grpc.OrchestratorStub(channel).Complete(
            request, timeout=timeout_s, metadata=auth_metadata(key)
        )
    return summary(response)


def render(result: dict[str, Any], as_json: bool) -> str:
    if as_json:
        return json.dumps(result, indent=2)
    route, cache = result["route"], result["cache"]
    lines = [
        result["answer"],
        "",
        f"route:  {route['tier']} ({route['classifier']}, confidence {route['confidence']:.2f}) - {route['reason']}",
        f"cache:  {cache['hit']}" + (f" (similarity {cache['similarity']:.3f})" if cache["hit"] != "miss" else ""),
        f"tokens: {result['tokens']['prompt']} prompt + {result['tokens']['completion']} completion",
        f"cost:   ${result['cost_usd']:.8f} (baseline ${result['baseline_cost_usd']:.8f})",
        f"trace:  {result.get('trace_url') or result['trace_id']}",
    ]
    return "\n".join(lines)
