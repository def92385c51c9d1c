"""Starts real grpc.aio servers in-process on port 0, wired like `costmesh up` wires them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc
from prometheus_client import CollectorRegistry

from services.cache.core import CacheCore, CacheMetrics
from services.cache.server import build_server as build_cache
from services.cache.settings import CacheSettings
from services.common.interceptors import client_channel
from services.common.runtime import Service
from services.compressor.server import build_server as build_compressor
from services.compressor.settings import CompressorSettings
from services.inference.backends.base import ChatBackend
from services.inference.core import InferenceCore, InferenceMetrics, TierConfig
from services.inference.domain import Tier
from services.inference.server import build_server as build_inference
from services.inference.settings import InferenceSettings
from services.orchestrator.server import build_server as build_orchestrator
from services.orchestrator.settings import OrchestratorSettings
from services.router.server import build_server as build_router
from services.router.settings import RouterSettings
from services.summarizer.server import build_server as build_summarizer
from services.summarizer.settings import SummarizerSettings
from tests.unit.fakes import MemoryExactStore


def inference_core(small: Sequence[ChatBackend], large: Sequence[ChatBackend]) -> InferenceCore:
    return InferenceCore(
        {Tier.SMALL: TierConfig(small, "gpt-4o-mini"), Tier.LARGE: TierConfig(large, "gpt-4o")},
        InferenceMetrics(CollectorRegistry()),
    )


@dataclass
class Mesh:
    services: dict[str, Service] = field(default_factory=dict)
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    def address(self, name: str) -> str:
        return f"127.0.0.1:{self.services[name].port}"

    def channel(self, name: str) -> grpc.aio.Channel:
        """A channel to one service that sends the mesh token, open until stop(). Kept here because a
        channel with interceptors that nothing references is closed by the garbage collector."""
        channel = client_channel(self.address(name))
        self.channels.append(channel)
        return channel

    async def start(self, name: str, service: Service) -> Service:
        await service.server.start()
        await service.refresh_health()
        self.services[name] = service
        return service

    async def stop(self) -> None:
        for channel in self.channels:
            await channel.close()
        for service in reversed(list(self.services.values())):
            await service.stop(0)


async def start_mesh(
    small: Sequence[ChatBackend],
    large: Sequence[ChatBackend],
    store: MemoryExactStore,
    compressor: CompressorSettings | None = None,
    router: RouterSettings | None = None,
    inference: InferenceCore | None = None,  # a core the test holds (to read what inference spent)
    **orchestrator_overrides: object,
) -> Mesh:
    mesh = Mesh()
    try:
        core = inference or inference_core(small, large)
        await mesh.start("inference", await build_inference(InferenceSettings(port=0), core))
        # The rules by default: deterministic routes for tests about the other stages.
        await mesh.start("router", await build_router(router or RouterSettings(port=0, classifier="rules")))
        cache = CacheCore(store, None, CacheMetrics(CollectorRegistry()), 86400, 0.92)
        await mesh.start("cache", await build_cache(CacheSettings(port=0), cache))
        # By default model-free methods; tests/integration passes LLMLingua and the embedding model.
        compressor = compressor or CompressorSettings(port=0, method="dedupe", examples="select", min_tokens=0)
        await mesh.start("compressor", await build_compressor(compressor))
        await mesh.start(
            "summarizer",
            await build_summarizer(SummarizerSettings(port=0, inference_addr=mesh.address("inference"), redis_url="")),
        )
        settings = OrchestratorSettings(
            port=0,
            router_addr=mesh.address("router"),
            cache_addr=mesh.address("cache"),
            compressor_addr=mesh.address("compressor"),
            summarizer_addr=mesh.address("summarizer"),
            inference_addr=mesh.address("inference"),
            **orchestrator_overrides,  # type: ignore[arg-type]
        )
        await mesh.start("orchestrator", await build_orchestrator(settings))
    except BaseException:
        await mesh.stop()  # a service that failed to build must not leave the others serving
        raise
    return mesh
