"""The batch service survives its Redis restarting: killed by pid and started again, with its data (AOF)
and without it (the consumer group gone: NOGROUP), a batch submitted afterwards completes, and the
service's health is NOT_SERVING while the consumer cannot read the queue.

A private Redis (own data dir, own port), so the shared Redis other tests use is never killed.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from costmesh.v1 import batch_pb2, batch_pb2_grpc
from launcher import stack
from launcher.process import ProcessTable
from launcher.settings import StackSettings
from services.batch.server import build_server as build_batch
from services.batch.settings import BatchSettings
from services.common.runtime import Service
from tests.helpers import free_port
from tests.service.fakes import EchoBackend
from tests.service.mesh import Mesh, start_mesh
from tests.unit.fakes import MemoryExactStore


def quiet(_: str) -> None:
    pass


async def wait_until(condition: Callable[[], Awaitable[bool]], timeout_s: float = 30) -> None:
    for _ in range(int(timeout_s / 0.1)):
        if await condition():
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("condition not reached")


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[StackSettings]:
    settings = StackSettings(data_dir=tmp_path / "data", run_dir=tmp_path / "run", redis_port=free_port())
    stack.up(settings, only=["redis"], say=quiet)
    yield settings
    stack.down(settings, only=["redis"], say=quiet)


@pytest.fixture
async def lane(private_redis: StackSettings) -> AsyncIterator[tuple[Service, batch_pb2_grpc.BatchStub]]:
    mesh: Mesh = await start_mesh([EchoBackend("small")], [EchoBackend("large")], MemoryExactStore())
    url = private_redis.redis_url()
    batch = await build_batch(BatchSettings(port=0, redis_url=url, orchestrator_addr=mesh.address("orchestrator")))
    await mesh.start("batch", batch)
    consumers = [asyncio.create_task(job()) for job in batch.background]
    try:
        yield batch, batch_pb2_grpc.BatchStub(mesh.channel("batch"))  # with the mesh token
    finally:
        for task in consumers:
            task.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)
        await mesh.stop()


def kill_redis(settings: StackSettings) -> None:
    pid = ProcessTable(settings.run_dir).pid("redis")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)


async def completes(stub: batch_pb2_grpc.BatchStub, question: str) -> batch_pb2.BatchStatus:
    body = {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": question}]}
    item = batch_pb2.BatchItem(openai_line=json.dumps({"custom_id": "c1", "body": body}))
    submitted = await stub.SubmitBatch(batch_pb2.SubmitBatchRequest(tenant="acme", items=[item]), timeout=10)

    async def finished() -> bool:
        status = await stub.GetBatch(batch_pb2.BatchRef(tenant="acme", batch_id=submitted.batch_id), timeout=5)
        return status.finished_unix_ms > 0

    await wait_until(finished)
    status: batch_pb2.BatchStatus = await stub.GetBatch(
        batch_pb2.BatchRef(tenant="acme", batch_id=submitted.batch_id), timeout=5
    )
    return status


async def down_then_back(service: Service, settings: StackSettings, wipe: bool) -> None:
    kill_redis(settings)

    async def not_consuming() -> bool:
        return not (await service.check_dependencies())["consumer"]

    await wait_until(not_consuming)
    assert not await service.refresh_health()  # NOT_SERVING while the queue cannot be read
    if wipe:  # Redis comes back without its data: the stream and its consumer group are gone
        shutil.rmtree(settings.data_dir / "redis")
    assert stack.up(settings, only=["redis"], say=quiet) == ["redis"]


async def test_a_batch_completes_after_redis_is_killed_and_restarted(
    lane: tuple[Service, batch_pb2_grpc.BatchStub], private_redis: StackSettings
) -> None:
    service, stub = lane
    before = await completes(stub, "before the restart")
    assert before.succeeded == 1
    await asyncio.sleep(1.5)  # appendfsync everysec: what was written a second ago is on disk

    await down_then_back(service, private_redis, wipe=False)
    assert (await completes(stub, "after a restart with its data")).succeeded == 1
    kept = await stub.GetBatch(batch_pb2.BatchRef(tenant="acme", batch_id=before.batch_id), timeout=5)
    assert kept.succeeded == 1  # the AOF kept the finished batch

    await down_then_back(service, private_redis, wipe=True)
    assert (await completes(stub, "after a restart without its data")).succeeded == 1  # NOGROUP handled
    assert await service.refresh_health()
