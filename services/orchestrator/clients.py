"""gRPC implementations of the pipeline's stages: one channel per downstream service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator

import grpc

from costmesh.v1 import (
    cache_pb2,
    cache_pb2_grpc,
    compressor_pb2,
    compressor_pb2_grpc,
    inference_pb2,
    inference_pb2_grpc,
    router_pb2,
    router_pb2_grpc,
    summarizer_pb2,
    summarizer_pb2_grpc,
)
from services.common.errors import (
    LIMIT,
    RETRY_AFTER,
    BackendUnavailable,
    BudgetExceeded,
    CostmeshError,
    InvalidInput,
    RateLimited,
    trailer,
    trailer_number,
)
from services.common.health import serving
from services.common.interceptors import client_channel
from services.orchestrator.settings import OrchestratorSettings
from services.orchestrator.spend import model_spend

CUT_OFF = frozenset({grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED})

_PASS_THROUGH: dict[grpc.StatusCode, type[CostmeshError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidInput,
    grpc.StatusCode.RESOURCE_EXHAUSTED: RateLimited,
    grpc.StatusCode.DEADLINE_EXCEEDED: BudgetExceeded,
}


def domain_error(exc: grpc.aio.AioRpcError, service: str) -> CostmeshError:
    """A downstream status becomes ours: bad input stays bad input, the rest is 'unavailable'. A rate limit
    keeps its `retry-after` and `x-costmesh-limit` trailers, so our caller learns when to come back."""
    message = f"{service}: {exc.details() or exc.code().name}"
    if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return RateLimited(message, retry_after_s=trailer_number(exc, RETRY_AFTER), limit=trailer(exc, LIMIT))
    kind = _PASS_THROUGH.get(exc.code(), BackendUnavailable)
    return kind(message)


def _cut_off(exc: BaseException) -> bool:
    """The call ended before its answer, perhaps mid-generation (its cost is unknown)."""
    if isinstance(exc, (asyncio.CancelledError, TimeoutError, GeneratorExit)):
        return True
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() in CUT_OFF


@contextlib.contextmanager
def charged() -> Iterator[Callable[[float], None]]:
    """Around one model call: its cost goes to the request's ModelSpend (spend.py) once it answers."""
    spend = model_spend()

    def charge(usd: float) -> None:
        if spend is not None:
            spend.usd += usd

    try:
        yield charge
    except BaseException as exc:
        if spend is not None and _cut_off(exc):
            spend.uncertain = True
        raise


class GrpcStages:
    def __init__(self, settings: OrchestratorSettings) -> None:
        self._channels = {
            "router": client_channel(settings.router_addr),
            "cache": client_channel(settings.cache_addr),
            "compressor": client_channel(settings.compressor_addr),
            "summarizer": client_channel(settings.summarizer_addr),
            "inference": client_channel(settings.inference_addr),
        }
        self._router = router_pb2_grpc.RouterStub(self._channels["router"])
        self._cache = cache_pb2_grpc.CacheStub(self._channels["cache"])
        self._compressor = compressor_pb2_grpc.CompressorStub(self._channels["compressor"])
        self._summarizer = summarizer_pb2_grpc.SummarizerStub(self._channels["summarizer"])
        self._inference = inference_pb2_grpc.InferenceStub(self._channels["inference"])

    async def lookup(self, request: cache_pb2.LookupRequest, timeout_s: float) -> cache_pb2.LookupResponse:
        return await self._cache.Lookup(request, timeout=timeout_s)

    async def store(self, request: cache_pb2.StoreRequest, timeout_s: float) -> cache_pb2.StoreResponse:
        return await self._cache.Store(request, timeout=timeout_s)

    async def invalidate(self, request: cache_pb2.InvalidateRequest, timeout_s: float) -> cache_pb2.InvalidateResponse:
        return await self._cache.Invalidate(request, timeout=timeout_s)

    async def route(self, request: router_pb2.RouteRequest, timeout_s: float) -> router_pb2.RouteResponse:
        return await self._router.Route(request, timeout=timeout_s)

    async def assess(self, request: router_pb2.AssessRequest, timeout_s: float) -> router_pb2.AssessResponse:
        return await self._router.Assess(request, timeout=timeout_s)

    async def prune(self, request: summarizer_pb2.PruneRequest, timeout_s: float) -> summarizer_pb2.PruneResponse:
        with charged() as charge:  # the summaries it asks the cheap tier for are the request's
            response: summarizer_pb2.PruneResponse = await self._summarizer.Prune(request, timeout=timeout_s)
            charge(response.cost.cost_usd)
            return response

    async def compress(
        self, request: compressor_pb2.CompressRequest, timeout_s: float
    ) -> compressor_pb2.CompressResponse:
        return await self._compressor.Compress(request, timeout=timeout_s)

    async def generate(
        self, request: inference_pb2.GenerateRequest, timeout_s: float
    ) -> inference_pb2.GenerateResponse:
        try:
            with charged() as charge:
                response: inference_pb2.GenerateResponse = await self._inference.Generate(request, timeout=timeout_s)
                charge(response.cost.cost_usd)
                return response
        except grpc.aio.AioRpcError as exc:
            raise domain_error(exc, "inference") from exc

    async def generate_stream(
        self, request: inference_pb2.GenerateRequest, timeout_s: float
    ) -> AsyncIterator[str | inference_pb2.GenerateResponse]:
        try:
            with charged() as charge:
                async for chunk in self._inference.GenerateStream(request, timeout=timeout_s):
                    if chunk.WhichOneof("chunk") == "final":
                        charge(chunk.final.cost.cost_usd)
                    yield chunk.delta if chunk.WhichOneof("chunk") == "delta" else chunk.final
        except grpc.aio.AioRpcError as exc:
            raise domain_error(exc, "inference") from exc

    async def embed(self, request: inference_pb2.EmbedRequest, timeout_s: float) -> inference_pb2.EmbedResponse:
        try:
            with charged() as charge:
                response: inference_pb2.EmbedResponse = await self._inference.Embed(request, timeout=timeout_s)
                charge(response.cost.cost_usd)
                return response
        except grpc.aio.AioRpcError as exc:
            raise domain_error(exc, "inference") from exc

    async def prices(self) -> inference_pb2.PricesResponse:
        try:
            return await self._inference.Prices(inference_pb2.PricesRequest(), timeout=5.0)
        except grpc.aio.AioRpcError as exc:
            raise domain_error(exc, "inference") from exc

    async def inference_serving(self) -> bool:
        return await serving(self._channels["inference"], "costmesh.v1.Inference")

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close(None)
