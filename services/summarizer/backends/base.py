"""Where running summaries are kept between requests: keyed by a hash of the turns they summarize."""

from __future__ import annotations

from typing import Protocol


class SummaryStore(Protocol):
    async def get_many(self, keys: list[str]) -> list[str | None]: ...

    async def put(self, key: str, summary: str, ttl_s: int) -> None: ...

    async def close(self) -> None: ...
