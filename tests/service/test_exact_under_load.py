"""Exact hits stay hits: a late exact lookup still wins over a model call that has not started, and a
restarted stage is reached again within about two seconds (the client channel's reconnect backoff)."""

from __future__ import annotations

import asyncio
import contextlib
import time

import grpc
from prometheus_client import CollectorRegistry

from costmesh.v1 import cache_pb2, cache_pb2_grpc, common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from services.cache.core import CacheCore, CacheMetrics
from services.cache.domain import CachedAnswer
from services.cache.server import build_server as build_cache
from services.cache.servicer import to_material
from services.cache.settings import CacheSettings
from services.common.interceptors import client_channel
from services.common.runtime import Service
from tests.service.fakes import EchoBackend
from tests.service.mesh import Mesh, start_mesh
from tests.unit.fakes import MemoryExactStore

USER = common_pb2.ROLE_USER
CACHED = "Paris (from the cache)"


class SlowExactStore(MemoryExactStore):
    """An exact tier that answers after ``delay_s``: a cache service starved of CPU."""

    def __init__(self, delay_s: float) -> None:
        super().__init__()
        self.delay_s = delay_s

    async def get(self, tenant: str, key: str) -> CachedAnswer | None:
        await asyncio.sleep(self.delay_s)
        return await super().get(tenant, key)


def seeded(store: MemoryExactStore, messages: list[common_pb2.Message]) -> None:
    key = to_material(cache_pb2.CacheKeyMaterial(tenant="acme", messages=messages)).exact_key()
    answer = CachedAnswer(CACHED, "gpt-4o-mini", "small", "stop", 10, 3, 0.0001, 0.001, int(time.time()))
    store.entries[("acme", key)] = (answer, 86400)


def long_history() -> list[common_pb2.Message]:
    """A conversation the summarizer prunes: it asks the small tier for a summary first (a slow one here)."""
    history = []
    for i in range(30):
        history.append(common_pb2.Message(role=USER, content=f"question {i} " + "about orders " * 60))
        history.append(common_pb2.Message(role=common_pb2.ROLE_ASSISTANT, content=f"answer {i} " * 60))
    history.append(common_pb2.Message(role=USER, content="What is the capital of France?"))
    return history


def stub(mesh: Mesh) -> orchestrator_pb2_grpc.OrchestratorAsyncStub:
    return orchestrator_pb2_grpc.OrchestratorStub(mesh.channel("orchestrator"))  # type: ignore[return-value]


def outcomes(reply: orchestrator_pb2.CompletionResponse) -> dict[str, str]:
    return {t.stage: t.outcome for t in reply.stages}


async def test_a_late_exact_hit_wins_over_a_model_call_not_yet_started() -> None:
    # The exact tier answers in 0.3 s against a 20 ms budget; meanwhile the request goes on, and its
    # pruning waits 1.5 s for a summary: the hit comes back before any answer is asked for.
    store = SlowExactStore(0.3)
    small, large = EchoBackend("small", delay_s=1.5), EchoBackend("large")
    history = long_history()
    seeded(store, history)
    m = await start_mesh([small], [large], store, cache_lookup_budget_s=0.02, router_budget_s=1.0)
    try:
        reply = await stub(m).Complete(orchestrator_pb2.CompletionRequest(tenant="acme", messages=history))
        assert reply.answer == CACHED
        assert reply.cache.kind == common_pb2.CACHE_HIT_KIND_EXACT
        assert reply.cost.cost_usd == 0 and reply.cost.price_model == "cache"
        assert reply.route.classifier == "cache"
        assert outcomes(reply)["cache_exact"] == "late"
        assert not large.prompts
        assert len(small.prompts) == 1  # the summary pruning asked for, never an answer
        registry = m.services["orchestrator"].registry
        late = {"stage": "cache_exact", "outcome": "late"}
        assert registry.get_sample_value("costmesh_stage_degraded_total", late) == 1
    finally:
        await m.stop()


async def test_a_late_exact_hit_is_moot_once_the_model_call_starts() -> None:
    # Nothing else is slow: the request is ready for its model call long before the exact tier answers.
    store = SlowExactStore(1.0)
    messages = [common_pb2.Message(role=USER, content="What is the capital of France?")]
    seeded(store, messages)
    m = await start_mesh([EchoBackend("small")], [EchoBackend("large")], store, cache_lookup_budget_s=0.02)
    try:
        started = time.monotonic()
        reply = await stub(m).Complete(orchestrator_pb2.CompletionRequest(tenant="acme", messages=messages))
        assert time.monotonic() - started < 1.0  # it did not wait for the late lookup
        assert reply.answer == "echo: What is the capital of France?"
        assert reply.cache.kind == common_pb2.CACHE_HIT_KIND_MISS and reply.cache.degraded
        assert outcomes(reply)["cache_exact"] == "timeout"
    finally:
        await m.stop()


async def test_an_exact_hit_within_budget_is_served_at_once() -> None:
    store = SlowExactStore(0.0)
    messages = [common_pb2.Message(role=USER, content="What is the capital of France?")]
    seeded(store, messages)
    m = await start_mesh([EchoBackend("small")], [EchoBackend("large")], store)
    try:
        reply = await stub(m).Complete(orchestrator_pb2.CompletionRequest(tenant="acme", messages=messages))
        assert reply.answer == CACHED
        assert outcomes(reply) == {"cache_exact": "ok"}  # no embedding, no routing
    finally:
        await m.stop()


async def start_cache(port: int, store: MemoryExactStore) -> tuple[int, Service]:
    core = CacheCore(store, None, CacheMetrics(CollectorRegistry()), 60, 0.9)
    service = await build_cache(CacheSettings(port=port), core)
    await service.server.start()
    await service.refresh_health()
    return service.port, service


async def test_a_restarted_stage_is_reached_again_within_two_seconds() -> None:
    store = MemoryExactStore()
    port, first = await start_cache(0, store)
    lookup = cache_pb2.LookupRequest(
        key=cache_pb2.CacheKeyMaterial(tenant="acme", messages=[common_pb2.Message(role=USER, content="hi")])
    )
    async with client_channel(f"127.0.0.1:{port}") as channel:
        cache: cache_pb2_grpc.CacheAsyncStub = cache_pb2_grpc.CacheStub(channel)
        await cache.Lookup(lookup, timeout=5)
        await first.stop(0)
        # Calls keep coming while it is down (as requests do): under gRPC's default backoff (1 s, x1.6
        # each attempt) the attempts six seconds in are ~4 s apart.
        down_until = time.monotonic() + 6.0
        while time.monotonic() < down_until:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await cache.Lookup(lookup, timeout=0.2)
            await asyncio.sleep(0.1)
        _, second = await start_cache(port, store)
        restarted = time.monotonic()
        try:
            while True:
                try:
                    await cache.Lookup(lookup, timeout=0.5)
                    break
                except grpc.aio.AioRpcError as exc:
                    assert exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
                    assert time.monotonic() - restarted < 5.0, "not reconnected"
                    await asyncio.sleep(0.05)
            assert time.monotonic() - restarted < 2.0
        finally:
            await second.stop(0)
