"""What the pipeline needs from the other services, as a Protocol (the gRPC version is in clients.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from costmesh.v1 import (
    cache_pb2,
    compressor_pb2,
    inference_pb2,
    router_pb2,
    summarizer_pb2,
)


class Stages(Protocol):
    """One call per stage; each takes the timeout the pipeline grants it and raises on failure."""

    async def lookup(self, request: cache_pb2.LookupRequest, timeout_s: float) -> cache_pb2.LookupResponse: ...

    async def store(self, request: cache_pb2.StoreRequest, timeout_s: float) -> cache_pb2.StoreResponse: ...

    async def route(self, request: router_pb2.RouteRequest, timeout_s: float) -> router_pb2.RouteResponse: ...

    async def assess(self, request: router_pb2.AssessRequest, timeout_s: float) -> router_pb2.AssessResponse: ...

    async def prune(self, request: summarizer_pb2.PruneRequest, timeout_s: float) -> summarizer_pb2.PruneResponse: ...

    async def compress(
        self, request: compressor_pb2.CompressRequest, timeout_s: float
    ) -> compressor_pb2.CompressResponse: ...


class CacheInvalidator(Protocol):
    """Removes a cache entry from both tiers (the spot-checker evicts what the large tier disagrees with)."""

    async def invalidate(
        self, request: cache_pb2.InvalidateRequest, timeout_s: float
    ) -> cache_pb2.InvalidateResponse: ...


class Generator(Protocol):
    """The model call, unary or streamed (deltas, then one final GenerateResponse)."""

    async def generate(
        self, request: inference_pb2.GenerateRequest, timeout_s: float
    ) -> inference_pb2.GenerateResponse: ...

    def generate_stream(
        self, request: inference_pb2.GenerateRequest, timeout_s: float
    ) -> AsyncIterator[str | inference_pb2.GenerateResponse]: ...
