"""`costmesh bench cache --pairs FILE`: false hits and recall on labelled pairs, through the running stack.

Each pair gets a fresh tenant: `a` is stored through the cache service with the embedding the
orchestrator computes, `b` is looked up, and the tenant is dropped. So the decision is the real one:
the cache service's context key, Weaviate's nearest neighbour, the rule guard and the verifier.
One lookup per pair, at the lowest threshold asked for, decides every threshold: the tenant holds one
entry, so `b` hits at threshold t exactly when it hit at the lowest and its similarity is >= t (the
guard and the verifier do not depend on t).

recall = hits on same-answer pairs / same-answer pairs; false_hit_rate = hits on different-answer
pairs / different-answer pairs; both with 95 % Wilson intervals.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from bench.stats import hit_rates, percentile
from costmesh.v1 import cache_pb2, cache_pb2_grpc, common_pb2
from launcher.settings import StackSettings
from services.cache.settings import CacheSettings
from services.common.contracts import to_messages
from services.common.embedding import OnnxMiniLM, embedding_text, load_minilm
from services.common.interceptors import client_channel
from services.orchestrator.settings import OrchestratorSettings
from workloads.pairs import Pair

CONCURRENCY = 2  # the machine has two cores; more only queues in the cache service


@dataclass(frozen=True)
class Outcome:
    pair: Pair
    hit: bool  # at the lowest threshold
    similarity: float
    verifier_score: float | None
    reason: str
    lookup_s: float  # embedding + Lookup round trip, as the orchestrator pays it


def _key(tenant: str, turns: Sequence[tuple[str, str]]) -> cache_pb2.CacheKeyMaterial:
    return cache_pb2.CacheKeyMaterial(tenant=tenant, messages=to_messages(turns))


async def _one(stub: cache_pb2_grpc.CacheAsyncStub, embedder: OnnxMiniLM, pair: Pair, lowest: float) -> Outcome:
    tenant = f"pairs{uuid.uuid4().hex[:12]}"
    stored = embedder.embed([embedding_text(pair.a)])[0].tolist()
    answer = cache_pb2.CachedAnswer(answer="the answer to a", model="bench", finish_reason="stop")
    store = await stub.Store(
        cache_pb2.StoreRequest(key=_key(tenant, pair.a), embedding=common_pb2.Embedding(values=stored), answer=answer),
        timeout=10,
    )
    if not store.stored:
        raise SystemExit(f"the cache did not store a pair ({store.reason}): is the stack up (`costmesh up`)?")
    try:
        started = time.perf_counter()
        vector = embedder.embed([embedding_text(pair.b)])[0].tolist()
        lookup = await stub.Lookup(
            cache_pb2.LookupRequest(
                key=_key(tenant, pair.b),
                control=common_pb2.CacheControl(similarity_threshold=lowest),
                embedding=common_pb2.Embedding(values=vector),  # both tiers, as the orchestrator asks them
            ),
            timeout=10,
        )
        elapsed = time.perf_counter() - started
    finally:
        await stub.Invalidate(cache_pb2.InvalidateRequest(tenant=tenant, all=True), timeout=10)
    d = lookup.decision
    return Outcome(
        pair,
        d.kind in (common_pb2.CACHE_HIT_KIND_SEMANTIC, common_pb2.CACHE_HIT_KIND_EXACT),
        d.similarity,
        d.verifier_score if d.HasField("verifier_score") else None,
        d.reason,
        elapsed,
    )


async def run(pairs: Sequence[Pair], lowest: float) -> list[Outcome]:
    stack = StackSettings()
    settings = OrchestratorSettings()
    embedder = load_minilm(settings.embedding_model_dir, settings.embedding_threads)
    async with client_channel(f"127.0.0.1:{stack.cache_port}", token=stack.mesh_token()) as channel:
        stub: cache_pb2_grpc.CacheAsyncStub = cache_pb2_grpc.CacheStub(channel)
        gate = asyncio.Semaphore(CONCURRENCY)

        async def bounded(pair: Pair) -> Outcome:
            async with gate:
                return await _one(stub, embedder, pair, lowest)

        try:
            return await asyncio.gather(*(bounded(p) for p in pairs))
        except grpc.aio.AioRpcError as exc:
            raise SystemExit(f"cache service at 127.0.0.1:{stack.cache_port}: {exc.details()}") from None


def row(outcomes: Sequence[Outcome], threshold: float) -> dict[str, object]:
    same = [o for o in outcomes if o.pair.same_answer]
    different = [o for o in outcomes if not o.pair.same_answer]
    hits_same = sum(o.hit and o.similarity >= threshold for o in same)
    hits_different = sum(o.hit and o.similarity >= threshold for o in different)
    latencies = [o.lookup_s * 1000 for o in outcomes]
    return {
        "pairs": len(outcomes),
        "same": len(same),
        "different": len(different),
        "threshold": threshold,
        **hit_rates(hits_same, len(same), hits_different, len(different)),
        "lookup_p50_ms": round(percentile(latencies, 50), 3),
        "lookup_p99_ms": round(percentile(latencies, 99), 3),
    }


def by_kind(outcomes: Sequence[Outcome], threshold: float) -> dict[str, dict[str, object]]:
    """Hit rate per labelled kind (a trap kind's hits are its false hits)."""
    kinds: dict[str, list[Outcome]] = {}
    for o in outcomes:
        kinds.setdefault(f"{'same' if o.pair.same_answer else 'different'}:{o.pair.kind or '-'}", []).append(o)
    return {
        name: {
            "n": len(group),
            "hit_rate": round(sum(o.hit and o.similarity >= threshold for o in group) / len(group), 4),
        }
        for name, group in sorted(kinds.items())
    }


def default_threshold() -> float:
    """The threshold the running cache service uses: the same settings (env) it was started with."""
    return CacheSettings().similarity_threshold
