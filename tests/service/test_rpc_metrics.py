"""costmesh_rpc_total counts the status the client saw: a call it abandons by deadline is DEADLINE_EXCEEDED,
one it cancels is CANCELLED, never OK (issue 17: timeouts and killed batch items were counted as OK)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from costmesh.v1 import common_pb2, inference_pb2, inference_pb2_grpc, orchestrator_pb2, orchestrator_pb2_grpc
from tests.service.fakes import EchoBackend
from tests.service.mesh import Mesh, start_mesh
from tests.unit.fakes import MemoryExactStore

GENERATE = "/costmesh.v1.Inference/Generate"
COMPLETE = "/costmesh.v1.Orchestrator/Complete"
COMPLETE_STREAM = "/costmesh.v1.Orchestrator/CompleteStream"


@pytest.fixture
async def slow_mesh() -> AsyncIterator[Mesh]:
    # Every model call takes 1 s: long enough for a client to give up on it.
    m = await start_mesh(
        [EchoBackend("small", delay_s=1.0)],
        [EchoBackend("large", delay_s=1.0)],
        MemoryExactStore(),
        router_budget_s=1.0,
    )
    yield m
    await m.stop()


def count(mesh: Mesh, service: str, method: str, code: str) -> float:
    labels = {"service": service, "method": method, "code": code}
    return mesh.services[service].registry.get_sample_value("costmesh_rpc_total", labels) or 0.0


async def counted(mesh: Mesh, service: str, method: str, code: str, expected: float) -> float:
    """The count once the server has recorded it: a cancelled handler finishes after the client returns."""
    for _ in range(100):
        if count(mesh, service, method, code) >= expected:
            break
        await asyncio.sleep(0.05)
    return count(mesh, service, method, code)


def ask() -> orchestrator_pb2.CompletionRequest:
    return orchestrator_pb2.CompletionRequest(
        tenant="acme", messages=[common_pb2.Message(role=common_pb2.ROLE_USER, content="Why is the sky blue?")]
    )


async def test_a_call_abandoned_by_deadline_is_deadline_exceeded(slow_mesh: Mesh) -> None:
    inference = inference_pb2_grpc.InferenceStub(slow_mesh.channel("inference"))
    request = inference_pb2.GenerateRequest(tenant="acme", tier=common_pb2.TIER_SMALL, messages=ask().messages)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await inference.Generate(request, timeout=0.3)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert await counted(slow_mesh, "inference", GENERATE, "DEADLINE_EXCEEDED", 1) == 1
    orchestrator = orchestrator_pb2_grpc.OrchestratorStub(slow_mesh.channel("orchestrator"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await orchestrator.Complete(ask(), timeout=0.5)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert await counted(slow_mesh, "orchestrator", COMPLETE, "DEADLINE_EXCEEDED", 1) == 1
    await asyncio.sleep(1.0)  # the model calls would have finished by now: nothing turns into OK later
    assert count(slow_mesh, "orchestrator", COMPLETE, "OK") == 0
    assert count(slow_mesh, "inference", GENERATE, "OK") == 0


async def test_a_call_the_client_cancels_is_cancelled(slow_mesh: Mesh) -> None:
    orchestrator = orchestrator_pb2_grpc.OrchestratorStub(slow_mesh.channel("orchestrator"))
    unary = orchestrator.Complete(ask(), timeout=10)
    stream = orchestrator.CompleteStream(ask(), timeout=10)
    await asyncio.sleep(0.3)  # both are waiting on the model
    unary.cancel()
    stream.cancel()
    with pytest.raises(asyncio.CancelledError):
        await unary
    assert await counted(slow_mesh, "orchestrator", COMPLETE, "CANCELLED", 1) == 1
    assert await counted(slow_mesh, "orchestrator", COMPLETE_STREAM, "CANCELLED", 1) == 1
    # The orchestrator's own model calls were cancelled with it, and are counted so by inference.
    assert await counted(slow_mesh, "inference", GENERATE, "CANCELLED", 1) >= 1
    await asyncio.sleep(1.0)
    assert count(slow_mesh, "orchestrator", COMPLETE, "OK") == 0
    assert count(slow_mesh, "orchestrator", COMPLETE_STREAM, "OK") == 0
    assert count(slow_mesh, "inference", GENERATE, "OK") == 0
