"""Uploaded batch input files and the gateway's record of each batch, in Redis, per tenant. No HTTP here.

  costmesh:file:<file id>        hash  tenant, purpose, filename, bytes, created_at, content
  costmesh:gw-batch:<batch id>   hash  tenant, input_file_id, endpoint, completion_window, metadata (JSON)

A batch's results live in the batch lane's own store; its output "file" is those results, read through
the orchestrator when asked for (`file-out-<batch id>`), so nothing is copied.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis

_FILE = "costmesh:file:"
_BATCH = "costmesh:gw-batch:"
OUTPUT_PREFIX = "file-out-"


@dataclass(frozen=True)
class StoredFile:
    id: str
    tenant: str
    purpose: str
    filename: str
    bytes: int
    created_at: int

    def as_openai(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
        }


@dataclass(frozen=True)
class BatchRecord:
    batch_id: str
    tenant: str
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, str]


def output_file_id(batch_id: str) -> str:
    return f"{OUTPUT_PREFIX}{batch_id}"


class FileStore:
    def __init__(self, client: redis.Redis, retention_s: int) -> None:
        self._redis = client
        self._retention_s = retention_s

    async def put(self, tenant: str, purpose: str, filename: str, content: bytes) -> StoredFile:
        stored = StoredFile(f"file-{secrets.token_hex(12)}", tenant, purpose, filename, len(content), int(time.time()))
        key = _FILE + stored.id
        fields = {
            "tenant": tenant,
            "purpose": purpose,
            "filename": filename,
            "bytes": str(stored.bytes),
            "created_at": str(stored.created_at),
        }
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={**fields, "content": content})
            pipe.expire(key, self._retention_s)
            await pipe.execute()
        return stored

    async def get(self, tenant: str, file_id: str) -> StoredFile | None:
        """The file's description; None when unknown or another tenant's (which is not told apart)."""
        raw = await self._redis.hmget(_FILE + file_id, ["tenant", "purpose", "filename", "bytes", "created_at"])  # type: ignore[misc]
        if raw[0] is None or raw[0].decode() != tenant:
            return None
        owner, purpose, filename, size, created = (v.decode() for v in raw)
        return StoredFile(file_id, owner, purpose, filename, int(size), int(created))

    async def content(self, tenant: str, file_id: str) -> bytes | None:
        if await self.get(tenant, file_id) is None:
            return None
        data: bytes | None = await self._redis.hget(_FILE + file_id, "content")  # type: ignore[misc]
        return data

    async def record_batch(self, record: BatchRecord) -> None:
        key = _BATCH + record.batch_id
        fields = {
            "tenant": record.tenant,
            "input_file_id": record.input_file_id,
            "endpoint": record.endpoint,
            "completion_window": record.completion_window,
            "metadata": json.dumps(record.metadata),
        }
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=fields)
            pipe.expire(key, self._retention_s)
            await pipe.execute()

    async def batch(self, tenant: str, batch_id: str) -> BatchRecord | None:
        raw = await self._redis.hgetall(_BATCH + batch_id)  # type: ignore[misc]
        if not raw or raw[b"tenant"].decode() != tenant:
            return None
        f = {k.decode(): v.decode() for k, v in raw.items()}
        return BatchRecord(
            batch_id, f["tenant"], f["input_file_id"], f["endpoint"], f["completion_window"], json.loads(f["metadata"])
        )
