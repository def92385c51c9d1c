"""Compressed blocks by content hash: computed once, shared by concurrent callers, finished even if they leave.

(The same cache keeps the embedding vectors of few-shot example lists: nearest.py.)

A static block (a prompt's few-shot examples) must compress to the same bytes on every request, or the
provider's prefix cache misses. Model-based compression is also slow on a CPU (seconds per thousand
tokens), so its result is worth keeping: the first request pays, later ones read the cache. A request
whose deadline passes while its block is being compressed goes on uncompressed (the orchestrator fails
open), and the compression still completes and fills the cache for the next one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


def block_key(method: str, ratio: float, kind: str, texts: list[str], question: str) -> str:
    payload = json.dumps([method, round(ratio, 4), kind, texts, question], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


class BlockCache(Generic[T]):
    """An LRU of computed blocks plus single-flight computation of missing ones."""

    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        self._done: OrderedDict[str, T] = OrderedDict()
        self._running: dict[str, asyncio.Task[T]] = {}

    def __len__(self) -> int:
        return len(self._done)

    def get(self, key: str) -> T | None:
        found = self._done.get(key)
        if found is not None:
            self._done.move_to_end(key)
        return found

    async def get_or_compute(self, key: str, compute: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """The block and whether it came from the cache. The computation is shielded from the caller's
        cancellation, and one computation serves every caller that asks for the same key meanwhile."""
        found = self.get(key)
        if found is not None:
            return found, True
        task = self._running.get(key)
        if task is None:
            task = asyncio.create_task(self._compute(key, compute))
            # Retrieves the exception when every caller has left, so it is logged once, not "never retrieved".
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._running[key] = task
        return await asyncio.shield(task), False

    async def _compute(self, key: str, compute: Callable[[], Awaitable[T]]) -> T:
        try:
            result = await compute()
        except Exception:
            log.warning("block computation failed; the next request retries", exc_info=True)
            raise
        finally:
            self._running.pop(key, None)
        self._done[key] = result
        while len(self._done) > self._max_entries:
            self._done.popitem(last=False)
        return result

    async def close(self) -> None:
        """Stops computations still running (shutdown)."""
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
