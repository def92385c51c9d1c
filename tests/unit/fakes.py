"""Small in-process fakes of backends, for unit tests of core logic."""

from __future__ import annotations

from services.cache.backends.base import SemanticEntry
from services.cache.domain import CachedAnswer, SemanticMatch


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

    async def count(self) -> int:
        return len(self.entries)

    async def healthy(self) -> bool:
        return not self.fail

    async def close(self) -> None:
        return None


class MemorySemanticIndex:
    """Brute-force cosine search with the same contract as the Weaviate index."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, SemanticEntry]] = {}

    async def nearest(
        self, tenant: str, context: str, vector: list[float], limit: int, now_unix_s: int
    ) -> list[SemanticMatch]:
        candidates = [
            e for e in self.entries.get(tenant, {}).values() if e.context == context and e.expires_unix_s > now_unix_s
        ]
        scored = sorted(
            (
                SemanticMatch(e.answer, sum(a * b for a, b in zip(vector, e.vector, strict=True)), e.query, e.key)
                for e in candidates
            ),
            key=lambda m: -m.similarity,
        )
        return scored[:limit]

    async def add(self, tenant: str, entry: SemanticEntry) -> None:
        self.entries.setdefault(tenant, {})[entry.key] = entry

    async def invalidate(self, tenant: str, key: str | None, older_than_unix_s: int | None) -> int:
        held = self.entries.get(tenant, {})
        doomed = [
            k
            for k, e in held.items()
            if (key is None or k == key) and (older_than_unix_s is None or e.answer.created_unix_s < older_than_unix_s)
        ]
        for k in doomed:
            del held[k]
        return len(doomed)

    async def sweep(self, now_unix_s: int, max_entries_per_tenant: int) -> tuple[int, int]:
        removed = left = 0
        for held in self.entries.values():
            for k in [k for k, e in held.items() if e.expires_unix_s <= now_unix_s]:
                del held[k]
                removed += 1
            by_age = sorted(held.values(), key=lambda e: e.answer.created_unix_s)
            for e in by_age[: max(0, len(held) - max_entries_per_tenant)] if max_entries_per_tenant else []:
                del held[e.key]
                removed += 1
            left += len(held)
        return removed, left

    async def healthy(self) -> bool:
        return True

    async def close(self) -> None:
        return None
