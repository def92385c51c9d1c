"""A generated corpus of mutated requests against every service's RPCs, on real servers: whatever the
input, the status is never INTERNAL or UNKNOWN (a crash), and every service is still SERVING afterwards.

Deterministic: a fixed seed picks the mutations, so CI runs the same ~300 requests every time. A failure
prints the RPC and the request (text format) to reproduce it with.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message as ProtoMessage
from grpc_health.v1 import health_pb2, health_pb2_grpc

from costmesh.v1 import (
    cache_pb2,
    common_pb2,
    compressor_pb2,
    inference_pb2,
    orchestrator_pb2,
    router_pb2,
    summarizer_pb2,
)
from tests.service.fakes import EchoBackend
from tests.service.mesh import Mesh, start_mesh
from tests.unit.fakes import MemoryExactStore

SEED = 17
PER_RPC = 28  # x 11 RPCs: ~300 requests
CRASHES = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
USER = common_pb2.ROLE_USER

STRINGS = [
    "",
    " ",
    "demo\n",
    "a\x00b",
    "123",
    "null",
    "{",
    "[]",
    '{"type": "strange"}',
    '{"a":' * 2000 + "1" + "}" * 2000,
    "\u2028",
    "\U0001f600" * 50,
    "x" * 70,
    "word " * 8000,
]
INTS = [-1, 0, 1, 4, 99, -(2**31), 2**31 - 1]
FLOATS = [math.nan, math.inf, -math.inf, -1.0, 0.0, 0.5, 1.0, 2.5, 1e30, -1e-30]


def messages(text: str = "What is the capital of France?") -> list[common_pb2.Message]:
    system = common_pb2.Message(role=common_pb2.ROLE_SYSTEM, content="Be brief.")
    return [system, common_pb2.Message(role=USER, content=text)]


def documents() -> list[common_pb2.Document]:
    return [
        common_pb2.Document(id="f", text="Paris is the capital of France.", kind=common_pb2.DOCUMENT_KIND_FIXED),
        common_pb2.Document(id="c", text="France is in Europe.", kind=common_pb2.DOCUMENT_KIND_CONTEXT),
    ]


def embedding() -> common_pb2.Embedding:
    return common_pb2.Embedding(values=[0.1] * 384, model="all-minilm-l6-v2")


def key() -> cache_pb2.CacheKeyMaterial:
    return cache_pb2.CacheKeyMaterial(tenant="acme", messages=messages(), documents=documents())


def answer() -> cache_pb2.CachedAnswer:
    return cache_pb2.CachedAnswer(answer="Paris", model="m", tier=common_pb2.TIER_SMALL, cost_usd=0.1)


# (service, method, a valid request); the mutations start from these.
RPCS: list[tuple[str, str, ProtoMessage]] = [
    ("orchestrator", "Complete", orchestrator_pb2.CompletionRequest(tenant="acme", messages=messages())),
    ("orchestrator", "CompleteStream", orchestrator_pb2.CompletionRequest(tenant="acme", messages=messages())),
    ("cache", "Lookup", cache_pb2.LookupRequest(key=key(), embedding=embedding())),
    ("cache", "Store", cache_pb2.StoreRequest(key=key(), embedding=embedding(), answer=answer())),
    ("cache", "Invalidate", cache_pb2.InvalidateRequest(tenant="acme", all=True)),
    ("compressor", "Compress", compressor_pb2.CompressRequest(tenant="acme", documents=documents(), question="q?")),
    ("router", "Route", router_pb2.RouteRequest(tenant="acme", messages=messages(), embedding=embedding())),
    ("router", "Assess", router_pb2.AssessRequest(tenant="acme", messages=messages(), embedding=embedding())),
    ("summarizer", "Prune", summarizer_pb2.PruneRequest(tenant="acme", messages=messages() * 4, max_tokens=20)),
    ("inference", "Generate", inference_pb2.GenerateRequest(tier=common_pb2.TIER_SMALL, messages=messages())),
    ("inference", "GenerateStream", inference_pb2.GenerateRequest(tier=common_pb2.TIER_LARGE, messages=messages())),
]
SERVICES = {
    "orchestrator": "Orchestrator",
    "cache": "Cache",
    "compressor": "Compressor",
    "router": "Router",
    "summarizer": "Summarizer",
    "inference": "Inference",
}


FLOAT_TYPES = {FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE}
INT32_TYPES = {FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_UINT32}


def scalar(field: FieldDescriptor, rng: random.Random) -> Any:
    pools: dict[int, list[Any]] = {
        FieldDescriptor.TYPE_STRING: STRINGS,
        FieldDescriptor.TYPE_BOOL: [True, False],
        FieldDescriptor.TYPE_BYTES: [b"", b"\xff\x00"],
    }
    if field.type == FieldDescriptor.TYPE_ENUM:
        return rng.choice([*field.enum_type.values_by_number, 99, -1])
    if field.type in pools:
        return rng.choice(pools[field.type])
    if field.type in FLOAT_TYPES:
        return rng.choice(FLOATS)
    value = rng.choice(INTS)
    if field.type in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_UINT64):
        value = abs(value)
    return max(min(value, 2**31 - 1), -(2**31)) if field.type in INT32_TYPES else value


def mutate_repeated(message: ProtoMessage, field: FieldDescriptor, rng: random.Random, depth: int) -> None:
    items = getattr(message, field.name)
    if field.message_type is None:
        if rng.random() < 0.5:
            del items[:]
        else:
            items.extend(scalar(field, rng) for _ in range(rng.choice([1, 5, 400])))
    elif items and rng.random() < 0.7 and depth < 3:
        mutate(items[rng.randrange(len(items))], rng, depth + 1)
    elif rng.random() < 0.5:
        del items[:]
    else:
        for _ in range(rng.choice([1, 50, 1200])):
            items.add()


def mutate(message: ProtoMessage, rng: random.Random, depth: int = 0) -> None:
    """One random change somewhere in ``message``: a field set to an edge value, cleared, or (repeated
    fields) emptied, grown or given a bad element; nested messages are mutated recursively."""
    field = rng.choice(message.DESCRIPTOR.fields)
    if rng.random() < 0.1:
        message.ClearField(field.name)
    elif field.message_type is not None and field.message_type.GetOptions().map_entry:
        value_field = field.message_type.fields_by_name["value"]
        getattr(message, field.name)[rng.choice(STRINGS[:9])] = scalar(value_field, rng)
    elif field.is_repeated:
        mutate_repeated(message, field, rng, depth)
    elif field.message_type is not None:
        if depth < 3:
            mutate(getattr(message, field.name), rng, depth + 1)
    else:
        setattr(message, field.name, scalar(field, rng))


def corpus() -> list[tuple[str, str, ProtoMessage | bytes]]:
    rng = random.Random(SEED)
    cases: list[tuple[str, str, ProtoMessage | bytes]] = []
    for service, method, valid in RPCS:
        for i in range(PER_RPC):
            request = type(valid)()
            request.CopyFrom(valid)
            for _ in range(1 + i % 3):
                mutate(request, rng)
            if i % 7 == 6:  # bytes no parser expects: truncated, or a string made invalid UTF-8
                data = request.SerializeToString()
                cut = data[: rng.randrange(len(data) + 1)]
                cases.append((service, method, cut if i % 2 else data.replace(b"acme", b"ac\xed\xa0")))
            else:
                cases.append((service, method, request))
    return cases


@pytest.fixture(scope="module")
async def mesh() -> AsyncIterator[Mesh]:
    m = await start_mesh([EchoBackend("small")], [EchoBackend("large")], MemoryExactStore(), router_budget_s=1.0)
    yield m
    await m.stop()


def caller(channel: grpc.aio.Channel, service: str, method: str) -> Callable[[bytes], Any]:
    """The RPC sent as raw bytes, so malformed messages go on the wire too."""
    path = f"/costmesh.v1.{SERVICES[service]}/{method}"
    if method.endswith("Stream"):
        return channel.unary_stream(path, request_serializer=None, response_deserializer=None)
    return channel.unary_unary(path, request_serializer=None, response_deserializer=None)


async def outcome(call: Callable[[bytes], Any], data: bytes, stream: bool) -> grpc.StatusCode:
    try:
        if stream:
            async for _ in call(data, timeout=10):
                pass
        else:
            await call(data, timeout=10)
    except grpc.aio.AioRpcError as e:
        return e.code()
    return grpc.StatusCode.OK


async def test_no_request_crashes_a_service(mesh: Mesh) -> None:
    cases = corpus()
    assert len(cases) >= 300
    channels = {name: mesh.channel(name) for name in SERVICES}
    crashes, codes = [], Counter[str]()
    for service, method, request in cases:
        data = request if isinstance(request, bytes) else request.SerializeToString()
        code = await outcome(caller(channels[service], service, method), data, method.endswith("Stream"))
        codes[code.name] += 1
        if code in CRASHES:
            shown = repr(request[:200]) if isinstance(request, bytes) else str(request)[:600]
            crashes.append(f"{service}.{method} -> {code.name}: {shown}")
    assert not crashes, "\n".join(crashes)
    # The corpus reaches both sides: requests refused and requests served.
    assert codes["OK"] > 30 and codes["INVALID_ARGUMENT"] > 100, codes
    for name in mesh.services:
        health = health_pb2_grpc.HealthStub(channels[name])
        reply = await health.Check(health_pb2.HealthCheckRequest(service=""))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, name
