"""Proto adapter for the Orchestrator: deadlines in, pipeline out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from costmesh.v1 import orchestrator_pb2, orchestrator_pb2_grpc
from services.common.deadlines import remaining_s
from services.orchestrator.core import Pipeline


class OrchestratorServicer(orchestrator_pb2_grpc.OrchestratorServicer):
    def __init__(self, pipeline: Pipeline, default_timeout_s: float) -> None:
        self._pipeline = pipeline
        self._default_timeout_s = default_timeout_s

    async def Complete(
        self, request: orchestrator_pb2.CompletionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> orchestrator_pb2.CompletionResponse:
        return await self._pipeline.complete(request, remaining_s(context, self._default_timeout_s))

    async def CompleteStream(
        self, request: orchestrator_pb2.CompletionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[orchestrator_pb2.CompletionChunk]:
        async for chunk in self._pipeline.stream(request, remaining_s(context, self._default_timeout_s)):
            yield chunk
