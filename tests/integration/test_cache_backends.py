"""The cache's backends against the real Redis and Weaviate."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from launcher.settings import StackSettings
from services.cache.backends.base import SemanticEntry
from services.cache.backends.redis_store import RedisExactStore
from services.cache.backends.weaviate_index import WeaviateSemanticIndex
from services.cache.core import CacheCore, CacheMetrics
from services.cache.domain import CachedAnswer, Controls, HitKind, KeyMaterial

pytestmark = pytest.mark.integration


async def connect_weaviate(infra: StackSettings) -> WeaviateSemanticIndex:
    """The stack's Weaviate, with its API key (anonymous access is off)."""
    url = f"http://127.0.0.1:{infra.weaviate_port}"
    return await WeaviateSemanticIndex.connect(url, infra.weaviate_grpc_port, infra.weaviate_api_key())


def tenant() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


def answer(text: str, created: int | None = None) -> CachedAnswer:
    return CachedAnswer(text, "m", "small", "stop", 10, 2, 1e-5, 1e-4, created or int(time.time()))


def unit(*xs: float) -> list[float]:
    norm = sum(x * x for x in xs) ** 0.5
    return [x / norm for x in xs]


async def test_redis_roundtrip_ttl_and_invalidation(infra: StackSettings) -> None:
    url = infra.redis_url()
    store = RedisExactStore(url, 1.0)
    t = tenant()
    try:
        before = await store.count()
        await store.put(t, "k1", answer("one"), ttl_s=120)
        await store.put(t, "k2", answer("two", created=int(time.time()) - 3600), ttl_s=120)
        assert await store.count() == before + 2
        assert (await store.get(t, "k1")) == answer("one", (await store.get(t, "k1")).created_unix_s)  # type: ignore[union-attr]
        assert await store.get(tenant(), "k1") is None  # another tenant's namespace
        raw = aioredis.Redis.from_url(url)
        ttl = await raw.ttl(f"costmesh:cache:{t}:k1")
        assert 110 < ttl <= 120
        await raw.aclose()
        assert await store.invalidate(t, None, int(time.time()) - 60) == 1  # only the hour-old entry
        assert await store.get(t, "k2") is None
        assert await store.invalidate(t, "k1", None) == 1
        assert await store.healthy()
    finally:
        await store.close()


async def test_redis_down_is_unhealthy() -> None:
    store = RedisExactStore("redis://127.0.0.1:1/0", 0.2)
    assert not await store.healthy()
    await store.close()


def entry(key: str, vector: list[float], text: str, query: str = "q", expires: int | None = None) -> SemanticEntry:
    a = answer(text)
    return SemanticEntry(key, "ctx", query, vector, a, expires or a.created_unix_s + 3600)


async def test_weaviate_tenant_isolation_and_similarity(infra: StackSettings) -> None:
    index = await connect_weaviate(infra)
    a, b = tenant(), tenant()
    now = int(time.time())
    try:
        assert await index.healthy()
        await index.add(a, entry("k", unit(1, 0, 0, 0), "tenant a's answer", query="reset my pin"))
        found = await index.nearest(a, "ctx", unit(1, 0.05, 0, 0), 3, now)
        assert len(found) == 1
        assert found[0].answer.answer == "tenant a's answer"
        assert found[0].query == "reset my pin"
        assert found[0].similarity == pytest.approx(0.9988, abs=1e-3)
        assert await index.nearest(a, "other-context", unit(1, 0, 0, 0), 3, now) == []
        # The very same vector from another tenant finds nothing.
        assert await index.nearest(b, "ctx", unit(1, 0, 0, 0), 3, now) == []
        await index.add(b, entry("k", unit(1, 0, 0, 0), "tenant b's answer"))
        assert (await index.nearest(b, "ctx", unit(1, 0, 0, 0), 3, now))[0].answer.answer == "tenant b's answer"
        assert (await index.nearest(a, "ctx", unit(1, 0, 0, 0), 3, now))[0].answer.answer == "tenant a's answer"
        assert await index.invalidate(a, None, None) == 1
        assert await index.nearest(a, "ctx", unit(1, 0, 0, 0), 3, now) == []
    finally:
        await index.invalidate(b, None, None)
        await index.close()


async def test_weaviate_expiry_and_size_cap(infra: StackSettings) -> None:
    index = await connect_weaviate(infra)
    t = tenant()
    now = int(time.time())
    try:
        await index.add(t, entry("expired", unit(1, 0, 0, 0), "old", expires=now - 1))
        for i in range(4):
            e = entry(f"k{i}", unit(1, i, 0, 0), f"answer {i}")
            await index.add(
                t,
                SemanticEntry(
                    e.key,
                    e.context,
                    e.query,
                    e.vector,
                    CachedAnswer(**{**e.answer.__dict__, "created_unix_s": now + i}),
                    now + 3600,
                ),
            )
        # Expired entries are never served, even before the sweep removes them.
        assert all(m.answer.answer != "old" for m in await index.nearest(t, "ctx", unit(1, 0, 0, 0), 10, now))
        removed, _ = await index.sweep(now, max_entries_per_tenant=2)
        assert removed >= 3  # the expired one and the two oldest of the four
        left = {m.answer.answer for m in await index.nearest(t, "ctx", unit(1, 1, 0, 0), 10, now)}
        assert left == {"answer 2", "answer 3"}
    finally:
        await index.invalidate(t, None, None)
        await index.close()


async def test_semantic_tier_and_guard_through_the_cache_core(infra: StackSettings) -> None:
    store = RedisExactStore(infra.redis_url(), 1.0)
    index = await connect_weaviate(infra)
    core = CacheCore(store, index, CacheMetrics(CollectorRegistry()), 3600, 0.92)
    t = tenant()
    try:
        stored, _, _ = await core.store(
            KeyMaterial(t, (("user", "How do I reset my card PIN?"),)),
            Controls(),
            0.0,
            unit(1, 0.1, 0, 0),
            answer("Open the app, Cards, Reset PIN."),
        )
        assert stored
        paraphrase = KeyMaterial(t, (("user", "how can i change the pin of my card"),))
        close = await core.lookup(paraphrase, Controls(), 0.0, unit(1, 0.15, 0, 0))
        assert close.kind is HitKind.SEMANTIC
        assert close.similarity >= 0.92
        far = await core.lookup(paraphrase, Controls(), 0.0, unit(0.6, 0.8, 0, 0))
        assert far.kind is HitKind.MISS
        strict = await core.lookup(paraphrase, Controls(similarity_threshold=0.9999), 0.0, unit(1, 0.15, 0, 0))
        assert strict.kind is HitKind.MISS
        cancel = KeyMaterial(t, (("user", "Please cancel my card"),))
        assert (await core.store(cancel, Controls(), 0.0, unit(0, 0, 1, 0.1), answer("Cancelled.")))[0]
        negated = KeyMaterial(t, (("user", "Please don't cancel my card"),))
        guarded = await core.lookup(negated, Controls(), 0.0, unit(0, 0, 1, 0.1))
        assert guarded.kind is HitKind.MISS
        assert "negation" in guarded.reason
    finally:
        await core.invalidate(t, None, None)
        await core.close()


async def test_weaviate_serves_nothing_without_the_api_key(infra: StackSettings) -> None:
    base = f"http://127.0.0.1:{infra.weaviate_port}/v1"
    async with httpx.AsyncClient(timeout=5) as http:
        assert (await http.get(f"{base}/.well-known/ready")).status_code == 200  # the launcher's probe
        assert (await http.get(f"{base}/objects")).status_code == 401
        assert (await http.get(f"{base}/schema")).status_code == 401
        wrong = {"Authorization": "Bearer not-the-key"}
        assert (await http.get(f"{base}/objects", headers=wrong)).status_code == 401
        ours = {"Authorization": f"Bearer {infra.weaviate_api_key()}"}
        assert (await http.get(f"{base}/schema", headers=ours)).status_code == 200
    anonymous = await WeaviateSemanticIndex.connect(f"http://127.0.0.1:{infra.weaviate_port}", infra.weaviate_grpc_port)
    try:
        assert not await anonymous.healthy()  # gRPC and REST alike refuse a client without the key
    finally:
        await anonymous.close()
