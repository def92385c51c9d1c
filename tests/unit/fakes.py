"""Small in-process fakes of backends, for unit tests of core logic."""

from __future__ import annotations

from services.cache.domain import CachedAnswer


class MemoryExactStore:
    def __init__(self, fail: bool = False) -> None:
        self.entries: dict[tuple[str, str], tuple[CachedAnswer, int]] = {}
        self.fail = fail

    async def get(self, tenant: str, key: str) -> CachedAnswer | None:
        if self.fail:
            raise ConnectionError("redis down")
        found = self.entries.get((tenant, key))
        return None if found is None else found[0]

    async def put(self, tenant: str, key: str, answer: CachedAnswer, ttl_s: int) -> None:
        if self.fail:
            raise ConnectionError("redis down")
        self.entries[(tenant, key)] = (answer, ttl_s)

    async def invalidate(self, tenant: str, key: str | None, older_than_unix_s: int | None) -> int:
        doomed = [
            k
            for k, (a, _) in self.entries.items()
            if k[0] == tenant
            and (key is None or k[1] == key)
            and (older_than_unix_s is None or a.created_unix_s < older_than_unix_s)
        ]
        for k in doomed:
            del self.entries[k]
        return len(doomed)

    async def healthy(self) -> bool:
        return not self.fail

    async def close(self) -> None:
        return None
