"""The batch queue on Redis Streams with one consumer group: XADD, XREADGROUP, XACK, XAUTOCLAIM.

One stream per priority: normal items on the base key (where every item was before priorities), high and
low ones on `<key>:high` and `<key>:low`. Reads go high, normal, low; a receipt is `<priority>/<entry id>`.

A Redis that restarts without its data (no AOF, a lost volume, a FLUSHALL) loses the group: every group
command then fails with NOGROUP. The queue re-creates the group (from the stream's start, so entries
still in the stream are delivered again; the job store skips items that already have a result) and
retries the command once, instead of failing every read until the process restarts.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as redis
from redis.exceptions import ResponseError

from services.batch.backends.base import PRIORITIES, Claimed, Priority, WorkItem

STREAM = "costmesh:batch:queue"
GROUP = "batch-consumers"
T = TypeVar("T")
log = logging.getLogger(__name__)


def _claimed(priority: Priority, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> list[Claimed]:
    out = []
    for entry_id, fields in entries:
        receipt = f"{priority}/{entry_id.decode()}"
        if not fields:  # an entry deleted while pending (trimmed): nothing to do but ack it
            out.append(Claimed(receipt, WorkItem("", -1, priority)))
            continue
        out.append(Claimed(receipt, WorkItem(fields[b"batch"].decode(), int(fields[b"index"]), priority)))
    return out


class RedisStreamQueue:
    def __init__(self, client: redis.Redis, stream: str = STREAM, group: str = GROUP) -> None:
        self._redis = client
        self._streams: dict[Priority, str] = {p: stream if p == "normal" else f"{stream}:{p}" for p in PRIORITIES}
        self._backlog: dict[str, list[Claimed]] = {}  # per consumer: read by a blocking claim beyond its count
        self._group = group
        self._group_ready = False

    @classmethod
    def from_url(cls, url: str) -> RedisStreamQueue:
        return cls(redis.Redis.from_url(url))

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        for stream in self._streams.values():
            try:
                await self._redis.xgroup_create(stream, self._group, id="0", mkstream=True)
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
        log.warning("consumer group %s is gone (Redis lost its data?); re-creating it", self._group)
        self._group_ready = False
        await self._ensure_group()
        return await command()

    async def publish(self, items: list[WorkItem]) -> None:
        await self._ensure_group()
        async with self._redis.pipeline(transaction=False) as pipe:
            for item in items:
                pipe.xadd(self._streams[item.priority], {"batch": item.batch_id, "index": item.index})
            await pipe.execute()

    async def claim(self, consumer: str, count: int, block_ms: int) -> list[Claimed]:
        out = self._from_backlog(consumer, count)
        for priority in PRIORITIES:  # what is there now, higher priorities first
            if len(out) < count:
                out += await self._read(consumer, priority, ">", count - len(out), None)
        if out:
            return out
        reply = await self._grouped(  # nothing queued: wait for the first entries of any priority
            lambda: self._redis.xreadgroup(
                self._group, consumer, {s: ">" for s in self._streams.values()}, count=count, block=block_ms
            )
        )
        # COUNT applies per stream, so this read can return up to three times count: the rest waits here
        # for the next claim (the entries are already in this consumer's pending list, so a crash loses
        # nothing: recover() reads them back).
        woken = self._by_stream(reply)
        self._backlog.setdefault(consumer, []).extend(woken[count:])
        return woken[:count]

    def _from_backlog(self, consumer: str, count: int) -> list[Claimed]:
        waiting = self._backlog.get(consumer, [])
        out, self._backlog[consumer] = waiting[:count], waiting[count:]
        return out

    async def recover(self, consumer: str, count: int) -> list[Claimed]:
        self._backlog.pop(consumer, None)  # they are pending entries too: read back below
        out: list[Claimed] = []
        for priority in PRIORITIES:  # "0": this consumer's pending entries
            out += await self._read(consumer, priority, "0", count, None)
        return out

    async def _read(
        self, consumer: str, priority: Priority, start: str, count: int, block_ms: int | None
    ) -> list[Claimed]:
        stream = self._streams[priority]
        reply = await self._grouped(
            lambda: self._redis.xreadgroup(self._group, consumer, {stream: start}, count=count, block=block_ms)
        )
        return _claimed(priority, reply[0][1]) if reply else []

    def _by_stream(self, reply: list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None) -> list[Claimed]:
        priority_of = {s.encode(): p for p, s in self._streams.items()}
        return [c for stream, entries in reply or [] for c in _claimed(priority_of[stream], entries)]

    async def reclaim(self, consumer: str, min_idle_ms: int, count: int) -> list[Claimed]:
        out: list[Claimed] = []
        for priority, stream in self._streams.items():
            if len(out) >= count:
                break
            command = functools.partial(
                self._redis.xautoclaim, stream, self._group, consumer, min_idle_ms, "0-0", count=count - len(out)
            )
            reply = await self._grouped(command)
            out += _claimed(priority, reply[1])
        return out

    async def ack(self, claimed: Claimed) -> None:
        await self._grouped(lambda: self._ack(claimed.receipt))

    async def _ack(self, receipt: str) -> None:
        priority, entry_id = receipt.split("/", 1)
        stream = self._streams[priority]  # type: ignore[index]  # a receipt of ours names one
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(stream, self._group, entry_id)
            pipe.xdel(stream, entry_id)  # done entries are not kept: the job store has the result
            await pipe.execute()

    async def depth(self) -> int:
        await self._ensure_group()
        return sum([int(await self._redis.xlen(s)) for s in self._streams.values()])

    async def close(self) -> None:
        await self._redis.aclose()
