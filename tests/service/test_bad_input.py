"""Every bad input of issue 17 is INVALID_ARGUMENT with a message naming what is wrong, on real servers:
never INTERNAL or UNKNOWN (a KeyError, a RecursionError, a protobuf DecodeError), never accepted."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message as ProtoMessage
from grpc_health.v1 import health_pb2, health_pb2_grpc

from costmesh.v1 import (
    cache_pb2,
    cache_pb2_grpc,
    common_pb2,
    compressor_pb2,
    compressor_pb2_grpc,
    inference_pb2,
    inference_pb2_grpc,
    orchestrator_pb2,
    orchestrator_pb2_grpc,
)
from tests.service.fakes import EchoBackend
from tests.service.mesh import Mesh, start_mesh
from tests.unit.fakes import MemoryExactStore

INVALID = grpc.StatusCode.INVALID_ARGUMENT
USER = common_pb2.ROLE_USER
BAD_KIND = 99
Call = Callable[[Mesh], Awaitable[Any]]


@pytest.fixture(scope="module")
async def mesh() -> AsyncIterator[Mesh]:
    m = await start_mesh([EchoBackend("small")], [EchoBackend("large")], MemoryExactStore(), router_budget_s=1.0)
    yield m
    await m.stop()


def nested(depth: int) -> str:
    return '{"not":' * depth + "{}" + "}" * depth


def ask(text: str = "What is 2 + 2?", **fields: Any) -> orchestrator_pb2.CompletionRequest:
    fields.setdefault("tenant", "acme")
    return orchestrator_pb2.CompletionRequest(messages=[common_pb2.Message(role=USER, content=text)], **fields)


def complete(request: orchestrator_pb2.CompletionRequest) -> Call:
    async def call(mesh: Mesh) -> Any:
        return await orchestrator_pb2_grpc.OrchestratorStub(mesh.channel("orchestrator")).Complete(request)

    return call


def complete_stream(request: orchestrator_pb2.CompletionRequest) -> Call:
    async def call(mesh: Mesh) -> Any:
        stub = orchestrator_pb2_grpc.OrchestratorStub(mesh.channel("orchestrator"))
        return [chunk async for chunk in stub.CompleteStream(request)]

    return call


def lookup(**fields: Any) -> Call:
    key = cache_pb2.CacheKeyMaterial(
        tenant="acme", messages=[common_pb2.Message(role=USER, content="hi?")], documents=fields.pop("documents", ())
    )

    async def call(mesh: Mesh) -> Any:
        request = cache_pb2.LookupRequest(key=key, **fields)
        return await cache_pb2_grpc.CacheStub(mesh.channel("cache")).Lookup(request)

    return call


def compress(documents: list[common_pb2.Document]) -> Call:
    async def call(mesh: Mesh) -> Any:
        request = compressor_pb2.CompressRequest(tenant="acme", documents=documents, question="which?")
        return await compressor_pb2_grpc.CompressorStub(mesh.channel("compressor")).Compress(request)

    return call


def generate(sampling: common_pb2.SamplingParams) -> Call:
    async def call(mesh: Mesh) -> Any:
        request = inference_pb2.GenerateRequest(
            tenant="acme", tier=common_pb2.TIER_SMALL, messages=[common_pb2.Message(role=USER, content="hi")]
        )
        request.sampling.CopyFrom(sampling)
        return await inference_pb2_grpc.InferenceStub(mesh.channel("inference")).Generate(request)

    return call


def raw(service: str, method: str, request: ProtoMessage, bad: bytes) -> Call:
    """``request`` serialized, with its content replaced by bytes no protobuf string may hold."""

    async def call(mesh: Mesh) -> Any:
        send = mesh.channel(service).unary_unary(method, request_serializer=None, response_deserializer=None)
        return await send(request.SerializeToString().replace(b"PLACEHOLDER", bad))

    return call


def bad_doc() -> list[common_pb2.Document]:
    return [common_pb2.Document(id="d", text="text", kind=BAD_KIND)]  # type: ignore[arg-type]


HUGE = "word " * 700_000  # 3.5 MB: refused by its bytes alone, never tokenized
LONG = "word " * 40_000  # 200 kB, 40k tokens: over the 32k cap by its tokens
PLACEHOLDER = ask("PLACEHOLDER")

CASES: dict[str, tuple[Call, str]] = {
    "response_format 123": (
        complete(ask(response_format="123")),
        "response_format must be a JSON schema, a JSON object",
    ),
    "response_format null": (complete(ask(response_format="null")), "got null"),
    "response_format 100k deep": (complete(ask(response_format=nested(100_000))), "response_format is over"),
    "response_format 5k deep": (complete(ask(response_format=nested(5_000))), "nested more than 32 levels"),
    "response_format 40 deep": (complete(ask(response_format=nested(40))), "nested more than 32 levels"),
    "response_format not a schema": (
        complete(ask(response_format='{"type": "strange"}')),
        "response_format is not a valid JSON schema",
    ),
    "response_format, streamed": (complete_stream(ask(response_format="123")), "a JSON object"),
    "document kind 99": (complete(ask(documents=bad_doc())), "documents[0].kind must be one of"),
    "tier 99": (complete(ask(tier=BAD_KIND)), "tier must be one of"),
    "lane 99": (complete(ask(lane=BAD_KIND)), "lane must be one of"),
    "temperature NaN": (
        complete(ask(sampling=common_pb2.SamplingParams(temperature=math.nan))),
        "sampling.temperature must be a finite number",
    ),
    "tenant with a trailing newline": (complete(ask(tenant="demo\n")), "tenant 'demo\\n' is invalid"),
    "3.5 MB prompt": (complete(ask(HUGE)), "over the 32000-token cap (COSTMESH_ORCHESTRATOR_MAX_PROMPT_TOKENS)"),
    "40k-token prompt": (complete(ask(LONG)), "tokens, over the 32000-token cap"),
    "40k-token document": (
        complete(ask(documents=[common_pb2.Document(text=LONG)])),
        "tokens, over the 32000-token cap",
    ),
    "Cache.Lookup document kind 99": (lookup(documents=bad_doc()), "key.documents[0].kind must be one of"),
    "Cache.Lookup tiers 99": (lookup(tiers=BAD_KIND), "tiers must be one of LOOKUP_TIERS_UNSPECIFIED"),
    "Compressor.Compress document kind 99": (compress(bad_doc()), "documents[0].kind must be one of"),
    "Inference.Generate temperature NaN": (
        generate(common_pb2.SamplingParams(temperature=math.nan)),
        "sampling.temperature must be a finite number",
    ),
    "Inference.Generate top_p NaN": (generate(common_pb2.SamplingParams(top_p=math.nan)), "sampling.top_p"),
    # A lone surrogate (U+D800 encoded as UTF-8) cannot be a protobuf string: grpc's own decoding of it
    # answered UNKNOWN; the interceptor decodes the request itself and answers INVALID_ARGUMENT.
    "lone surrogate": (
        raw("orchestrator", "/costmesh.v1.Orchestrator/Complete", PLACEHOLDER, b"\xed\xa0\x80"),
        "could not be parsed (invalid UTF-8",
    ),
    "invalid UTF-8": (
        raw(
            "inference", "/costmesh.v1.Inference/Generate", inference_pb2.GenerateRequest(tenant="PLACEHOLDER"), b"\xff"
        ),
        "could not be parsed (invalid UTF-8",
    ),
}


@pytest.mark.parametrize("case", CASES)
async def test_bad_input_is_invalid_argument(mesh: Mesh, case: str) -> None:
    call, message = CASES[case]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(mesh)
    assert caught.value.code() == INVALID, caught.value.details()
    assert message in (caught.value.details() or "")


async def test_the_mesh_still_serves_good_requests_after_them(mesh: Mesh) -> None:
    stub = orchestrator_pb2_grpc.OrchestratorStub(mesh.channel("orchestrator"))
    schema = '{"type": "object", "properties": {"answer": {"type": "string"}}}'
    reply = await stub.Complete(ask("a good question?", response_format=schema))
    assert reply.answer.startswith("echo:")
    for name in mesh.services:
        health = health_pb2_grpc.HealthStub(mesh.channel(name))
        status = await health.Check(health_pb2.HealthCheckRequest(service=""))
        assert status.status == health_pb2.HealthCheckResponse.SERVING, name
