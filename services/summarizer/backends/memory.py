"""In-process summary store: one replica's memory, least recently used first out (TTL ignored)."""

from __future__ import annotations

from collections import OrderedDict


class MemorySummaryStore:
    def __init__(self, max_entries: int = 10_000) -> None:
        self._entries: OrderedDict[str, str] = OrderedDict()
        self._max = max_entries

    async def get_many(self, keys: list[str]) -> list[str | None]:
        found = [self._entries.get(k) for k in keys]
        for k, v in zip(keys, found, strict=True):
            if v is not None:
                self._entries.move_to_end(k)
        return found

    async def put(self, key: str, summary: str, ttl_s: int) -> None:
        self._entries[key] = summary
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    async def close(self) -> None:
        return None
