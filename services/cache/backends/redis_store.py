"""Exact tier in Redis: one string per entry under costmesh:cache:{tenant}:{sha256}, expiring by TTL."""

from __future__ import annotations

import redis.asyncio as aioredis

from services.cache.domain import CachedAnswer

_SCAN_BATCH = 500


class RedisExactStore:
    def __init__(self, url: str, timeout_s: float) -> None:
        self._redis = aioredis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)

    @staticmethod
    def _key(tenant: str, key: str) -> str:
        return f"costmesh:cache:{tenant}:{key}"

    async def get(self, tenant: str, key: str) -> CachedAnswer | None:
        raw = await self._redis.get(self._key(tenant, key))
        return None if raw is None else CachedAnswer.from_json(raw)

    async def put(self, tenant: str, key: str, answer: CachedAnswer, ttl_s: int) -> None:
        await self._redis.set(self._key(tenant, key), answer.to_json(), ex=ttl_s)

    async def invalidate(self, tenant: str, key: str | None, older_than_unix_s: int | None) -> int:
        if key is not None:
            return int(await self._redis.delete(self._key(tenant, key)))
        removed = 0
        async for name in self._redis.scan_iter(match=self._key(tenant, "*"), count=_SCAN_BATCH):
            if older_than_unix_s is not None:
                raw = await self._redis.get(name)
                if raw is None or CachedAnswer.from_json(raw).created_unix_s >= older_than_unix_s:
                    continue
            removed += int(await self._redis.delete(name))
        return removed

    async def count(self) -> int:
        # SCAN, not DBSIZE: the database may hold other keys. Runs on the periodic sweep, off the request path.
        return sum([1 async for _ in self._redis.scan_iter(match=self._key("*", "*"), count=_SCAN_BATCH)])

    async def healthy(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except Exception:
            return False

    async def close(self) -> None:
        await self._redis.aclose()
