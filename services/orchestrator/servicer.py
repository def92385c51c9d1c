"""Proto adapter for the Orchestrator: caller and deadline in, pipeline out, budget settled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from costmesh.v1 import orchestrator_pb2, orchestrator_pb2_grpc
from services.batch.api import BatchApi
from services.common.deadlines import remaining_s
from services.common.errors import InvalidInput, MissingConfig
from services.orchestrator.admission import Gatekeeper, Metadata
from services.orchestrator.pipeline import Pipeline
from services.orchestrator.spend import Reservation


def metadata_of(context: grpc.aio.ServicerContext[Any, Any]) -> Metadata:
    return tuple(context.invocation_metadata() or ())


class OrchestratorServicer(orchestrator_pb2_grpc.OrchestratorServicer):
    def __init__(
        self, pipeline: Pipeline, gate: Gatekeeper, default_timeout_s: float, batch: BatchApi | None = None
    ) -> None:
        self._pipeline = pipeline
        self._gate = gate
        self._default_timeout_s = default_timeout_s
        self._batch = batch

    def _batch_api(self) -> BatchApi:
        if self._batch is None:
            raise MissingConfig("the batch lane is off: set COSTMESH_ORCHESTRATOR_BATCH_REDIS_URL")
        return self._batch

    async def Complete(
        self, request: orchestrator_pb2.CompletionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> orchestrator_pb2.CompletionResponse:
        admitted, hold = await self._gate.admit(metadata_of(context), request)
        spent = Spent(hold)
        try:
            response = await self._pipeline.complete(admitted, remaining_s(context, self._default_timeout_s))
            spent.usd = response.cost.cost_usd
            return response
        except InvalidInput:
            spent.usd = 0.0  # refused before any model call
            raise
        finally:
            await self._gate.settle(hold, spent.usd)

    async def CompleteStream(
        self, request: orchestrator_pb2.CompletionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[orchestrator_pb2.CompletionChunk]:
        admitted, hold = await self._gate.admit(metadata_of(context), request)
        spent = Spent(hold)
        try:
            async for chunk in self._pipeline.stream(admitted, remaining_s(context, self._default_timeout_s)):
                if chunk.WhichOneof("chunk") == "final":
                    spent.usd = chunk.final.cost.cost_usd
                yield chunk
        except InvalidInput:
            spent.usd = 0.0
            raise
        finally:
            await self._gate.settle(hold, spent.usd)

    async def SubmitBatch(
        self, request: orchestrator_pb2.SubmitBatchRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> orchestrator_pb2.BatchStatus:
        tenant, key_id = await self._gate.batch_caller(metadata_of(context), request.tenant)
        return await self._batch_api().submit(tenant, list(request.items), key_id)

    async def GetBatch(
        self, request: orchestrator_pb2.BatchRef, context: grpc.aio.ServicerContext[Any, Any]
    ) -> orchestrator_pb2.BatchStatus:
        tenant, _ = await self._gate.batch_caller(metadata_of(context), request.tenant)
        return await self._batch_api().status(tenant, request.batch_id)

    async def StreamBatchResults(
        self, request: orchestrator_pb2.BatchRef, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[orchestrator_pb2.BatchResult]:
        tenant, _ = await self._gate.batch_caller(metadata_of(context), request.tenant)
        async for result in self._batch_api().results(tenant, request.batch_id):
            yield result

    async def CancelBatch(
        self, request: orchestrator_pb2.BatchRef, context: grpc.aio.ServicerContext[Any, Any]
    ) -> orchestrator_pb2.BatchStatus:
        tenant, _ = await self._gate.batch_caller(metadata_of(context), request.tenant)
        return await self._batch_api().cancel(tenant, request.batch_id)


class Spent:
    """What a request ends up costing its key. Until the pipeline says otherwise, the whole reservation: a
    request cancelled or failed after its model call started cannot be proven cheaper, and a client must
    not spend past its budget by hanging up before the answer."""

    def __init__(self, hold: Reservation | None) -> None:
        self.usd = hold.usd if hold else 0.0
