"""POST /v1/chat/completions (plain and streamed) and the model list: OpenAI bodies onto Complete and
CompleteStream. The decisions behind an answer go back in `x-costmesh-*` headers (and in a `costmesh`
field SDKs keep); per-request cache control comes in `x-costmesh-cache-control: no-cache, no-store`, as
Portkey's headers do it. A streamed answer's decisions are in its last chunk: headers leave first.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from costmesh.v1 import orchestrator_pb2
from services.common.apikeys import KeyPolicy
from services.common.openai_wire import (
    MODELS,
    WireError,
    cache_kind,
    chat_completion,
    chat_request,
    decisions,
    finish_reason,
    usage,
)
from services.gateway.context import Caller, Gateway, authenticate, gateway_of, read_json
from services.gateway.errors import ApiError, from_grpc

MODEL_TIERS = {"costmesh-auto": None, "costmesh-small": "small", "costmesh-large": "large"}


def cache_control(request: Request, proto: orchestrator_pb2.CompletionRequest) -> None:
    header = request.headers.get("x-costmesh-cache-control", "")
    for directive in (d.strip().lower() for d in header.split(",") if d.strip()):
        if directive == "no-cache":
            proto.cache.no_cache = True
        elif directive == "no-store":
            proto.cache.no_store = True
        else:
            raise ApiError(400, f"x-costmesh-cache-control: unknown directive {directive!r} (no-cache, no-store)")


def decision_headers(response: orchestrator_pb2.CompletionResponse) -> dict[str, str]:
    d = decisions(response)
    return {
        "x-costmesh-cache": cache_kind(response),
        "x-costmesh-tier": d["tier"],
        "x-costmesh-escalated": "true" if d["escalated"] else "false",
        "x-costmesh-task": d["task"],
        "x-costmesh-student": "true" if d["student"] else "false",
        "x-costmesh-cost-usd": f"{d['cost_usd']:.10f}",
        "x-costmesh-baseline-usd": f"{d['baseline_cost_usd']:.10f}",
        "x-costmesh-trace-id": response.trace_id,
        "x-request-id": response.request_id,
    }


def to_request(body: Any, request: Request) -> orchestrator_pb2.CompletionRequest:
    try:
        proto = chat_request(body, tenant=request.headers.get("x-costmesh-tenant", ""))
    except WireError as exc:
        status = 404 if exc.code == "model_not_found" else 400
        raise ApiError(status, str(exc), param=exc.param, code=exc.code) from None
    proto.request_id = uuid.uuid4().hex
    proto.task = request.headers.get("x-costmesh-task", "").strip()  # checked by the orchestrator
    cache_control(request, proto)
    return proto


async def chat_completions(request: Request) -> Response:
    gw = gateway_of(request)
    caller = await authenticate(request)
    body = await read_json(request, gw.settings.max_body_bytes)
    proto = to_request(body, request)
    stream, options = body.get("stream") or False, body.get("stream_options") or {}
    if not isinstance(stream, bool) or not isinstance(options, dict):
        raise ApiError(400, "stream must be a boolean and stream_options an object", param="stream")
    if stream:
        return await stream_completion(gw, caller, proto, bool(options.get("include_usage")))
    try:
        response = await gw.orchestrator.Complete(
            proto, timeout=gw.settings.request_timeout_s, metadata=caller.metadata
        )
    except grpc.aio.AioRpcError as exc:
        raise from_grpc(exc) from None
    return JSONResponse(chat_completion(response, int(time.time())), headers=decision_headers(response))


def sse(data: dict[str, Any] | str) -> bytes:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n".encode()


async def stream_completion(
    gw: Gateway, caller: Caller, proto: orchestrator_pb2.CompletionRequest, include_usage: bool
) -> Response:
    call = gw.orchestrator.CompleteStream(proto, timeout=gw.settings.request_timeout_s, metadata=caller.metadata)
    chunks = call.__aiter__()
    try:
        first = await anext(chunks)  # auth, budget and bad input fail here, as a proper HTTP status
    except grpc.aio.AioRpcError as exc:
        raise from_grpc(exc) from None
    except StopAsyncIteration:
        raise ApiError(502, "the orchestrator ended the stream without an answer") from None
    created = int(time.time())
    chunk_id = f"chatcmpl-{proto.request_id}"
    model = proto.metadata.get("model", "costmesh-auto")

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        body = {"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": model}
        return sse({**body, "choices": [choice], **extra})

    def encode(item: orchestrator_pb2.CompletionChunk) -> list[bytes]:
        if item.WhichOneof("chunk") == "delta":
            return [chunk({"content": item.delta})]
        final = item.final
        out = [chunk({}, finish_reason(final), costmesh=decisions(final))]
        if include_usage:
            body = {"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": final.model}
            out.append(sse({**body, "choices": [], "usage": usage(final)}))
        return out

    async def events() -> AsyncIterator[bytes]:
        try:
            yield chunk({"role": "assistant", "content": ""})
            for event in encode(first):
                yield event
            async for item in chunks:
                for event in encode(item):
                    yield event
        except grpc.aio.AioRpcError as exc:  # after the headers went out: an error event, then the end
            yield sse(from_grpc(exc).body())
        finally:
            call.cancel()  # a client that hung up stops the model call
        yield sse("[DONE]")

    return StreamingResponse(events(), media_type="text/event-stream", headers={"cache-control": "no-cache"})


async def list_models(request: Request) -> Response:
    caller = await authenticate(request)
    return JSONResponse({"object": "list", "data": [model_object(m) for m in usable_models(caller.policy)]})


async def get_model(request: Request) -> Response:
    caller = await authenticate(request)
    name = request.path_params["model"]
    if name not in usable_models(caller.policy):
        raise ApiError(404, f"The model {name!r} does not exist or this key may not use it", code="model_not_found")
    return JSONResponse(model_object(name))


def usable_models(policy: KeyPolicy) -> list[str]:
    return [m for m in MODELS if MODEL_TIERS[m] is None or MODEL_TIERS[m] in policy.tiers]


def model_object(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "costmesh"}
