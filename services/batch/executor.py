"""How the consumer runs one request: through the orchestrator on the batch lane, so it passes the same
cache, pruning, compression and routing stages as real-time traffic but draws on the batch quota."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import grpc

from costmesh.v1 import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from services.common.errors import LIMIT, RETRY_AFTER, SPENT_USD, trailer, trailer_number
from services.common.interceptors import client_channel

T = TypeVar("T")

# Worth retrying later: the lane's rate limit, a backend down, a deadline. Anything else is the item's error.
RETRYABLE = frozenset(
    {grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
)


def retryable(e: grpc.aio.AioRpcError) -> bool:
    """The lane's quota refills within seconds; a key's daily budget does not: an item over it fails with
    that error rather than holding a consumer slot, retrying, until midnight UTC."""
    return trailer(e, LIMIT) != "budget" and e.code() in RETRYABLE


class ItemFailed(Exception):
    def __init__(
        self, code: str, message: str, retryable: bool, retry_after_s: float = 0.0, spent_usd: float = 0.0
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable
        self.retry_after_s = retry_after_s  # when the lane's token bucket has room again (rate limits)
        self.spent_usd = spent_usd  # model calls of this attempt that answered before it failed


class Executor(Protocol):
    async def complete(self, request: orchestrator_pb2.CompletionRequest) -> orchestrator_pb2.CompletionResponse:
        """The answer, or ItemFailed."""
        ...

    async def embed(self, request: orchestrator_pb2.EmbeddingsRequest) -> orchestrator_pb2.EmbeddingsResponse:
        """The embeddings, or ItemFailed."""
        ...

    async def close(self) -> None: ...


def item_failed(e: grpc.aio.AioRpcError) -> ItemFailed:
    return ItemFailed(
        e.code().name,
        e.details() or "",
        retryable(e),
        retry_after_s=trailer_number(e, RETRY_AFTER),
        spent_usd=trailer_number(e, SPENT_USD),
    )


class MeshExecutor:
    def __init__(self, orchestrator_addr: str, timeout_s: float) -> None:
        self._channel = client_channel(orchestrator_addr)
        self._stub = orchestrator_pb2_grpc.OrchestratorStub(self._channel)
        self._timeout_s = timeout_s

    async def complete(self, request: orchestrator_pb2.CompletionRequest) -> orchestrator_pb2.CompletionResponse:
        on_lane = orchestrator_pb2.CompletionRequest()
        on_lane.CopyFrom(request)
        response: orchestrator_pb2.CompletionResponse = await self._on_batch_lane(self._stub.Complete, on_lane)
        return response

    async def embed(self, request: orchestrator_pb2.EmbeddingsRequest) -> orchestrator_pb2.EmbeddingsResponse:
        on_lane = orchestrator_pb2.EmbeddingsRequest()
        on_lane.CopyFrom(request)
        response: orchestrator_pb2.EmbeddingsResponse = await self._on_batch_lane(self._stub.Embed, on_lane)
        return response

    async def _on_batch_lane(
        self,
        call: Callable[..., Awaitable[T]],
        request: orchestrator_pb2.CompletionRequest | orchestrator_pb2.EmbeddingsRequest,
    ) -> T:
        """The call with the request (a copy) on the batch lane; a failure as ItemFailed."""
        request.lane = common_pb2.LANE_BATCH
        try:
            return await call(request, timeout=self._timeout_s)
        except grpc.aio.AioRpcError as e:
            raise item_failed(e) from e

    async def close(self) -> None:
        await self._channel.close(None)
