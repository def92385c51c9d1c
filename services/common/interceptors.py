"""Server and client interceptors: tracing, RPC metrics and the one error-to-status mapping."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CollectorRegistry, Counter, Histogram

from services.common.errors import status_for

log = logging.getLogger(__name__)

# Health checks and reflection are polled constantly; tracing them would drown the real traffic.
UNTRACED_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")


class RpcMetrics:
    """Per-service RPC counters; each service owns its registry so several can share a process."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.service = service
        self.total = Counter("costmesh_rpc_total", "RPCs handled", ["service", "method", "code"], registry=registry)
        self.latency = Histogram(
            "costmesh_rpc_duration_seconds",
            "RPC handling time",
            ["service", "method"],
            registry=registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )

    def observe(self, method: str, code: grpc.StatusCode, seconds: float) -> None:
        self.total.labels(self.service, method, code.name).inc()
        self.latency.labels(self.service, method).observe(seconds)


def _metadata_dict(context: grpc.aio.ServicerContext[Any, Any]) -> dict[str, str]:
    return {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}


class ServerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]  # generic only in the stubs
    """Wraps every handler: a SERVER span (context taken from the caller), metrics, error mapping."""

    def __init__(self, metrics: RpcMetrics) -> None:
        self._metrics = metrics
        self._tracer = trace.get_tracer("costmesh.server")

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(details)
        method: str = details.method
        if handler is None or method.startswith(UNTRACED_PREFIXES):
            return handler
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler  # no client-streaming RPCs in costmesh's protos

    @contextlib.asynccontextmanager
    async def _handled(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[None]:
        """One RPC: a SERVER span under the caller's trace context, metrics, and domain errors -> status."""
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        parent = propagate.extract(_metadata_dict(context))
        with self._tracer.start_as_current_span(method, context=parent, kind=SpanKind.SERVER) as span:
            try:
                yield
            except grpc.aio.AbortError:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            except Exception as exc:
                code, message = _record_failure(span, method, exc)
                await context.abort(code, message)
            finally:
                self._metrics.observe(method, code, time.perf_counter() - started)

    def _wrap_unary(self, method: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
        async def wrapper(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            async with self._handled(method, context):
                return await behavior(request, context)

        return wrapper

    def _wrap_stream(self, method: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
        async def wrapper(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            async with self._handled(method, context):
                async for item in behavior(request, context):
                    yield item

        return wrapper


def _record_failure(span: trace.Span, method: str, exc: Exception) -> tuple[grpc.StatusCode, str]:
    code, message = status_for(exc)
    if code == grpc.StatusCode.INTERNAL:
        log.exception("%s failed", method)
    span.set_status(Status(StatusCode.ERROR, message))
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    return code, message


def _with_trace_context(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    for key, value in carrier.items():
        metadata.add(key, value)
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


class TracePropagation(
    grpc.aio.UnaryUnaryClientInterceptor,  # type: ignore[type-arg]  # generic only in the stubs
    grpc.aio.UnaryStreamClientInterceptor,  # type: ignore[type-arg]
):
    """Client side: carries the current trace context to the next hop in the call's metadata."""

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(_with_trace_context(client_call_details), request)

    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(_with_trace_context(client_call_details), request)


def client_channel(target: str) -> grpc.aio.Channel:
    """An insecure channel to another costmesh service that propagates the trace context."""
    # grpc-stubs types this list with a placeholder that no real interceptor matches.
    return grpc.aio.insecure_channel(target, interceptors=[TracePropagation()])  # type: ignore[list-item]
