"""What every gateway route shares: the stores, the service stubs, metrics, authentication, bodies."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2_grpc
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.requests import Request

from costmesh.v1 import batch_pb2_grpc, orchestrator_pb2_grpc
from services.common.apikeys import KeyPolicy, KeyStore, bearer
from services.common.errors import Unauthenticated
from services.gateway.errors import ApiError
from services.gateway.files import FileStore
from services.gateway.settings import GatewaySettings


@dataclass
class Gateway:
    """What the routes share: settings, the key and file stores, the orchestrator and batch stubs, metrics."""

    settings: GatewaySettings
    keys: KeyStore
    files: FileStore
    channel: grpc.aio.Channel
    registry: CollectorRegistry
    batch_channel: grpc.aio.Channel

    def __post_init__(self) -> None:
        self.orchestrator = orchestrator_pb2_grpc.OrchestratorStub(self.channel)
        self.batches = batch_pb2_grpc.BatchStub(self.batch_channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)
        self.requests = Counter(
            "costmesh_gateway_requests_total", "HTTP requests", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "costmesh_gateway_request_seconds",
            "HTTP handling time (to the first byte for streams)",
            ["route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120),
        )


@dataclass(frozen=True)
class Caller:
    policy: KeyPolicy
    metadata: tuple[tuple[str, str], ...]  # what the orchestrator call carries: the same key


def gateway_of(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


async def authenticate(request: Request) -> Caller:
    key = bearer(request.headers.get("authorization", ""))
    try:
        policy = await gateway_of(request).keys.authenticate(key)
    except Unauthenticated as exc:
        raise ApiError(401, str(exc), code="invalid_api_key") from None
    return Caller(policy, (("authorization", f"Bearer {key}"),))


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the request body is over {limit} bytes")
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise ApiError(413, f"the request body is over {limit} bytes")
    return bytes(body)


async def read_json(request: Request, limit: int) -> Any:
    try:
        return json.loads(await read_body(request, limit))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ApiError(400, f"the body is not valid JSON: {exc}") from None
