"""A batch's cost is what inference spent on it, failed attempts included (issue 17: a 20-item batch made
model calls whose output no result accounted for). Real in-process services, a real batch consumer, Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import grpc
import pytest
from prometheus_client import CollectorRegistry

from costmesh.v1 import batch_pb2, batch_pb2_grpc, common_pb2, orchestrator_pb2
from launcher.settings import StackSettings
from services.batch.server import build_server as build_batch
from services.batch.settings import BatchSettings
from services.inference.core import InferenceCore, InferenceMetrics, TierConfig
from services.inference.domain import Tier
from tests import stack
from tests.service.fakes import DeadBackend, ScriptedBackend
from tests.service.mesh import start_mesh
from tests.unit.fakes import MemoryExactStore

DB = 6  # its own database: no other consumer may take these items


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    settings = StackSettings()
    started = stack.start(settings, ["redis"])
    yield settings.redis_url(DB)
    stack.stop(settings, started)


def spent(registry: CollectorRegistry) -> float:
    return sum(
        sample.value
        for metric in registry.collect()
        if metric.name == "costmesh_cost_usd"
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


async def test_get_batch_cost_is_what_inference_spent_failed_attempts_included(redis_url: str) -> None:
    # The cheap tier's answer fails the request's schema; the large tier is down, so every attempt pays
    # for a cheap answer and then fails UNAVAILABLE: before, those calls were in no result's cost.
    registry = CollectorRegistry()
    core = InferenceCore(
        {
            Tier.SMALL: TierConfig([ScriptedBackend("small", "not json")], "gpt-4o-mini"),
            Tier.LARGE: TierConfig([DeadBackend("large")], "gpt-4o"),
        },
        InferenceMetrics(registry),
    )
    mesh = await start_mesh([], [], MemoryExactStore(), inference=core)
    settings = BatchSettings(
        port=0,
        redis_url=redis_url,
        keys_redis_url=redis_url,
        orchestrator_addr=mesh.address("orchestrator"),
        max_attempts=2,
        retry_base_s=0.05,
        retry_max_s=0.1,
    )
    batch = await build_batch(settings)
    await mesh.start("batch", batch)
    consumers = [asyncio.create_task(job()) for job in batch.background]
    try:
        stub = batch_pb2_grpc.BatchStub(mesh.channel("batch"))
        items = [
            batch_pb2.BatchItem(
                custom_id=f"q{i}",
                request=orchestrator_pb2.CompletionRequest(
                    messages=[common_pb2.Message(role=common_pb2.ROLE_USER, content=f"Give JSON number {i}")],
                    response_format='{"type": "object"}',
                    cache=common_pb2.CacheControl(no_cache=True, no_store=True),
                ),
            )
            for i in range(3)
        ]
        status = await stub.SubmitBatch(batch_pb2.SubmitBatchRequest(tenant="cost-check", items=items), timeout=10)
        deadline = time.monotonic() + 60
        while not status.finished_unix_ms and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            status = await stub.GetBatch(batch_pb2.BatchRef(tenant="cost-check", batch_id=status.batch_id), timeout=5)
        assert status.finished_unix_ms and status.failed == 3  # each item: 2 attempts, each cheap + failed escalation
        assert spent(registry) > 0
        assert status.cost_usd == pytest.approx(spent(registry), rel=1e-9)
        results = [
            r async for r in stub.StreamBatchResults(batch_pb2.BatchRef(tenant="cost-check", batch_id=status.batch_id))
        ]
        assert all(r.error.code == grpc.StatusCode.UNAVAILABLE.name and r.failed_attempts_cost_usd > 0 for r in results)
    finally:
        for task in consumers:
            task.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)
        await mesh.stop()
