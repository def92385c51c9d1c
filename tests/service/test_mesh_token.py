"""The mesh token on real grpc.aio servers: stage services serve only callers that carry it (issue 16)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client import CollectorRegistry

from costmesh.v1 import (
    cache_pb2,
    cache_pb2_grpc,
    common_pb2,
    inference_pb2,
    inference_pb2_grpc,
    router_pb2,
    router_pb2_grpc,
)
from services.cache.core import CacheCore, CacheMetrics
from services.cache.server import build_server as build_cache
from services.cache.settings import CacheSettings
from services.common.interceptors import UNAUTHENTICATED_MESSAGE, blocking_channel, client_channel
from services.common.meshauth import MESH_TOKEN_ENV
from services.common.runtime import Service, new_service
from services.inference.server import build_server as build_inference
from services.inference.settings import InferenceSettings
from services.router.settings import RouterSettings
from tests.service.fakes import EchoBackend
from tests.service.mesh import inference_core
from tests.unit.fakes import MemoryExactStore

USER = common_pb2.ROLE_USER
KEY = cache_pb2.CacheKeyMaterial(tenant="victim", messages=[common_pb2.Message(role=USER, content="Q?")])
ANSWER = cache_pb2.CachedAnswer(answer="planted", model="m", tier=common_pb2.TIER_SMALL, finish_reason="stop")


async def serving(service: Service) -> AsyncIterator[str]:
    await service.server.start()
    await service.refresh_health()
    try:
        yield f"127.0.0.1:{service.port}"
    finally:
        await service.stop(0)


@pytest.fixture
def store() -> MemoryExactStore:
    return MemoryExactStore()


@pytest.fixture
async def cache(store: MemoryExactStore) -> AsyncIterator[tuple[str, Service]]:
    core = CacheCore(store, None, CacheMetrics(CollectorRegistry()), 86400, 0.92)
    service = await build_cache(CacheSettings(port=0), core)
    async for address in serving(service):
        yield address, service


def rejected(exc: pytest.ExceptionInfo[grpc.aio.AioRpcError]) -> bool:
    return exc.value.code() is grpc.StatusCode.UNAUTHENTICATED and exc.value.details() == UNAUTHENTICATED_MESSAGE


@pytest.mark.parametrize("token", ["", "wrong-token"])
async def test_cache_rpcs_without_the_token_are_unauthenticated_and_change_nothing(
    cache: tuple[str, Service], store: MemoryExactStore, mesh_token: str, token: str
) -> None:
    address, service = cache
    async with client_channel(address, token=token) as channel:
        stub = cache_pb2_grpc.CacheStub(channel)
        calls: list[Any] = [
            stub.Store(cache_pb2.StoreRequest(key=KEY, answer=ANSWER)),
            stub.Lookup(cache_pb2.LookupRequest(key=KEY)),
            stub.Invalidate(cache_pb2.InvalidateRequest(tenant="victim", all=True)),
        ]
        for call in calls:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call
            assert rejected(err)
    async with client_channel(address, token=mesh_token) as channel:  # the mesh itself still gets through
        miss = await cache_pb2_grpc.CacheStub(channel).Lookup(cache_pb2.LookupRequest(key=KEY))
    assert miss.decision.kind == common_pb2.CACHE_HIT_KIND_MISS  # the planted answer never arrived
    for method in ("Store", "Lookup", "Invalidate"):
        labels = {"service": "cache", "method": f"/costmesh.v1.Cache/{method}", "code": "UNAUTHENTICATED"}
        assert service.registry.get_sample_value("costmesh_rpc_total", labels) == 1


async def test_health_and_reflection_stay_open(cache: tuple[str, Service]) -> None:
    address, _ = cache
    async with client_channel(address, token="") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        listed = [
            r async for r in stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        ]
    assert "costmesh.v1.Cache" in {s.name for s in listed[0].list_services_response.service}


async def test_streams_carry_the_token_and_are_refused_without_it(mesh_token: str) -> None:
    core = inference_core([EchoBackend()], [EchoBackend()])
    request = inference_pb2.GenerateRequest(
        tenant="acme", tier=common_pb2.TIER_SMALL, messages=[common_pb2.Message(role=USER, content="hi")]
    )
    async for address in serving(await build_inference(InferenceSettings(port=0), core)):
        async with client_channel(address) as channel:  # this process's token, from the environment
            chunks = [c async for c in inference_pb2_grpc.InferenceStub(channel).GenerateStream(request)]
        assert chunks[-1].WhichOneof("chunk") == "final"
        async with client_channel(address, token="") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                _ = [c async for c in inference_pb2_grpc.InferenceStub(channel).GenerateStream(request)]
        assert rejected(err)


def blocking_lookup(address: str, token: str) -> cache_pb2.LookupResponse:
    with blocking_channel(address, token) as channel:
        reply: cache_pb2.LookupResponse = cache_pb2_grpc.CacheStub(channel).Lookup(
            cache_pb2.LookupRequest(key=KEY), timeout=10
        )
    return reply


async def test_blocking_channel_sends_the_token(cache: tuple[str, Service], mesh_token: str) -> None:
    address, _ = cache
    # In a thread: a blocking call on this event loop would stall the server it calls.
    reply = await asyncio.to_thread(blocking_lookup, address, mesh_token)
    assert reply.decision.kind == common_pb2.CACHE_HIT_KIND_MISS
    with pytest.raises(grpc.RpcError) as err:
        await asyncio.to_thread(blocking_lookup, address, "wrong")
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]  # a grpc.Call too


class Router(router_pb2_grpc.RouterServicer):
    """Stands in for a service that authenticates its callers itself."""

    async def Route(  # noqa: N802 - the generated servicer names its methods so
        self, request: router_pb2.RouteRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> router_pb2.RouteResponse:
        return router_pb2.RouteResponse(decision=common_pb2.RouteDecision(reason="served"))


async def test_a_public_prefix_opens_only_the_methods_under_it() -> None:
    service = new_service(
        "router", RouterSettings(port=0), ["costmesh.v1.Router"], public_prefixes=("/costmesh.v1.Router/Route",)
    )
    router_pb2_grpc.add_RouterServicer_to_server(Router(), service.server)
    async for address in serving(service):
        async with client_channel(address, token="") as channel:
            stub = router_pb2_grpc.RouterStub(channel)
            assert (await stub.Route(router_pb2.RouteRequest())).decision.reason == "served"
            with pytest.raises(grpc.aio.AioRpcError) as closed:
                await stub.Assess(router_pb2.AssessRequest())
            assert rejected(closed)


async def test_a_service_without_a_token_trusts_no_caller(
    monkeypatch: pytest.MonkeyPatch, store: MemoryExactStore
) -> None:
    monkeypatch.delenv(MESH_TOKEN_ENV)
    core = CacheCore(store, None, CacheMetrics(CollectorRegistry()), 86400, 0.92)
    async for address in serving(await build_cache(CacheSettings(port=0), core)):
        async with client_channel(address, token="") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await cache_pb2_grpc.CacheStub(channel).Lookup(cache_pb2.LookupRequest(key=KEY))
        assert rejected(err)
