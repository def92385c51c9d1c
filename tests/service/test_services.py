"""Each service on a real grpc.aio server: status codes, health, reflection."""

from __future__ import annotations

from collections.abc import AsyncIterator

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
from services.common.interceptors import client_channel
from services.common.runtime import Service
from services.inference.server import build_server as build_inference
from services.inference.settings import InferenceSettings
from services.router.server import build_server as build_router
from services.router.settings import RouterSettings
from tests.service.fakes import CrashingBackend, DeadBackend, EchoBackend
from tests.service.mesh import inference_core
from tests.unit.fakes import MemoryExactStore, MemorySemanticIndex

USER = common_pb2.ROLE_USER


async def started(service: Service) -> AsyncIterator[grpc.aio.Channel]:
    await service.server.start()
    await service.refresh_health()
    channel = client_channel(f"127.0.0.1:{service.port}")
    try:
        yield channel
    finally:
        await channel.close()
        await service.stop(0)


@pytest.fixture
async def router() -> AsyncIterator[grpc.aio.Channel]:
    async for channel in started(await build_router(RouterSettings(port=0))):
        yield channel


@pytest.fixture
async def cache_store() -> MemoryExactStore:
    return MemoryExactStore()


@pytest.fixture
async def cache(cache_store: MemoryExactStore) -> AsyncIterator[grpc.aio.Channel]:
    core = CacheCore(cache_store, None, CacheMetrics(CollectorRegistry()), 86400, 0.92)
    async for channel in started(await build_cache(CacheSettings(port=0), core)):
        yield channel


async def health(channel: grpc.aio.Channel, service: str = "") -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service))
    return int(reply.status)


async def test_router_routes_and_reports_features(router: grpc.aio.Channel) -> None:
    reply = await router_pb2_grpc.RouterStub(router).Route(
        router_pb2.RouteRequest(tenant="acme", messages=[common_pb2.Message(role=USER, content="Hi there?")])
    )
    assert reply.decision.tier == common_pb2.TIER_SMALL
    assert reply.decision.classifier == "rules"
    assert reply.features["questions"] == 1.0


@pytest.mark.parametrize(
    ("request_", "detail"),
    [
        (router_pb2.RouteRequest(tenant="", messages=[common_pb2.Message(role=USER, content="x")]), "tenant"),
        (router_pb2.RouteRequest(tenant="acme", messages=[common_pb2.Message(content="x")]), "role"),
        (router_pb2.RouteRequest(tenant="acme"), "user message"),
    ],
)
async def test_router_bad_input_is_invalid_argument(
    router: grpc.aio.Channel, request_: router_pb2.RouteRequest, detail: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await router_pb2_grpc.RouterStub(router).Route(request_)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert detail in (err.value.details() or "")


async def test_health_and_reflection(router: grpc.aio.Channel) -> None:
    assert await health(router) == health_pb2.HealthCheckResponse.SERVING
    assert await health(router, "costmesh.v1.Router") == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(router)
    responses = [
        r async for r in stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    ]
    names = {s.name for s in responses[0].list_services_response.service}
    assert {"costmesh.v1.Router", "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= names


async def test_cache_store_lookup_invalidate(cache: grpc.aio.Channel) -> None:
    stub = cache_pb2_grpc.CacheStub(cache)
    key = cache_pb2.CacheKeyMaterial(tenant="acme", messages=[common_pb2.Message(role=USER, content="Q?")])
    miss = await stub.Lookup(cache_pb2.LookupRequest(key=key))
    assert miss.decision.kind == common_pb2.CACHE_HIT_KIND_MISS
    answer = cache_pb2.CachedAnswer(
        answer="A.", model="m", tier=common_pb2.TIER_SMALL, finish_reason="stop", baseline_cost_usd=0.01
    )
    stored = await stub.Store(cache_pb2.StoreRequest(key=key, answer=answer))
    assert stored.stored, stored.reason
    hit = await stub.Lookup(cache_pb2.LookupRequest(key=key))
    assert hit.decision.kind == common_pb2.CACHE_HIT_KIND_EXACT
    assert hit.answer.answer == "A."
    assert hit.answer.baseline_cost_usd == pytest.approx(0.01)
    removed = await stub.Invalidate(cache_pb2.InvalidateRequest(tenant="acme", all=True))
    assert removed.removed == 1
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Invalidate(cache_pb2.InvalidateRequest(tenant="acme"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("values", "detail"),
    [
        ([float("nan")] * 384, "finite"),
        ([1.0] * 383 + [float("inf")], "finite"),
        ([0.1] * 383 + [float("-inf")], "finite"),
        ([0.1] * 383, "must have 384 values"),
        ([0.1] * 768, "must have 384 values"),
    ],
)
async def test_cache_refuses_non_finite_or_wrongly_sized_embeddings(values: list[float], detail: str) -> None:
    store, index = MemoryExactStore(), MemorySemanticIndex()
    core = CacheCore(store, index, CacheMetrics(CollectorRegistry()), 86400, 0.5)
    key = cache_pb2.CacheKeyMaterial(tenant="acme", messages=[common_pb2.Message(role=USER, content="Q?")])
    answer = cache_pb2.CachedAnswer(answer="A.", model="m", tier=common_pb2.TIER_SMALL, finish_reason="stop")
    async for channel in started(await build_cache(CacheSettings(port=0), core)):
        stub = cache_pb2_grpc.CacheStub(channel)
        assert (
            await stub.Store(
                cache_pb2.StoreRequest(key=key, answer=answer, embedding=common_pb2.Embedding(values=[0.1] * 384))
            )
        ).stored
        bad = common_pb2.Embedding(values=values)
        for call in (
            stub.Lookup(cache_pb2.LookupRequest(key=key, embedding=bad, tiers=cache_pb2.LOOKUP_TIERS_SEMANTIC_ONLY)),
            stub.Store(cache_pb2.StoreRequest(key=key, answer=answer, embedding=bad)),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert detail in (err.value.details() or "")
        # Without an embedding the exact tier still answers; the refused Store changed nothing.
        hit = await stub.Lookup(cache_pb2.LookupRequest(key=key))
        assert hit.decision.kind == common_pb2.CACHE_HIT_KIND_EXACT
        assert [len(e.vector) for e in index.entries["acme"].values()] == [384]


async def test_cache_health_reports_a_dead_redis(cache: grpc.aio.Channel, cache_store: MemoryExactStore) -> None:
    assert await health(cache) == health_pb2.HealthCheckResponse.SERVING
    cache_store.fail = True
    stub = cache_pb2_grpc.CacheStub(cache)
    key = cache_pb2.CacheKeyMaterial(tenant="acme", messages=[common_pb2.Message(role=USER, content="Q?")])
    reply = await stub.Lookup(cache_pb2.LookupRequest(key=key))  # fails open: a miss, not an error
    assert reply.decision.kind == common_pb2.CACHE_HIT_KIND_MISS
    assert reply.decision.degraded


async def test_cache_health_not_serving_when_backend_down() -> None:
    store = MemoryExactStore(fail=True)
    core = CacheCore(store, None, CacheMetrics(CollectorRegistry()), 86400, 0.92)
    async for channel in started(await build_cache(CacheSettings(port=0), core)):
        assert await health(channel) == health_pb2.HealthCheckResponse.NOT_SERVING
        assert await health(channel, "costmesh.v1.Cache") == health_pb2.HealthCheckResponse.NOT_SERVING


def generate_request(tier: int = common_pb2.TIER_SMALL) -> inference_pb2.GenerateRequest:
    return inference_pb2.GenerateRequest(
        tenant="acme",
        tier=tier,
        messages=[common_pb2.Message(role=USER, content="hello there")],  # type: ignore[arg-type]
        removed_tokens={"pruning": 100},
    )


async def test_inference_falls_back_to_the_next_backend_and_prices_the_call() -> None:
    core = inference_core([DeadBackend("first"), EchoBackend("second")], [EchoBackend("large")])
    async for channel in started(await build_inference(InferenceSettings(port=0), core)):
        reply = await inference_pb2_grpc.InferenceStub(channel).Generate(generate_request())
        assert reply.text == "echo: hello there"
        assert reply.backend == "second"
        assert reply.fell_back
        assert reply.cost.price_model == "gpt-4o-mini"
        assert 0 < reply.cost.cost_usd < reply.cost.baseline_cost_usd
        assert set(reply.cost.savings_by_intervention) == {"pruning", "routing"}
        assert sum(reply.cost.savings_by_intervention.values()) == pytest.approx(
            reply.cost.baseline_cost_usd - reply.cost.cost_usd
        )
        bad = generate_request()
        bad.removed_tokens["pruning"] = -5
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await inference_pb2_grpc.InferenceStub(channel).Generate(bad)
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "removed_tokens must be >= 0" in (refused.value.details() or "")
        assert reply.logprobs[0].token == "echo"


async def test_inference_stream_deltas_then_final() -> None:
    core = inference_core([EchoBackend()], [EchoBackend()])
    async for channel in started(await build_inference(InferenceSettings(port=0), core)):
        chunks = [c async for c in inference_pb2_grpc.InferenceStub(channel).GenerateStream(generate_request())]
        deltas = "".join(c.delta for c in chunks if c.WhichOneof("chunk") == "delta")
        assert deltas.strip() == "echo: hello there"
        assert chunks[-1].WhichOneof("chunk") == "final"
        assert chunks[-1].final.usage.completion_tokens == 3


async def test_inference_status_codes() -> None:
    core = inference_core([DeadBackend("a"), DeadBackend("b")], [CrashingBackend()])
    async for channel in started(await build_inference(InferenceSettings(port=0), core)):
        stub = inference_pb2_grpc.InferenceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Generate(generate_request())
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "every small backend failed" in (err.value.details() or "")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Generate(generate_request(common_pb2.TIER_LARGE))
        assert err.value.code() == grpc.StatusCode.INTERNAL
        assert "internal detail" not in (err.value.details() or "")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Generate(generate_request(common_pb2.TIER_UNSPECIFIED))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # The small tier has no live backend: the service says so.
        assert await health(channel) == health_pb2.HealthCheckResponse.NOT_SERVING
