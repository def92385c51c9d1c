"""The OpenAI-compatible HTTP API: a thin translation onto the orchestrator's RPCs, no second pipeline.

Every route authenticates the caller's API key (401 before any gRPC hop) and forwards the key to the
orchestrator, which authenticates it again and owns tenancy, tiers and budgets. Errors are OpenAI's
JSON shape with the matching HTTP status, never a stack trace.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import grpc
from grpc_health.v1 import health_pb2
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.gateway import batches, chat, embeddings
from services.gateway.context import gateway_of
from services.gateway.errors import ApiError

log = logging.getLogger(__name__)
tracer = trace.get_tracer("costmesh.gateway")
Handler = Callable[[Request], Awaitable[Response]]


async def health(request: Request) -> Response:
    """200 while the orchestrator serves; `costmesh up` and balancers probe this."""
    gw = gateway_of(request)
    try:
        reply = await gw.health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
    except grpc.aio.AioRpcError:
        return JSONResponse({"status": "orchestrator unreachable"}, status_code=503)
    serving = reply.status == health_pb2.HealthCheckResponse.SERVING
    if not serving:
        return JSONResponse({"status": "orchestrator not serving"}, status_code=503)
    return JSONResponse({"status": "ok"})


def error_response(exc: ApiError) -> Response:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = "unknown route" if exc.status_code == 404 else str(exc.detail)
    return error_response(ApiError(exc.status_code, f"{message}: {request.method} {request.url.path}"))


async def on_crash(request: Request, exc: Exception) -> Response:
    log.exception("%s %s failed", request.method, request.url.path)
    return error_response(ApiError(500, "internal error in the gateway; see its log"))


def traced(name: str, handler: Handler) -> Handler:
    """A SERVER span per request (the orchestrator's spans nest under it) and the route's metrics."""

    async def run(request: Request) -> Response:
        gw = gateway_of(request)
        started = time.perf_counter()
        status = 500
        with tracer.start_as_current_span(name, kind=SpanKind.SERVER):
            try:
                response = await handler(request)
                status = response.status_code
                return response
            except ApiError as exc:
                status = exc.status
                raise
            finally:
                gw.requests.labels(name, str(status)).inc()
                gw.latency.labels(name).observe(time.perf_counter() - started)

    return run


def routes() -> list[Route]:
    table: list[tuple[str, str, Handler]] = [
        ("/v1/chat/completions", "POST", chat.chat_completions),
        ("/v1/embeddings", "POST", embeddings.embeddings),
        ("/v1/models", "GET", chat.list_models),
        ("/v1/models/{model:path}", "GET", chat.get_model),
        ("/v1/files", "POST", batches.upload_file),
        ("/v1/files/{file_id}", "GET", batches.get_file),
        ("/v1/files/{file_id}/content", "GET", batches.file_content),
        ("/v1/batches", "POST", batches.create_batch),
        ("/v1/batches/{batch_id}", "GET", batches.get_batch),
        ("/v1/batches/{batch_id}/cancel", "POST", batches.cancel_batch),
    ]
    out = [Route(path, traced(f"{method} {path}", fn), methods=[method]) for path, method, fn in table]
    return [*out, Route("/health", health, methods=["GET"])]


def build_app() -> Starlette:
    """The routes and error handlers; the lifespan (server.py) puts the Gateway in app.state."""
    return Starlette(
        routes=routes(),
        exception_handlers={ApiError: on_api_error, HTTPException: on_http_error, Exception: on_crash},
    )
