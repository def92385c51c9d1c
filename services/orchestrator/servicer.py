"""Proto adapter for the Orchestrator: caller and deadline in, pipeline out, budget settled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from costmesh.v1 import orchestrator_pb2, orchestrator_pb2_grpc
from services.common.apikeys import Metadata
from services.common.deadlines import remaining_s
from services.orchestrator.admission import Gatekeeper
from services.orchestrator.embed import Embeds, embed
from services.orchestrator.pipeline import Pipeline
from services.orchestrator.spend import ModelSpend, Reservation, track_model_spend


def metadata_of(context: grpc.aio.ServicerContext[Any, Any]) -> Metadata:
    return tuple(context.invocation_metadata() or ())


class OrchestratorServicer(orchestrator_pb2_grpc.OrchestratorServicer):
    def __init__(self, pipeline: Pipeline, gate: Gatekeeper, default_timeout_s: float, inference: Embeds) -> None:
        self._pipeline = pipeline
        self._gate = gate
        self._default_timeout_s = default_timeout_s
        self._inference = inference

    async def Complete(
        self, request: orchestrator_pb2.CompletionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> orchestrator_pb2.CompletionResponse:
        admitted, hold = await self._gate.admit(metadata_of(context), request)
        spend = track_model_spend()
        try:
            response = await self._pipeline.complete(admitted, remaining_s(context, self._default_timeout_s))
        except BaseException as exc:
            await self._gate.settle(hold, spent_on_failure(hold, spend))
            exc.spent_usd = spend.usd  # type: ignore[attr-defined]  # the interceptor's x-costmesh-spent-usd
            raise
        await self._gate.settle(hold, response.cost.cost_usd)
        return response

    async def CompleteStream(
        self, request: orchestrator_pb2.CompletionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[orchestrator_pb2.CompletionChunk]:
        admitted, hold = await self._gate.admit(metadata_of(context), request)
        spend = track_model_spend()
        try:
            async for chunk in self._pipeline.stream(admitted, remaining_s(context, self._default_timeout_s)):
                if chunk.WhichOneof("chunk") == "final":
                    await self._gate.settle(hold, chunk.final.cost.cost_usd)
                    hold = None  # settled: a client that hangs up after the last chunk changes nothing
                yield chunk
        except BaseException as exc:
            await self._gate.settle(hold, spent_on_failure(hold, spend))
            exc.spent_usd = spend.usd  # type: ignore[attr-defined]
            raise

    async def Embed(
        self, request: orchestrator_pb2.EmbeddingsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> orchestrator_pb2.EmbeddingsResponse:
        admitted, hold = await self._gate.admit_embeddings(metadata_of(context), request)
        spend = track_model_spend()
        try:
            response = await embed(self._inference, admitted, remaining_s(context, self._default_timeout_s))
        except BaseException as exc:
            await self._gate.settle(hold, spent_on_failure(hold, spend))
            exc.spent_usd = spend.usd  # type: ignore[attr-defined]
            raise
        await self._gate.settle(hold, response.cost.cost_usd)
        return response


def spent_on_failure(hold: Reservation | None, spend: ModelSpend) -> float:
    """What a failed or cancelled request costs its key: the model calls that answered, or the whole
    reservation when one was cut off mid-generation (a client must not spend past its budget by hanging up).
    A request refused before any model call costs nothing."""
    if hold is None:
        return 0.0
    return hold.usd if spend.uncertain else spend.usd
