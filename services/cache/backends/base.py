"""Storage Protocols of the two cache tiers."""

from __future__ import annotations

from typing import Protocol

from services.cache.domain import CachedAnswer


class ExactStore(Protocol):
    """Key -> answer, with a TTL. The exact tier."""

    async def get(self, tenant: str, key: str) -> CachedAnswer | None: ...

    async def put(self, tenant: str, key: str, answer: CachedAnswer, ttl_s: int) -> None: ...

    async def invalidate(self, tenant: str, key: str | None, older_than_unix_s: int | None) -> int: ...

    async def healthy(self) -> bool: ...

    async def close(self) -> None: ...


class SemanticIndex(Protocol):
    """Nearest neighbour over request embeddings, strictly per tenant. The semantic tier."""

    async def nearest(self, tenant: str, vector: list[float]) -> tuple[CachedAnswer, float] | None: ...

    async def add(self, tenant: str, key: str, vector: list[float], answer: CachedAnswer) -> None: ...

    async def invalidate(self, tenant: str, key: str | None, older_than_unix_s: int | None) -> int: ...

    async def healthy(self) -> bool: ...

    async def close(self) -> None: ...
