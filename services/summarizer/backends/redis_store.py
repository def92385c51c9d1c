"""Summaries in Redis, shared by every summarizer replica: costmesh:summary:{key}, expiring by TTL."""

from __future__ import annotations

import redis.asyncio as aioredis


class RedisSummaryStore:
    def __init__(self, url: str, timeout_s: float) -> None:
        self._redis = aioredis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)

    async def get_many(self, keys: list[str]) -> list[str | None]:
        if not keys:
            return []
        values = await self._redis.mget([f"costmesh:summary:{k}" for k in keys])
        return [None if v is None else v.decode() for v in values]

    async def put(self, key: str, summary: str, ttl_s: int) -> None:
        await self._redis.set(f"costmesh:summary:{key}", summary, ex=ttl_s)

    async def close(self) -> None:
        await self._redis.aclose()
