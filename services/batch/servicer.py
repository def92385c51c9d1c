"""Proto adapter for the Batch service: the caller's tenant (callers.py) in, the batch lane (api.py) out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from costmesh.v1 import batch_pb2, batch_pb2_grpc
from services.batch.api import BatchApi
from services.batch.backends.base import Priority
from services.batch.callers import BatchGate
from services.common.errors import InvalidInput

Context = grpc.aio.ServicerContext[Any, Any]


PRIORITIES: dict[int, Priority] = {
    batch_pb2.BATCH_PRIORITY_UNSPECIFIED: "normal",
    batch_pb2.BATCH_PRIORITY_HIGH: "high",
    batch_pb2.BATCH_PRIORITY_NORMAL: "normal",
    batch_pb2.BATCH_PRIORITY_LOW: "low",
}


def priority_of(value: int) -> Priority:
    """An unknown number (a newer client's) is INVALID_ARGUMENT, not a silent normal."""
    try:
        return PRIORITIES[value]
    except KeyError:
        raise InvalidInput(f"unknown priority {value}") from None


def metadata_of(context: Context) -> tuple[tuple[str, str | bytes], ...]:
    return tuple(context.invocation_metadata() or ())


class BatchServicer(batch_pb2_grpc.BatchServicer):
    def __init__(self, api: BatchApi, gate: BatchGate) -> None:
        self._api = api
        self._gate = gate

    async def SubmitBatch(self, request: batch_pb2.SubmitBatchRequest, context: Context) -> batch_pb2.BatchStatus:
        caller = await self._gate.caller(metadata_of(context), request.tenant)
        return await self._api.submit(
            caller.tenant,
            list(request.items),
            caller.key_id,
            priority=priority_of(request.priority),
            endpoint=request.endpoint,
        )

    async def GetBatch(self, request: batch_pb2.BatchRef, context: Context) -> batch_pb2.BatchStatus:
        caller = await self._gate.caller(metadata_of(context), request.tenant)
        return await self._api.status(caller.tenant, request.batch_id)

    async def StreamBatchResults(
        self, request: batch_pb2.BatchRef, context: Context
    ) -> AsyncIterator[batch_pb2.BatchResult]:
        caller = await self._gate.caller(metadata_of(context), request.tenant)
        async for result in self._api.results(caller.tenant, request.batch_id):
            yield result

    async def CancelBatch(self, request: batch_pb2.BatchRef, context: Context) -> batch_pb2.BatchStatus:
        caller = await self._gate.caller(metadata_of(context), request.tenant)
        return await self._api.cancel(caller.tenant, request.batch_id)

    async def ListBatches(
        self, request: batch_pb2.ListBatchesRequest, context: Context
    ) -> batch_pb2.ListBatchesResponse:
        caller = await self._gate.caller(metadata_of(context), request.tenant)
        return batch_pb2.ListBatchesResponse(batches=await self._api.recent(caller.tenant, request.limit))
