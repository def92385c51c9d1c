"""SubmitBatch through the batch service's gRPC servicer (on a private Redis, no consumer running): the
request's priority reaches the queue, and a bad priority or endpoint is INVALID_ARGUMENT."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
import redis.asyncio as redis

from costmesh.v1 import batch_pb2, batch_pb2_grpc
from launcher import stack
from launcher.settings import StackSettings
from services.batch.backends.redis_streams import STREAM
from services.batch.server import build_server as build_batch
from services.batch.settings import BatchSettings
from tests.helpers import free_port
from tests.service.fakes import EchoBackend
from tests.service.mesh import start_mesh
from tests.unit.fakes import MemoryExactStore


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[StackSettings]:
    settings = StackSettings(data_dir=tmp_path / "data", run_dir=tmp_path / "run", redis_port=free_port())
    stack.up(settings, only=["redis"], say=lambda _: None)
    yield settings
    stack.down(settings, only=["redis"], say=lambda _: None)


@pytest.fixture
async def batches(private_redis: StackSettings) -> AsyncIterator[batch_pb2_grpc.BatchStub]:
    mesh = await start_mesh([EchoBackend("small")], [EchoBackend("large")], MemoryExactStore())
    settings = BatchSettings(
        port=0, redis_url=private_redis.redis_url(), orchestrator_addr=mesh.address("orchestrator")
    )
    await mesh.start("batch", await build_batch(settings))  # its consumer is not started: items stay queued
    try:
        yield batch_pb2_grpc.BatchStub(mesh.channel("batch"))
    finally:
        await mesh.stop()


def items(n: int, url: str = "/v1/chat/completions") -> list[batch_pb2.BatchItem]:
    body = {"model": "m", "messages": [{"role": "user", "content": "q"}]}
    if url == "/v1/embeddings":
        body = {"model": "m", "input": "a text"}
    lines = [json.dumps({"custom_id": f"c{i}", "method": "POST", "url": url, "body": body}) for i in range(n)]
    return [batch_pb2.BatchItem(openai_line=line) for line in lines]


async def test_the_requested_priority_is_the_stream_the_items_wait_in(
    batches: batch_pb2_grpc.BatchStub, private_redis: StackSettings
) -> None:
    await batches.SubmitBatch(
        batch_pb2.SubmitBatchRequest(tenant="acme", items=items(2), priority=batch_pb2.BATCH_PRIORITY_LOW)
    )
    await batches.SubmitBatch(
        batch_pb2.SubmitBatchRequest(tenant="acme", items=items(3, "/v1/embeddings"), endpoint="/v1/embeddings")
    )
    client = redis.Redis.from_url(private_redis.redis_url())
    try:
        assert await client.xlen(f"{STREAM}:low") == 2
        assert await client.xlen(STREAM) == 3  # unspecified is normal
        assert await client.xlen(f"{STREAM}:high") == 0
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (batch_pb2.SubmitBatchRequest(tenant="acme", items=items(1), priority=99), "unknown priority"),  # type: ignore[arg-type]
        (batch_pb2.SubmitBatchRequest(tenant="acme", items=items(1), endpoint="/v1/files"), "endpoint must be"),
    ],
)
async def test_a_bad_priority_or_endpoint_is_invalid_argument(
    batches: batch_pb2_grpc.BatchStub, request_: batch_pb2.SubmitBatchRequest, message: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await batches.SubmitBatch(request_)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in (refused.value.details() or "")
