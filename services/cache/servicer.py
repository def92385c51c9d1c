"""Proto <-> domain adapter for the Cache service."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import grpc

from costmesh.v1 import cache_pb2, cache_pb2_grpc, common_pb2
from services.cache.core import CacheCore, Tiers
from services.cache.domain import CachedAnswer, Controls, Decision, HitKind, KeyMaterial
from services.common.contracts import TIER_NAMES, TIERS_BY_NAME, role_pairs
from services.common.errors import InvalidInput
from services.common.validation import (
    check_cache_control,
    check_documents,
    check_enum,
    check_finite,
    check_sampling,
)

_TIERS = {
    cache_pb2.LOOKUP_TIERS_UNSPECIFIED: Tiers.BOTH,
    cache_pb2.LOOKUP_TIERS_EXACT_ONLY: Tiers.EXACT,
    cache_pb2.LOOKUP_TIERS_SEMANTIC_ONLY: Tiers.SEMANTIC,
}
_HIT_KIND = {
    HitKind.MISS: common_pb2.CACHE_HIT_KIND_MISS,
    HitKind.EXACT: common_pb2.CACHE_HIT_KIND_EXACT,
    HitKind.SEMANTIC: common_pb2.CACHE_HIT_KIND_SEMANTIC,
}


def to_material(key: cache_pb2.CacheKeyMaterial) -> KeyMaterial:
    if not key.messages:
        raise InvalidInput("key.messages must not be empty")
    check_documents(key.documents, "key.documents")
    check_sampling(key.sampling, "key.sampling.")
    check_enum(key.tier, common_pb2.Tier.DESCRIPTOR, "key.tier")
    s = key.sampling
    sampling = tuple(sorted((field.name, str(value)) for field, value in s.ListFields() if field.name != "logprobs"))
    return KeyMaterial(
        tenant=key.tenant,
        messages=tuple(role_pairs(key.messages)),
        documents=tuple((common_pb2.DocumentKind.Name(d.kind), d.text) for d in key.documents),
        sampling=sampling,
        tier=TIER_NAMES.get(key.tier, "auto"),
        response_format=key.response_format,
    )


def to_controls(c: common_pb2.CacheControl) -> Controls:
    check_cache_control(c)
    threshold = c.similarity_threshold if c.HasField("similarity_threshold") else None
    verifier = c.verifier_threshold if c.HasField("verifier_threshold") else None
    return Controls(c.no_cache, c.no_store, c.max_age_s, c.ttl_s, threshold, c.allow_sampled, verifier)


def to_embedding(values: Sequence[float], dim: int) -> list[float]:
    """The request's vector, checked: empty (the semantic tier is skipped), or ``dim`` finite numbers (any
    length when ``dim`` is 0). A NaN makes the similarity NaN, and ``NaN < threshold`` is False: such a
    lookup passed the threshold and came back a hit. A vector of another length is another model's."""
    if not values:
        return []
    if dim and len(values) != dim:
        raise InvalidInput(f"embedding must have {dim} values (all-MiniLM-L6-v2), got {len(values)}")
    if not all(map(math.isfinite, values)):
        raise InvalidInput("embedding values must be finite numbers (no NaN or infinity)")
    return list(values)


def lookup_tiers(tiers: cache_pb2.LookupTiers.ValueType) -> Tiers:
    check_enum(tiers, cache_pb2.LookupTiers.DESCRIPTOR, "tiers")
    return _TIERS[tiers]


def temperature_of(key: cache_pb2.CacheKeyMaterial) -> float:
    return key.sampling.temperature if key.sampling.HasField("temperature") else 0.0


def answer_to_proto(a: CachedAnswer) -> cache_pb2.CachedAnswer:
    return cache_pb2.CachedAnswer(
        answer=a.answer,
        model=a.model,
        tier=TIERS_BY_NAME.get(a.tier, common_pb2.TIER_UNSPECIFIED),
        finish_reason=a.finish_reason,
        usage=common_pb2.TokenUsage(prompt_tokens=a.prompt_tokens, completion_tokens=a.completion_tokens),
        cost_usd=a.cost_usd,
        baseline_cost_usd=a.baseline_cost_usd,
        created_unix_s=a.created_unix_s,
    )


def answer_from_proto(a: cache_pb2.CachedAnswer, now_s: int) -> CachedAnswer:
    check_enum(a.tier, common_pb2.Tier.DESCRIPTOR, "answer.tier")
    check_finite(a.cost_usd, "answer.cost_usd", 0.0)
    check_finite(a.baseline_cost_usd, "answer.baseline_cost_usd", 0.0)
    if min(a.usage.prompt_tokens, a.usage.completion_tokens, a.created_unix_s) < 0:
        raise InvalidInput("answer.usage token counts and answer.created_unix_s must be >= 0")
    return CachedAnswer(
        answer=a.answer,
        model=a.model,
        tier=TIER_NAMES.get(a.tier, "auto"),
        finish_reason=a.finish_reason,
        prompt_tokens=a.usage.prompt_tokens,
        completion_tokens=a.usage.completion_tokens,
        cost_usd=a.cost_usd,
        baseline_cost_usd=a.baseline_cost_usd,
        created_unix_s=a.created_unix_s or now_s,
    )


def decision_to_proto(d: Decision) -> common_pb2.CacheDecision:
    return common_pb2.CacheDecision(
        kind=_HIT_KIND[d.kind],
        similarity=d.similarity,
        key=d.key,
        reason=d.reason,
        skipped=d.skipped,
        degraded=d.degraded,
        age_s=d.age_s,
        verifier_score=d.verifier_score,
        entry_key=d.entry_key,
    )


class CacheServicer(cache_pb2_grpc.CacheServicer):
    def __init__(self, core: CacheCore, clock: Any, embedding_dim: int) -> None:
        self._core = core
        self._clock = clock
        self._dim = embedding_dim

    async def Lookup(
        self, request: cache_pb2.LookupRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> cache_pb2.LookupResponse:
        decision = await self._core.lookup(
            to_material(request.key),
            to_controls(request.control),
            temperature_of(request.key),
            to_embedding(request.embedding.values, self._dim),
            lookup_tiers(request.tiers),
        )
        response = cache_pb2.LookupResponse(decision=decision_to_proto(decision))
        if decision.answer is not None:
            response.answer.CopyFrom(answer_to_proto(decision.answer))
        return response

    async def Store(
        self, request: cache_pb2.StoreRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> cache_pb2.StoreResponse:
        stored, key, reason = await self._core.store(
            to_material(request.key),
            to_controls(request.control),
            temperature_of(request.key),
            to_embedding(request.embedding.values, self._dim),
            answer_from_proto(request.answer, int(self._clock())),
        )
        return cache_pb2.StoreResponse(stored=stored, key=key, reason=reason)

    async def Invalidate(
        self, request: cache_pb2.InvalidateRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> cache_pb2.InvalidateResponse:
        target = request.WhichOneof("target")
        if target is None or (target == "all" and not request.all):
            raise InvalidInput("set one of key, all=true or older_than_s")
        removed = await self._core.invalidate(
            request.tenant,
            request.key if target == "key" else None,
            request.older_than_s if target == "older_than_s" else None,
        )
        return cache_pb2.InvalidateResponse(removed=removed)
