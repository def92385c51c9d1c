"""The spot-checker's wiring on real servers: the orchestrator's cache client evicts over gRPC."""

from __future__ import annotations

from costmesh.v1 import cache_pb2, common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from services.common.interceptors import client_channel
from services.orchestrator.clients import GrpcStages
from services.orchestrator.settings import OrchestratorSettings
from tests.service.fakes import EchoBackend
from tests.service.mesh import start_mesh
from tests.unit.fakes import MemoryExactStore


def ask(text: str) -> orchestrator_pb2.CompletionRequest:
    return orchestrator_pb2.CompletionRequest(
        tenant="acme", messages=[common_pb2.Message(role=common_pb2.ROLE_USER, content=text)]
    )


async def test_an_evicted_entry_is_answered_afresh() -> None:
    # The alias-carrying setting set by its field name in code (populate_by_name) builds the server.
    mesh = await start_mesh(
        [EchoBackend("small")], [EchoBackend("large")], MemoryExactStore(), router_budget_s=1.0, cache_verify_sample=1.0
    )
    stages = GrpcStages(OrchestratorSettings(cache_addr=mesh.address("cache")))
    try:
        async with client_channel(mesh.address("orchestrator")) as channel:
            stub = orchestrator_pb2_grpc.OrchestratorStub(channel)
            await stub.Complete(ask("What is the capital of France?"))
            hit = await stub.Complete(ask("What is the capital of France?"))
            assert hit.cache.kind == common_pb2.CACHE_HIT_KIND_EXACT  # exact: never spot-checked
            removed = await stages.invalidate(cache_pb2.InvalidateRequest(tenant="acme", key=hit.cache.key), 5.0)
            assert removed.removed >= 1
            again = await stub.Complete(ask("What is the capital of France?"))
            assert again.cache.kind == common_pb2.CACHE_HIT_KIND_MISS
        registry = mesh.services["orchestrator"].registry
        assert registry.get_sample_value("costmesh_cache_semantic_checked_total", {"outcome": "agree"}) == 0
    finally:
        await stages.close()
        await mesh.stop()
