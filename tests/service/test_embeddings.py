"""Orchestrator.Embed on real gRPC servers: inference embeds with the real local MiniLM and prices the call;
bad input is INVALID_ARGUMENT, an inference service without an embedding model FAILED_PRECONDITION."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import grpc
import numpy as np
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from costmesh.v1 import common_pb2, inference_pb2, inference_pb2_grpc, orchestrator_pb2, orchestrator_pb2_grpc
from services.common.embedding import load_minilm
from services.inference.core import InferenceCore, InferenceMetrics, TierConfig
from services.inference.domain import Tier
from services.inference.server import build_server as build_inference
from services.inference.settings import InferenceSettings
from tests.service.fakes import EchoBackend
from tests.service.mesh import Mesh, inference_core, start_mesh
from tests.service.test_services import started
from tests.unit.fakes import MemoryExactStore

TEXTS = ["How do I reset my card PIN?", "What is the capital of France?"]


@pytest.fixture
async def mesh() -> AsyncIterator[Mesh]:
    m = await start_mesh([EchoBackend("small")], [EchoBackend("large")], MemoryExactStore())
    yield m
    await m.stop()


def stub(mesh: Mesh) -> orchestrator_pb2_grpc.OrchestratorAsyncStub:
    return orchestrator_pb2_grpc.OrchestratorStub(mesh.channel("orchestrator"))  # type: ignore[return-value]


async def test_embeddings_equal_the_models_own_and_are_priced(mesh: Mesh, spans: InMemorySpanExporter) -> None:
    request = orchestrator_pb2.EmbeddingsRequest(tenant="acme", input=TEXTS)
    response = await stub(mesh).Embed(request, timeout=30)
    vectors = np.array([e.values for e in response.data], dtype=np.float32)
    expected = load_minilm(InferenceSettings().embedding_backend.partition("=")[2], 1).embed(TEXTS)
    cosines = (vectors * expected).sum(axis=1) / np.linalg.norm(vectors, axis=1) / np.linalg.norm(expected, axis=1)
    assert vectors.shape == (2, 384) and cosines.min() > 0.9999
    assert response.model == "all-minilm-l6-v2" and response.prompt_tokens > 10
    assert response.cost.cost_usd == pytest.approx(response.prompt_tokens * 0.02e-6)
    assert response.cost.price_model == "text-embedding-3-small" and len(response.trace_id) == 32
    assert "stage.embeddings" in {s.name for s in spans.get_finished_spans()}
    batch = await stub(mesh).Embed(
        orchestrator_pb2.EmbeddingsRequest(tenant="acme", input=TEXTS, lane=common_pb2.LANE_BATCH), timeout=30
    )
    assert batch.cost.cost_usd == pytest.approx(response.cost.cost_usd / 2)
    assert batch.cost.savings_by_intervention["batch"] == pytest.approx(response.cost.cost_usd / 2)


@pytest.mark.parametrize(
    ("request_fields", "fragment"),
    [
        ({"tenant": "acme", "input": []}, "at least one"),
        ({"tenant": "acme", "input": ["fine", ""]}, r"input\[1\] is empty"),
        ({"tenant": "", "input": ["x"]}, "tenant"),
        ({"tenant": "acme", "input": ["x"], "lane": 7}, "lane"),
        ({"tenant": "acme", "input": ["x" * 40_000]}, "at most 32000"),
    ],
)
async def test_bad_input_is_invalid_argument(mesh: Mesh, request_fields: dict[str, object], fragment: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub(mesh).Embed(orchestrator_pb2.EmbeddingsRequest(**request_fields), timeout=30)  # type: ignore[arg-type]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert re.search(fragment, caught.value.details() or "")


async def test_long_inputs_are_truncated_and_say_so() -> None:
    core = inference_core([EchoBackend("small")], [EchoBackend("large")])
    async for channel in started(await build_inference(InferenceSettings(port=0), core)):
        stub = inference_pb2_grpc.InferenceStub(channel)
        reply = await stub.Embed(inference_pb2.EmbedRequest(input=["word " * 600, "short"]), timeout=30)
        assert reply.truncated == 1 and reply.prompt_tokens == 256 + 3


async def test_without_an_embedding_model_embed_is_failed_precondition() -> None:
    core = inference_core([EchoBackend("small")], [EchoBackend("large")])
    async for channel in started(await build_inference(InferenceSettings(port=0, embedding_backend=""), core)):
        stub = inference_pb2_grpc.InferenceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Embed(inference_pb2.EmbedRequest(input=["x"]), timeout=10)
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        prices = await stub.Prices(inference_pb2.PricesRequest(), timeout=10)
        assert not prices.HasField("embedding")


async def test_batch_embeddings_wait_while_real_time_uses_the_models() -> None:
    slow = EchoBackend("small", delay_s=0.5)
    core = InferenceCore(
        {Tier.SMALL: TierConfig([slow], "gpt-4o-mini"), Tier.LARGE: TierConfig([EchoBackend()], "gpt-4o")},
        InferenceMetrics(CollectorRegistry()),
        batch_yield_s=0.2,
    )
    async for channel in started(await build_inference(InferenceSettings(port=0), core)):
        stub = inference_pb2_grpc.InferenceStub(channel)
        batch = inference_pb2.EmbedRequest(input=["x"], lane=common_pb2.LANE_BATCH)
        await stub.Embed(batch, timeout=30)  # an idle machine: batch embeddings run
        prompt = inference_pb2.GenerateRequest(
            tier=common_pb2.TIER_SMALL, messages=[common_pb2.Message(role=common_pb2.ROLE_USER, content="hi")]
        )
        realtime = asyncio.ensure_future(stub.Generate(prompt, timeout=30))
        await asyncio.sleep(0.1)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Embed(batch, timeout=30)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # the consumer retries it later
        await stub.Embed(inference_pb2.EmbedRequest(input=["x"]), timeout=30)  # real-time embeddings do not wait
        await realtime
        await asyncio.sleep(0.3)
        await stub.Embed(batch, timeout=30)  # real time quiet again
