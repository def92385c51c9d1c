"""The lane buckets in real Redis: inference replicas share one quota, and an unreachable Redis falls back.

Two LaneLimiters over RedisBuckets stand for two inference replicas; with in-process buckets each would
grant the full limit (the unit tests cover that arithmetic).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as redis

from launcher.settings import StackSettings
from services.common.errors import RateLimited
from services.inference import limits_redis
from services.inference.limits import LaneLimit, LaneLimiter
from services.inference.limits_redis import RedisBuckets
from tests import stack


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    settings = StackSettings()
    started = stack.start(settings, ["redis"])
    yield settings.redis_url()
    stack.stop(settings, started)


@pytest.fixture
async def isolated(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """This test's own key prefix, so parallel runs and earlier tests never share buckets."""
    prefix = f"costmesh:test:limits:{uuid.uuid4().hex}:"
    monkeypatch.setattr(limits_redis, "PREFIX", prefix)
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = [key async for key in client.scan_iter(f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def replica(url: str, limits: dict[tuple[str, str], LaneLimit], burst_s: float = 10.0) -> LaneLimiter:
    return LaneLimiter(limits, buckets=RedisBuckets.from_url(url, burst_s))


async def test_two_replicas_grant_one_quota_between_them(redis_url: str, isolated: str) -> None:
    limits = {("batch", "small"): LaneLimit(requests_per_minute=30, tokens_per_minute=10**6)}  # 5 per 10 s
    a, b = replica(redis_url, limits), replica(redis_url, limits)
    granted = 0
    for limiter in (a, b, a, b, a, b, a, b):
        try:
            await limiter.acquire("batch", "small", 10)
            granted += 1
        except RateLimited as e:
            assert e.retry_after_s == pytest.approx(2.0, abs=0.3)  # one request refills every 2 s
    assert granted == 5  # the burst, once: in-process buckets would have granted 10 (5 each)
    await a.acquire("realtime", "small", 10**6)  # another lane, no row: not limited
    await a.close()
    await b.close()


async def test_concurrent_takes_never_overspend(redis_url: str, isolated: str) -> None:
    limits = {("batch", "large"): LaneLimit(requests_per_minute=10**6, tokens_per_minute=600)}  # 100 in 10 s
    replicas = [replica(redis_url, limits) for _ in range(4)]

    async def take(limiter: LaneLimiter) -> bool:
        try:
            await limiter.acquire("batch", "large", 7)
            return True
        except RateLimited:
            return False

    results = await asyncio.gather(*(take(r) for r in replicas for _ in range(10)))
    assert sum(results) == 100 // 7  # 14 takes of 7 fit in 100 tokens, however they interleave
    for r in replicas:
        await r.close()


async def test_the_shared_bucket_refills_on_redis_clock(redis_url: str, isolated: str) -> None:
    limits = {("batch", "small"): LaneLimit(requests_per_minute=600, tokens_per_minute=10**6)}  # 10 a second
    limiter = replica(redis_url, limits, burst_s=0.2)  # holds 2
    await limiter.acquire("batch", "small", 1)
    await limiter.acquire("batch", "small", 1)
    with pytest.raises(RateLimited):
        await limiter.acquire("batch", "small", 1)
    await asyncio.sleep(0.25)
    await limiter.acquire("batch", "small", 1)
    await limiter.close()


async def test_unreachable_redis_falls_back_to_this_replicas_buckets() -> None:
    fallbacks: list[int] = []
    buckets = RedisBuckets.from_url("redis://127.0.0.1:1/0", 10.0, lambda: fallbacks.append(1), timeout_s=0.2)
    limiter = LaneLimiter({("batch", "small"): LaneLimit(30, 10**6)}, buckets=buckets)
    for _ in range(5):
        await limiter.acquire("batch", "small", 1)  # served, not refused: Redis being down is not a rate limit
    with pytest.raises(RateLimited):
        await limiter.acquire("batch", "small", 1)  # the local bucket still enforces the limit
    assert len(fallbacks) == 6
    await limiter.close()


async def test_a_redis_that_refuses_the_script_falls_back_then_is_asked_again(
    redis_url: str, isolated: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Redis answers and refuses (a ResponseError: here WRONGTYPE on a bucket key, as OOM or READONLY after a
    # failover would be), which must not become INTERNAL on every limited call.
    client = redis.Redis.from_url(redis_url)
    bucket_key = f"{isolated}{{batch:small}}:requests"
    await client.set(bucket_key, "not a hash")
    fallbacks: list[int] = []
    buckets = RedisBuckets.from_url(redis_url, 10.0, lambda: fallbacks.append(1))
    limit = LaneLimit(600, 10**6)
    assert await buckets.try_take("batch", "small", limit, 1) == 0  # this replica's own bucket took it
    assert await buckets.try_take("batch", "small", limit, 1) == 0  # within RETRY_S: Redis is not asked
    assert len(fallbacks) == 2
    await client.delete(bucket_key)
    monkeypatch.setattr(limits_redis, "RETRY_S", 0.0)
    await asyncio.sleep(1.05)  # past the retry time set by the failure
    assert await buckets.try_take("batch", "small", limit, 1) == 0 and len(fallbacks) == 2  # Redis decided
    assert await client.exists(bucket_key) == 1  # the shared bucket again
    await buckets.close()
    await client.aclose()
