"""Storage Protocols of the two cache tiers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from services.cache.domain import CachedAnswer, SemanticMatch


class ExactStore(Protocol):
    """Key -> answer, with a TTL. The exact tier."""

    async def get(self, tenant: str, key: str) -> CachedAnswer | None: ...

    async def put(self, tenant: str, key: str, answer: CachedAnswer, ttl_s: int) -> None: ...

    async def invalidate(self, tenant: str, key: str | None, older_than_unix_s: int | None) -> int: ...

    async def count(self) -> int:
        """Entries held, all tenants together (for the entries gauge)."""
        ...

    async def healthy(self) -> bool: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class SemanticEntry:
    key: str
    context: str  # KeyMaterial.context_key(): only entries with the same context may match
    query: str
    vector: list[float]
    answer: CachedAnswer
    expires_unix_s: int


class SemanticIndex(Protocol):
    """Nearest neighbours over request embeddings, strictly per tenant. The semantic tier."""

    async def nearest(
        self, tenant: str, context: str, vector: list[float], limit: int, now_unix_s: int
    ) -> list[SemanticMatch]: ...

    async def add(self, tenant: str, entry: SemanticEntry) -> None: ...

    async def invalidate(self, tenant: str, key: str | None, older_than_unix_s: int | None) -> int: ...

    async def sweep(self, now_unix_s: int, max_entries_per_tenant: int) -> tuple[int, int]:
        """Drops expired entries and the oldest beyond the cap; returns (removed, entries left)."""
        ...

    async def healthy(self) -> bool: ...

    async def close(self) -> None: ...
