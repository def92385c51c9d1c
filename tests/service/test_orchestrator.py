"""The whole mesh in-process, on real gRPC servers: stage chaining, failure policy, tracing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from costmesh.v1 import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc, summarizer_pb2, summarizer_pb2_grpc
from services.orchestrator.clients import GrpcStages
from services.orchestrator.settings import OrchestratorSettings
from services.orchestrator.warmup import WarmUp
from tests.service.fakes import EchoBackend
from tests.service.mesh import Mesh, start_mesh
from tests.unit.fakes import MemoryExactStore

USER = common_pb2.ROLE_USER
SYSTEM = common_pb2.ROLE_SYSTEM


@pytest.fixture
async def store() -> MemoryExactStore:
    return MemoryExactStore()


@pytest.fixture
async def mesh(store: MemoryExactStore) -> AsyncIterator[Mesh]:
    # A generous router budget: on a busy machine a missed 15 ms budget would route by default.
    m = await start_mesh([EchoBackend("small")], [EchoBackend("large")], store, router_budget_s=1.0)
    yield m
    await m.stop()


def stub(mesh: Mesh) -> orchestrator_pb2_grpc.OrchestratorAsyncStub:
    return orchestrator_pb2_grpc.OrchestratorStub(mesh.channel("orchestrator"))  # type: ignore[return-value]


def ask(text: str, **fields: object) -> orchestrator_pb2.CompletionRequest:
    return orchestrator_pb2.CompletionRequest(
        tenant="acme",
        messages=[common_pb2.Message(role=USER, content=text)],
        **fields,  # type: ignore[arg-type]
    )


async def test_miss_then_exact_hit(mesh: Mesh) -> None:
    s = stub(mesh)
    first = await s.Complete(ask("What is the capital of France?"))
    assert first.answer == "echo: What is the capital of France?"
    assert first.cache.kind == common_pb2.CACHE_HIT_KIND_MISS
    assert first.route.tier == common_pb2.TIER_SMALL
    assert first.route.classifier == "rules"
    assert first.cost.cost_usd > 0
    assert first.cost.baseline_cost_usd > first.cost.cost_usd
    assert len(first.trace_id) == 32
    assert {t.stage for t in first.stages} >= {
        "embed",
        "cache_exact",
        "cache_semantic",
        "router",
        "summarizer",
        "inference",
        "cache_store",
    }

    second = await s.Complete(ask("  what is the capital of   france?"))
    assert second.cache.kind == common_pb2.CACHE_HIT_KIND_EXACT
    assert second.answer == first.answer
    assert second.cost.cost_usd == 0
    assert second.cost.savings_usd == pytest.approx(first.cost.baseline_cost_usd)
    assert dict(second.cost.savings_by_intervention) == {"cache_exact": pytest.approx(second.cost.savings_usd)}
    # Savings by intervention, as Prometheus counts them: routing on the miss, the cache on the hit.
    registry = mesh.services["orchestrator"].registry
    by = {
        i: registry.get_sample_value("costmesh_savings_usd_total", {"intervention": i, "tier": "TIER_SMALL"})
        for i in ("routing", "cache_exact")
    }
    assert by == {
        "routing": pytest.approx(first.cost.savings_by_intervention["routing"]),
        "cache_exact": pytest.approx(second.cost.savings_usd),
    }
    # An exact hit is served without waiting for the embedding or asking the semantic tier.
    assert {t.stage for t in second.stages} == {"cache_exact"}


async def test_forced_tier_and_compressed_documents(mesh: Mesh) -> None:
    request = ask("Summarize the policy.", tier=common_pb2.TIER_LARGE)
    request.documents.append(
        common_pb2.Document(
            id="p", text="Refunds take 5 days. Refunds take 5 days.", kind=common_pb2.DOCUMENT_KIND_CONTEXT
        )
    )
    reply = await stub(mesh).Complete(request)
    assert reply.route.tier == common_pb2.TIER_LARGE
    assert reply.route.classifier == "request"
    assert reply.compression.applied
    assert reply.compression.tokens_after < reply.compression.tokens_before
    # The large tier saves nothing by routing; the removed tokens are compression's saving.
    removed = reply.compression.tokens_before - reply.compression.tokens_after
    assert set(reply.cost.savings_by_intervention) == {"compression"}
    assert reply.cost.savings_by_intervention["compression"] == pytest.approx(removed * 2.50 / 1e6)


async def test_stream_yields_deltas_then_the_full_response(mesh: Mesh) -> None:
    chunks = [c async for c in stub(mesh).CompleteStream(ask("Stream me"))]
    text = "".join(c.delta for c in chunks if c.WhichOneof("chunk") == "delta")
    assert text.strip() == "echo: Stream me"
    final = chunks[-1].final
    assert final.answer == "echo: Stream me"
    assert final.cost.cost_usd > 0
    # The cached answer is replayed as a stream too.
    replay = [c async for c in stub(mesh).CompleteStream(ask("Stream me"))]
    assert replay[-1].final.cache.kind == common_pb2.CACHE_HIT_KIND_EXACT
    assert "".join(c.delta for c in replay if c.WhichOneof("chunk") == "delta") == "echo: Stream me"


async def test_bad_request_is_invalid_argument(mesh: Mesh) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub(mesh).Complete(orchestrator_pb2.CompletionRequest(tenant="acme"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "messages" in (err.value.details() or "")


async def test_cache_failure_degrades_to_pass_through(mesh: Mesh, store: MemoryExactStore) -> None:
    store.fail = True
    reply = await stub(mesh).Complete(ask("Still answered?"))
    assert reply.answer == "echo: Still answered?"
    assert reply.cache.degraded


async def test_dead_stages_fail_open_and_router_falls_back_to_default(store: MemoryExactStore) -> None:
    # Router, cache and summarizer are stopped: their addresses answer nothing.
    m = await start_mesh([EchoBackend("small")], [EchoBackend("large")], store)
    await m.services["router"].stop(0)
    await m.services["cache"].stop(0)
    await m.services["summarizer"].stop(0)
    try:
        request = ask("Does it still work?")
        request.documents.append(common_pb2.Document(text="ctx"))
        reply = await stub(m).Complete(request)
        assert reply.answer == "echo: Does it still work?"
        assert reply.route.fell_back
        assert reply.route.tier == common_pb2.TIER_LARGE  # the quality-safe default
        assert reply.cache.degraded
        assert reply.pruning.degraded
        outcomes = {t.stage: t.outcome for t in reply.stages}
        assert outcomes["router"] in ("error", "timeout")
    finally:
        await m.stop()


async def test_router_budget_overrun_uses_the_default_route(
    store: MemoryExactStore, spans: InMemorySpanExporter
) -> None:
    m = await start_mesh([EchoBackend("small")], [EchoBackend("large")], store, router_budget_s=0.000001)
    try:
        reply = await stub(m).Complete(ask("What is 2+2?"))
        assert reply.route.fell_back
        assert "budget" in reply.route.reason
        assert reply.answer == "echo: What is 2+2?"
        # The overrun is marked on the stage's span, with the budget it had, for Jaeger's timeline.
        trace_id = int(reply.trace_id, 16)
        route = next(
            s
            for s in spans.get_finished_spans()
            if s.name == "stage.router" and s.context is not None and s.context.trace_id == trace_id
        )
        assert route.attributes is not None
        assert route.attributes["costmesh.budget_ms"] == pytest.approx(0.001)
        assert route.attributes["costmesh.over_budget"] is True
        assert route.attributes["costmesh.deadline_left_ms"] > 1000
        assert any(e.name == "costmesh.budget_overrun" for e in route.events)
    finally:
        await m.stop()


async def test_long_history_pruned_with_last_six_verbatim(store: MemoryExactStore) -> None:
    small = EchoBackend("small")
    m = await start_mesh([small], [EchoBackend("large")], store)
    try:
        history = [common_pb2.Message(role=SYSTEM, content="You are helpful.")]
        for i in range(30):
            history.append(common_pb2.Message(role=USER, content=f"question {i} " + "about orders " * 60))
            history.append(common_pb2.Message(role=common_pb2.ROLE_ASSISTANT, content=f"answer {i} " * 60))
        history.append(common_pb2.Message(role=USER, content="And the last one?"))
        reply = await stub(m).Complete(
            orchestrator_pb2.CompletionRequest(tenant="acme", messages=history, tier=common_pb2.TIER_SMALL)
        )
        assert reply.pruning.applied
        assert reply.pruning.tokens_after < 4000 < reply.pruning.tokens_before
        sent = small.prompts[-1].messages  # the answer call; the summary call came before it
        assert [m.content for m in sent[-6:]] == [m.content for m in history[-6:]]
        assert sent[0].content == "You are helpful."
        assert sent[1].content.startswith("Summary of the earlier conversation: echo:")
        # The baseline is priced on the full, unpruned prompt.
        assert reply.cost.baseline_cost_usd > 10 * reply.cost.cost_usd
        # The summary call is charged to this request: pruning's saving is net of it, and the parts add up.
        removed = reply.pruning.tokens_before - reply.pruning.tokens_after
        summary_cost = removed * 2.50 / 1e6 - reply.cost.savings_by_intervention["pruning"]
        assert summary_cost > 0
        parts = sum(reply.cost.savings_by_intervention.values())
        assert parts == pytest.approx(reply.cost.baseline_cost_usd - reply.cost.cost_usd)
        assert reply.cost.savings_usd == pytest.approx(reply.cost.baseline_cost_usd - reply.cost.cost_usd)
    finally:
        await m.stop()


async def test_summaries_are_charged_once_and_go_on_the_requests_lane(store: MemoryExactStore) -> None:
    small = EchoBackend("small")
    m = await start_mesh([small], [EchoBackend("large")], store)
    try:
        history = []
        for i in range(30):
            history.append(common_pb2.Message(role=USER, content=f"question {i} " + "about orders " * 60))
            history.append(common_pb2.Message(role=common_pb2.ROLE_ASSISTANT, content=f"answer {i} " * 60))
        history.append(common_pb2.Message(role=USER, content="And the last one?"))
        prune = summarizer_pb2_grpc.SummarizerStub(m.channel("summarizer"))
        request = summarizer_pb2.PruneRequest(tenant="acme", messages=history, lane=common_pb2.LANE_BATCH)
        first = await prune.Prune(request)
        assert first.report.summary_source == "full"
        assert first.cost.cost_usd > 0 and first.cost.price_model == "gpt-4o-mini"
        assert first.usage.prompt_tokens > 0
        assert small.prompts[-1].priority > 0  # the summary call went on the batch lane
        again = await prune.Prune(request)
        assert again.report.summary_source == "cached" and again.cost.cost_usd == 0  # no model call
    finally:
        await m.stop()


async def test_one_trace_spans_every_service(mesh: Mesh, spans: InMemorySpanExporter) -> None:
    long_history = [common_pb2.Message(role=SYSTEM, content="You are helpful.")]
    for i in range(30):
        long_history.append(common_pb2.Message(role=USER, content=f"question {i} " + "about orders " * 60))
        long_history.append(common_pb2.Message(role=common_pb2.ROLE_ASSISTANT, content="answer " * 60))
    long_history.append(common_pb2.Message(role=USER, content="And the last one?"))
    request = orchestrator_pb2.CompletionRequest(tenant="acme", messages=long_history)
    request.documents.append(common_pb2.Document(text="Some retrieved context."))
    reply = await stub(mesh).Complete(request)
    assert reply.pruning.applied  # so the summarizer called inference too

    trace_id = int(reply.trace_id, 16)
    in_trace = [s for s in spans.get_finished_spans() if s.context is not None and s.context.trace_id == trace_id]
    names = {s.name for s in in_trace}
    for rpc in (
        "/costmesh.v1.Orchestrator/Complete",
        "/costmesh.v1.Router/Route",
        "/costmesh.v1.Cache/Lookup",
        "/costmesh.v1.Cache/Store",
        "/costmesh.v1.Summarizer/Prune",
        "/costmesh.v1.Compressor/Compress",
        "/costmesh.v1.Inference/Generate",
    ):
        assert rpc in names, f"{rpc} missing from the trace: {sorted(names)}"
    # Each stage's span carries its budget and the time the request had left when it started.
    stages = {s.name: s.attributes for s in in_trace if s.name.startswith("stage.") and s.attributes is not None}
    for stage in ("stage.cache_exact", "stage.router", "stage.summarizer", "stage.compressor", "stage.inference"):
        assert stage in stages, f"{stage} missing: {sorted(stages)}"
        assert stages[stage]["costmesh.budget_ms"] > 0 and stages[stage]["costmesh.deadline_left_ms"] > 0
        assert isinstance(stages[stage]["costmesh.over_budget"], bool)
    # Health checks stay out of traces.
    assert not any("Health" in s.name for s in spans.get_finished_spans())


async def test_every_stage_is_warmed_before_serving_so_the_first_request_meets_the_router_budget(
    store: MemoryExactStore,
) -> None:
    # The real 15 ms budget: a cold first Route (channel connect, the router's lazy set-up) used to miss it.
    m = await start_mesh([EchoBackend("small")], [EchoBackend("large")], store)
    try:
        warm_up = m.services["orchestrator"].checks["warm_up"]
        assert isinstance(warm_up, WarmUp) and warm_up.pending == frozenset()
        routes = m.services["router"].registry.get_sample_value(
            "costmesh_rpc_total", {"service": "router", "method": "/costmesh.v1.Router/Route", "code": "OK"}
        )
        assert routes == 1  # the warm-up's call, before any request
        reply = await stub(m).Complete(ask("What is the capital of France?"))
        assert not reply.route.fell_back and reply.route.classifier == "rules"
    finally:
        await m.stop()


async def test_warm_up_failures_are_retried_never_raised(store: MemoryExactStore) -> None:
    m = await start_mesh([EchoBackend("small")], [EchoBackend("large")], store)
    await m.services["router"].stop(0)
    stages = GrpcStages(
        OrchestratorSettings(
            router_addr=m.address("router"),
            cache_addr=m.address("cache"),
            compressor_addr=m.address("compressor"),
            summarizer_addr=m.address("summarizer"),
        )
    )
    try:
        warm_up = WarmUp(stages, None)
        assert await warm_up() is True  # the router is down: logged, never raised, SERVING not held back
        assert warm_up.pending == {"router"}  # the others are warm; the router is tried again next time
    finally:
        await stages.close()
        await m.stop()
