"""The batch queue on Redis Streams with one consumer group: XADD, XREADGROUP, XACK, XAUTOCLAIM.

A Redis that restarts without its data (no AOF, a lost volume, a FLUSHALL) loses the group: every group
command then fails with NOGROUP. The queue re-creates the group (from the stream's start, so entries
still in the stream are delivered again; the job store skips items that already have a result) and
retries the command once, instead of failing every read until the process restarts.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as redis
from redis.exceptions import ResponseError

from services.batch.backends.base import Claimed, WorkItem

STREAM = "costmesh:batch:queue"
GROUP = "batch-consumers"
T = TypeVar("T")
log = logging.getLogger(__name__)


def _claimed(entries: list[tuple[bytes, dict[bytes, bytes]]]) -> list[Claimed]:
    out = []
    for entry_id, fields in entries:
        if not fields:  # an entry deleted while pending (trimmed): nothing to do but ack it
            out.append(Claimed(entry_id.decode(), WorkItem("", -1)))
            continue
        out.append(Claimed(entry_id.decode(), WorkItem(fields[b"batch"].decode(), int(fields[b"index"]))))
    return out


class RedisStreamQueue:
    def __init__(self, client: redis.Redis, stream: str = STREAM, group: str = GROUP) -> None:
        self._redis = client
        self._stream = stream
        self._group = group
        self._group_ready = False

    @classmethod
    def from_url(cls, url: str) -> RedisStreamQueue:
        return cls(redis.Redis.from_url(url))

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            await self._redis.xgroup_create(self._stream, self._group, id="0", mkstream=True)
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
        self._group_ready = True

    async def _grouped(self, command: Callable[[], Awaitable[T]]) -> T:
        """Runs a consumer-group command, re-creating the group once if Redis has lost it."""
        await self._ensure_group()
        try:
            return await command()
        except ResponseError as e:
            if "NOGROUP" not in str(e):
                raise
        log.warning("consumer group %s of %s is gone (Redis lost its data?); re-creating it", self._group, self._stream)
        self._group_ready = False
        await self._ensure_group()
        return await command()

    async def publish(self, items: list[WorkItem]) -> None:
        await self._ensure_group()
        async with self._redis.pipeline(transaction=False) as pipe:
            for item in items:
                pipe.xadd(self._stream, {"batch": item.batch_id, "index": item.index})
            await pipe.execute()

    async def claim(self, consumer: str, count: int, block_ms: int) -> list[Claimed]:
        return await self._read(consumer, ">", count, block_ms)

    async def recover(self, consumer: str, count: int) -> list[Claimed]:
        return await self._read(consumer, "0", count, None)  # "0": this consumer's pending entries

    async def _read(self, consumer: str, start: str, count: int, block_ms: int | None) -> list[Claimed]:
        reply = await self._grouped(
            lambda: self._redis.xreadgroup(self._group, consumer, {self._stream: start}, count=count, block=block_ms)
        )
        return _claimed(reply[0][1]) if reply else []

    async def reclaim(self, consumer: str, min_idle_ms: int, count: int) -> list[Claimed]:
        reply = await self._grouped(
            lambda: self._redis.xautoclaim(self._stream, self._group, consumer, min_idle_ms, "0-0", count=count)
        )
        return _claimed(reply[1])

    async def ack(self, claimed: Claimed) -> None:
        await self._grouped(lambda: self._ack(claimed.receipt))

    async def _ack(self, receipt: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(self._stream, self._group, receipt)
            pipe.xdel(self._stream, receipt)  # done entries are not kept: the job store has the result
            await pipe.execute()

    async def depth(self) -> int:
        await self._ensure_group()
        return int(await self._redis.xlen(self._stream))

    async def close(self) -> None:
        await self._redis.aclose()
