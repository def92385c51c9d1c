"""Embeddings through the mesh (OpenAI's /v1/embeddings, and batch lines for it): the tenant checked, the
call made by inference (which owns the embedding model and its price) and traced. No grpc here."""

from __future__ import annotations

import uuid
from typing import Protocol

from opentelemetry import trace

from costmesh.v1 import common_pb2, inference_pb2, orchestrator_pb2
from services.common.telemetry import current_trace_id
from services.common.validation import check_enum, check_tenant

tracer = trace.get_tracer(__name__)


class Embeds(Protocol):
    async def embed(self, request: inference_pb2.EmbedRequest, timeout_s: float) -> inference_pb2.EmbedResponse: ...


async def embed(
    inference: Embeds, request: orchestrator_pb2.EmbeddingsRequest, timeout_s: float
) -> orchestrator_pb2.EmbeddingsResponse:
    check_tenant(request.tenant)
    check_enum(request.lane, common_pb2.Lane.DESCRIPTOR, "lane")
    request_id = request.request_id or uuid.uuid4().hex
    with tracer.start_as_current_span("stage.embeddings") as span:
        span.set_attribute("costmesh.inputs", len(request.input))
        response = await inference.embed(
            inference_pb2.EmbedRequest(
                tenant=request.tenant, request_id=request_id, input=list(request.input), lane=request.lane
            ),
            timeout_s,
        )
        span.set_attribute("costmesh.prompt_tokens", response.prompt_tokens)
    return orchestrator_pb2.EmbeddingsResponse(
        request_id=request_id,
        data=list(response.data),
        model=response.model,
        prompt_tokens=response.prompt_tokens,
        cost=response.cost,
        trace_id=current_trace_id(),
    )
