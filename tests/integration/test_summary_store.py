"""Running summaries in the real Redis, as every summarizer replica shares them."""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis

from launcher.settings import StackSettings
from services.summarizer.backends.redis_store import RedisSummaryStore
from services.summarizer.core import PruneLimits, prune

pytestmark = pytest.mark.integration


async def test_summaries_round_trip_with_ttl_and_serve_the_next_request(infra: StackSettings) -> None:
    url = infra.redis_url()
    store = RedisSummaryStore(url, 1.0)
    key = uuid.uuid4().hex
    try:
        assert await store.get_many([]) == []
        await store.put(key, "Earlier: the user lost a card.", ttl_s=60)
        assert await store.get_many([uuid.uuid4().hex, key]) == [None, "Earlier: the user lost a card."]
        raw = aioredis.Redis.from_url(url)
        assert 50 < await raw.ttl(f"costmesh:summary:{key}") <= 60
        await raw.aclose()

        calls: list[str] = []

        async def summarize(text: str, budget: int) -> str:
            calls.append(text)
            return "The user asked twenty questions about an order."

        turns = [("user" if i % 2 == 0 else "assistant", f"turn {i} " + "about the order " * 60) for i in range(30)]
        scope = f"test/{key}"
        first = await prune(turns, PruneLimits(max_tokens=1000), summarize, store, scope)
        second = await prune(turns, PruneLimits(max_tokens=1000), summarize, store, scope)
        assert (first.summary_source, second.summary_source) == ("full", "cached")
        assert len(calls) == 1
    finally:
        await store.close()
