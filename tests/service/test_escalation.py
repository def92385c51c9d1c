"""The cascade through the in-process mesh: the cheap tier answers first, the large tier once when it fails."""

from __future__ import annotations

import json

import grpc
import pytest

from costmesh.v1 import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from tests.service.fakes import EchoBackend, ScriptedBackend
from tests.service.mesh import Mesh, start_mesh
from tests.unit.fakes import MemoryExactStore

SIMPLE = "What is the capital of France?"  # the rules route it to the cheap tier


async def cascade(small: list[EchoBackend]) -> Mesh:
    # A generous router budget: these tests are about escalation, and a router that misses the 15 ms
    # budget on a busy machine would route by default (to the large tier) instead.
    return await start_mesh(small, [EchoBackend("large")], MemoryExactStore(), router_budget_s=1.0)


def ask(text: str, **fields: object) -> orchestrator_pb2.CompletionRequest:
    return orchestrator_pb2.CompletionRequest(
        tenant="acme", messages=[common_pb2.Message(role=common_pb2.ROLE_USER, content=text)], **fields
    )


def stub(mesh: Mesh) -> orchestrator_pb2_grpc.OrchestratorAsyncStub:
    return orchestrator_pb2_grpc.OrchestratorStub(mesh.channel("orchestrator"))  # type: ignore[return-value]


def metric(mesh: Mesh, name: str, **labels: str) -> float | None:
    return mesh.services["orchestrator"].registry.get_sample_value(name, labels)


async def test_unsure_cheap_answer_escalates_once_and_pays_for_both() -> None:
    small = ScriptedBackend("small", "I'm not sure, maybe Lyon?")
    mesh = await cascade([small])
    try:
        reply = await stub(mesh).Complete(ask(SIMPLE))
        assert reply.route.escalated
        assert reply.route.escalation_reason.startswith("hedging")
        assert reply.route.tier == common_pb2.TIER_LARGE
        assert reply.answer == f"echo: {SIMPLE}"
        assert [t.stage for t in reply.stages if t.stage in ("inference", "escalation")] == ["inference", "escalation"]
        assert small.prompts[0].sampling.logprobs  # asked for, to judge the answer
        paid_for_cheap = -reply.cost.savings_by_intervention["escalation"]
        assert paid_for_cheap > 0
        assert reply.cost.savings_usd == pytest.approx(reply.cost.baseline_cost_usd - reply.cost.cost_usd)
        assert metric(mesh, "costmesh_escalations_total", reason="hedging") == 1
        assert metric(mesh, "costmesh_route_total", tier="TIER_SMALL") == 1
        assert metric(mesh, "costmesh_escalation_rate_baseline") == 0.25  # what the alert rule compares with
    finally:
        await mesh.stop()


async def test_confident_cheap_answer_is_kept() -> None:
    mesh = await cascade([ScriptedBackend("small", "Paris.")])
    try:
        reply = await stub(mesh).Complete(ask(SIMPLE))
        assert not reply.route.escalated and reply.route.tier == common_pb2.TIER_SMALL
        assert reply.answer == "Paris."
        assert metric(mesh, "costmesh_escalations_total", reason="hedging") is None
    finally:
        await mesh.stop()


async def test_low_logprobs_and_broken_format_escalate() -> None:
    guessing = ScriptedBackend("small", '{"intent": "card"}', logprobs=(("a", -1.5), ("b", -1.2)))
    mesh = await cascade([guessing])
    try:
        low = await stub(mesh).Complete(ask(SIMPLE))
        assert low.route.escalation_reason.startswith("low_confidence: mean token probability")
        schema = json.dumps({"type": "object", "required": ["label"]})
        wrong = await stub(mesh).Complete(ask("Which intent is this?", response_format=schema))
        assert wrong.route.escalation_reason.startswith("format: breaks the schema")
    finally:
        await mesh.stop()


async def test_multi_step_goes_to_the_large_tier_straight_away() -> None:
    small = ScriptedBackend("small", "Paris.")
    mesh = await cascade([small])
    try:
        reply = await stub(mesh).Complete(ask("Tell me step by step why it rains."))
        assert reply.route.escalated and reply.route.escalation_reason.startswith("multi_step")
        assert small.prompts == []  # the cheap tier was never asked
        assert metric(mesh, "costmesh_escalations_total", reason="multi_step") == 1
    finally:
        await mesh.stop()


async def test_a_multi_step_request_streams_the_large_tiers_deltas() -> None:
    large = EchoBackend("large")
    mesh = await start_mesh([ScriptedBackend("small", "Paris.")], [large], MemoryExactStore(), router_budget_s=1.0)
    try:
        chunks = [c async for c in stub(mesh).CompleteStream(ask("Tell me step by step why it rains."))]
        deltas = [c.delta for c in chunks if c.WhichOneof("chunk") == "delta"]
        assert len(deltas) > 1 and chunks[-1].WhichOneof("chunk") == "final"
        assert "".join(deltas).strip() == "echo: Tell me step by step why it rains."
        assert large.streamed == 1  # the model's own stream, not a replay of a whole answer
        assert chunks[-1].final.route.escalation_reason.startswith("multi_step")
    finally:
        await mesh.stop()


async def test_a_tier_set_by_the_request_is_never_escalated() -> None:
    mesh = await cascade([ScriptedBackend("small", "I don't know.")])
    try:
        reply = await stub(mesh).Complete(ask(SIMPLE, tier=common_pb2.TIER_SMALL))
        assert not reply.route.escalated and reply.answer == "I don't know."
    finally:
        await mesh.stop()


async def test_stream_sends_only_the_accepted_answer() -> None:
    mesh = await cascade([ScriptedBackend("small", "I'm not sure.")])
    try:
        chunks = [c async for c in stub(mesh).CompleteStream(ask(SIMPLE))]
        text = "".join(c.delta for c in chunks if c.WhichOneof("chunk") == "delta")
        assert text == f"echo: {SIMPLE}"
        assert chunks[-1].final.route.escalated
    finally:
        await mesh.stop()


async def test_invalid_response_format_is_refused() -> None:
    mesh = await cascade([EchoBackend("small")])
    try:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub(mesh).Complete(ask(SIMPLE, response_format="{not json"))
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "response_format must be a JSON schema" in (refused.value.details() or "")
    finally:
        await mesh.stop()


async def test_an_answer_cut_at_the_requests_max_tokens_is_kept_and_cached() -> None:
    small = EchoBackend("small")
    mesh = await cascade([small])
    try:
        request = ask(SIMPLE, sampling=common_pb2.SamplingParams(max_tokens=3))
        first = await stub(mesh).Complete(request)
        assert first.finish_reason == "length" and first.answer == "echo: What is"
        assert not first.route.escalated and first.route.tier == common_pb2.TIER_SMALL
        again = await stub(mesh).Complete(request)
        assert again.cache.kind == common_pb2.CACHE_HIT_KIND_EXACT and again.answer == first.answer
        longer = await stub(mesh).Complete(ask(SIMPLE, sampling=common_pb2.SamplingParams(max_tokens=4)))
        assert longer.cache.kind == common_pb2.CACHE_HIT_KIND_MISS  # max_tokens is part of the key
    finally:
        await mesh.stop()
