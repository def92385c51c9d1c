"""Batch jobs in Redis: the submitted items, one result per item (the first one written wins), counters.

Keys, for batch B (all expire after the retention period):
  costmesh:batch:B           hash    tenant, total, succeeded, failed, cancelled, cost_usd, baseline_cost_usd,
                                     created_ms, finished_ms, cancel_requested
  costmesh:batch:B:items     hash    index -> BatchItem (serialized; its request is a CompletionRequest)
  costmesh:batch:B:results   hash    index -> BatchResult (serialized)
  costmesh:batch:B:events    stream  one entry per recorded result, in completion order (for streaming)
  costmesh:batch-index:T     zset    tenant T's batch ids by creation time (ListBatches)

A batch id from a caller is checked against the ids create() makes before it is put into any key, so
`queue` or `<id>:items` never reach Redis (INVALID_ARGUMENT); a well-formed id that is not the
tenant's is NOT_FOUND.

A result and its counters are written by one Lua script, so a consumer that crashes after answering and
is retried, or two consumers racing for a reclaimed entry, can never count or stream an item twice.
"""

from __future__ import annotations

import inspect
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis

from costmesh.v1 import batch_pb2
from services.common.errors import InvalidInput, NotFound

PREFIX = "costmesh:batch:"
INDEX_PREFIX = "costmesh:batch-index:"
BATCH_ID = re.compile(r"batch_[0-9a-f]{32}")
OUTCOMES = ("succeeded", "failed", "cancelled")

# KEYS: meta, results, events. ARGV: index, result bytes, outcome, cost, baseline cost, now (ms).
_RECORD = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[3], 1)
redis.call('HINCRBYFLOAT', KEYS[1], 'cost_usd', ARGV[4])
redis.call('HINCRBYFLOAT', KEYS[1], 'baseline_cost_usd', ARGV[5])
redis.call('XADD', KEYS[3], '*', 'index', ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[3], ttl) end
local done = 0
for _, field in ipairs({'succeeded', 'failed', 'cancelled'}) do
  done = done + tonumber(redis.call('HGET', KEYS[1], field) or '0')
end
if done >= tonumber(redis.call('HGET', KEYS[1], 'total')) then
  redis.call('HSET', KEYS[1], 'finished_ms', ARGV[6])
end
return 1
"""


async def _r(value: Any) -> Any:
    """redis-py types hash commands as sync-or-async returning str; on this asyncio client (bytes
    responses) they are awaitables of bytes."""
    return await value if inspect.isawaitable(value) else value


def check_batch_id(batch_id: str) -> str:
    """The id, if it is one create() could have made; anything else never reaches a Redis key."""
    if not BATCH_ID.fullmatch(batch_id):
        raise InvalidInput(f"batch_id {batch_id[:80]!r} is not a batch id (batch_ followed by 32 hex digits)")
    return batch_id


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class JobSummary:
    batch_id: str
    tenant: str
    total: int
    succeeded: int
    failed: int
    cancelled: int
    cost_usd: float
    baseline_cost_usd: float
    created_ms: int
    finished_ms: int
    cancel_requested: bool

    @property
    def done(self) -> int:
        return self.succeeded + self.failed + self.cancelled


class JobStore:
    def __init__(self, client: redis.Redis, retention_s: int) -> None:
        self._redis = client
        self._retention_s = retention_s
        self._record = client.register_script(_RECORD)

    @classmethod
    def from_url(cls, url: str, retention_s: int) -> JobStore:
        return cls(redis.Redis.from_url(url), retention_s)

    async def create(self, tenant: str, items: list[batch_pb2.BatchItem]) -> str:
        batch_id = f"batch_{uuid.uuid4().hex}"
        key = PREFIX + batch_id
        now, index = _now_ms(), INDEX_PREFIX + tenant
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={
                    "tenant": tenant,
                    "total": len(items),
                    "created_ms": now,
                    "finished_ms": 0,
                    "cancel_requested": 0,
                    **dict.fromkeys(OUTCOMES, 0),
                    "cost_usd": 0,
                    "baseline_cost_usd": 0,
                },
            )
            pipe.hset(f"{key}:items", mapping={str(i): item.SerializeToString() for i, item in enumerate(items)})
            for suffix in ("", ":items"):
                pipe.expire(key + suffix, self._retention_s)
            pipe.zadd(index, {batch_id: now})
            pipe.zremrangebyscore(index, 0, now - self._retention_s * 1000)  # batches that have expired
            pipe.expire(index, self._retention_s)
            await pipe.execute()
        return batch_id

    async def batch_ids(self, tenant: str, limit: int) -> list[str]:
        """The tenant's most recent batch ids, newest first (some may have expired since)."""
        raw = await self._redis.zrevrange(INDEX_PREFIX + tenant, 0, limit - 1)
        return [member.decode() for member in raw]

    async def summary(self, batch_id: str, tenant: str) -> JobSummary:
        """The job's counters. Another tenant's batch is reported as unknown, not as forbidden."""
        raw = await _r(self._redis.hgetall(PREFIX + check_batch_id(batch_id)))
        if not raw or raw[b"tenant"].decode() != tenant:
            raise UnknownBatch(f"no batch {batch_id!r} for tenant {tenant!r}")
        f = {k.decode(): v.decode() for k, v in raw.items()}
        return JobSummary(
            batch_id,
            f["tenant"],
            int(f["total"]),
            int(f["succeeded"]),
            int(f["failed"]),
            int(f["cancelled"]),
            float(f["cost_usd"]),
            float(f["baseline_cost_usd"]),
            int(f["created_ms"]),
            int(f["finished_ms"]),
            f["cancel_requested"] == "1",
        )

    async def item(self, batch_id: str, index: int) -> batch_pb2.BatchItem | None:
        raw = await _r(self._redis.hget(f"{PREFIX}{batch_id}:items", str(index)))
        return None if raw is None else batch_pb2.BatchItem.FromString(raw)

    async def has_result(self, batch_id: str, index: int) -> bool:
        return bool(await _r(self._redis.hexists(f"{PREFIX}{batch_id}:results", str(index))))

    async def cancel_requested(self, batch_id: str) -> bool:
        return bool(await _r(self._redis.hget(PREFIX + batch_id, "cancel_requested")) == b"1")

    async def request_cancel(self, batch_id: str) -> None:
        await _r(self._redis.hset(PREFIX + batch_id, "cancel_requested", "1"))

    async def record(self, batch_id: str, result: batch_pb2.BatchResult) -> bool:
        """Writes the item's result unless one exists; True if this call wrote it."""
        answered = result.WhichOneof("outcome") in ("response", "embeddings")
        outcome = "succeeded" if answered else "failed"
        if result.HasField("error") and result.error.code == "CANCELLED":
            outcome = "cancelled"
        cost = None
        if result.HasField("response"):
            cost = result.response.cost
        elif result.HasField("embeddings"):
            cost = result.embeddings.cost
        key = PREFIX + batch_id
        written = await self._record(
            keys=[key, f"{key}:results", f"{key}:events"],
            args=[
                str(result.index),
                result.SerializeToString(),
                outcome,
                # The answer's cost plus what the item's failed attempts spent: the job adds up to inference's.
                repr((cost.cost_usd if cost else 0.0) + result.failed_attempts_cost_usd),
                repr(cost.baseline_cost_usd if cost else 0.0),
                _now_ms(),
            ],
        )
        if written == 1:
            await self._redis.expire(f"{key}:results", self._retention_s)
        return bool(written == 1)

    async def results(self, batch_id: str, follow: bool, block_ms: int = 1000) -> AsyncIterator[batch_pb2.BatchResult]:
        """Recorded results in completion order; with follow, waits for new ones until the job is finished."""
        key = f"{PREFIX}{batch_id}"
        last = "0-0"
        while True:
            finished = int(await _r(self._redis.hget(key, "finished_ms")) or 0) > 0
            reply = await self._redis.xread({f"{key}:events": last}, count=500, block=None if finished else block_ms)
            entries = reply[0][1] if reply else []
            for entry_id, fields in entries:
                last = entry_id
                raw = await _r(self._redis.hget(f"{key}:results", fields[b"index"]))
                if raw is not None:
                    yield batch_pb2.BatchResult.FromString(raw)
            if not entries and (finished or not follow):
                return

    async def close(self) -> None:
        await self._redis.aclose()


class UnknownBatch(NotFound):
    pass
