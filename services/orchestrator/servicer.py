"""Proto adapter for the Orchestrator: deadlines in, pipeline out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from costmesh.v1 import orchestrator_pb2, orchestrator_pb2_grpc
from services.batch.api import BatchApi
from services.common.deadlines import remaining_s
from services.common.errors import MissingConfig
from services.orchestrator.pipeline import Pipeline


class OrchestratorServicer(orchestrator_pb2_grpc.OrchestratorServicer):
    def __init__(self, pipeline: Pipeline, default_timeout_s: float, batch: BatchApi | None = None) -> None:
        self._pipeline = pipeline
        self._default_timeout_s = default_timeout_s
        self._batch = batch

    def _batch_api(self) -> BatchApi:
        if self._batch is None:
            raise MissingConfig("the batch lane is off: set COSTMESH_ORCHESTRATOR_BATCH_REDIS_URL")
        return self._batch

    async def Complete(
        self, request: orchestrator_pb2.CompletionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> orchestrator_pb2.CompletionResponse:
        return await self._pipeline.complete(request, remaining_s(context, self._default_timeout_s))

    async def CompleteStream(
        self, request: orchestrator_pb2.CompletionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[orchestrator_pb2.CompletionChunk]:
        async for chunk in self._pipeline.stream(request, remaining_s(context, self._default_timeout_s)):
            yield chunk

    async def SubmitBatch(
        self, request: orchestrator_pb2.SubmitBatchRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> orchestrator_pb2.BatchStatus:
        return await self._batch_api().submit(request.tenant, list(request.items))

    async def GetBatch(
        self, request: orchestrator_pb2.BatchRef, context: grpc.aio.ServicerContext[Any, Any]
    ) -> orchestrator_pb2.BatchStatus:
        return await self._batch_api().status(request.tenant, request.batch_id)

    async def StreamBatchResults(
        self, request: orchestrator_pb2.BatchRef, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[orchestrator_pb2.BatchResult]:
        async for result in self._batch_api().results(request.tenant, request.batch_id):
            yield result

    async def CancelBatch(
        self, request: orchestrator_pb2.BatchRef, context: grpc.aio.ServicerContext[Any, Any]
    ) -> orchestrator_pb2.BatchStatus:
        return await self._batch_api().cancel(request.tenant, request.batch_id)
