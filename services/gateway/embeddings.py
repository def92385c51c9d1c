"""POST /v1/embeddings onto Orchestrator.Embed: the key's tenant and budget, priced like any call."""

from __future__ import annotations

import uuid

import grpc
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from services.common.openai_embeddings import embeddings_body, embeddings_request
from services.common.openai_wire import WireError
from services.gateway.context import authenticate, gateway_of, read_json
from services.gateway.errors import ApiError, from_grpc


async def embeddings(request: Request) -> Response:
    gw = gateway_of(request)
    caller = await authenticate(request)
    body = await read_json(request, gw.settings.max_body_bytes)
    try:
        proto, encoding = embeddings_request(body, tenant=request.headers.get("x-costmesh-tenant", ""))
    except WireError as exc:
        status = 404 if exc.code == "model_not_found" else 400
        raise ApiError(status, str(exc), param=exc.param, code=exc.code) from None
    proto.request_id = uuid.uuid4().hex
    try:
        response = await gw.orchestrator.Embed(proto, timeout=gw.settings.request_timeout_s, metadata=caller.metadata)
    except grpc.aio.AioRpcError as exc:
        raise from_grpc(exc) from None
    headers = {
        "x-costmesh-cost-usd": f"{response.cost.cost_usd:.10f}",
        "x-costmesh-trace-id": response.trace_id,
        "x-request-id": response.request_id,
    }
    return JSONResponse(embeddings_body(response, encoding), headers=headers)
