"""Server and client interceptors: the mesh token, tracing, RPC metrics and the one error-to-status mapping."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CollectorRegistry, Counter, Histogram

from services.common.errors import LIMIT, RETRY_AFTER, SPENT_USD, InvalidInput, status_for
from services.common.meshauth import MESH_TOKEN_KEY, is_mesh_call, mesh_token

log = logging.getLogger(__name__)

# Health checks and reflection are polled constantly; tracing them would drown the real traffic. They are
# also the only methods open to callers without the mesh token: probes, balancers and grpcurl need them.
UNTRACED_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")
UNAUTHENTICATED_MESSAGE = "missing or wrong mesh token"


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
    """Wraps every handler: the mesh token check, a SERVER span (context taken from the caller), metrics,
    error mapping.

    A call without the expected token gets UNAUTHENTICATED before any service code runs, unless it is health,
    reflection, or a method under one of ``public_prefixes`` (a service that authenticates its callers
    itself). An empty ``token`` trusts no caller: a service started without one serves health only.
    """

    def __init__(self, metrics: RpcMetrics, token: str, public_prefixes: Sequence[str] = ()) -> None:
        self._metrics = metrics
        self._tracer = trace.get_tracer("costmesh.server")
        self._token = token
        self._public = tuple(public_prefixes)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(details)
        method: str = details.method
        if handler is None or method.startswith(UNTRACED_PREFIXES):
            return handler
        if not method.startswith(self._public) and not is_mesh_call(details.invocation_metadata, self._token):
            return self._rejecting(method, handler)
        if handler.unary_unary is not None:
            # The request is decoded inside the wrapper (decoded()), where a bad one is INVALID_ARGUMENT.
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(method, handler.unary_unary, handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(method, handler.unary_stream, handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        return handler  # no client-streaming RPCs in costmesh's protos

    def _rejecting(self, method: str, handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
        """A handler that refuses the call. The request stays undecoded: nothing of it is read."""

        async def reject(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> None:
            self._metrics.observe(method, grpc.StatusCode.UNAUTHENTICATED, 0.0)
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)

        serializer = handler.response_serializer
        if handler.unary_stream is not None:  # a coroutine serves a server-streaming RPC too (grpc.aio)
            return grpc.unary_stream_rpc_method_handler(reject, response_serializer=serializer)
        return grpc.unary_unary_rpc_method_handler(reject, response_serializer=serializer)

    @contextlib.asynccontextmanager
    async def _handled(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[None]:
        """One RPC: a SERVER span under the caller's trace context, metrics, and domain errors -> status.

        The status counted is the one the client saw: a call it abandoned (its deadline passed, or it
        cancelled) is DEADLINE_EXCEEDED or CANCELLED even when the handler went on to finish."""
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
                context.set_trailing_metadata(_limit_trailers(exc))
                await context.abort(code, message)
            except BaseException:  # CancelledError, GeneratorExit: grpc stopped the handler, the client left
                code = abandoned(context)
                raise
            finally:
                if code == grpc.StatusCode.OK and past_deadline(context):
                    code = grpc.StatusCode.DEADLINE_EXCEEDED  # finished, but after the client gave up
                if code != grpc.StatusCode.OK:
                    span.set_attribute("rpc.grpc.status_code", code.value[0])
                self._metrics.observe(method, code, time.perf_counter() - started)

    def _wrap_unary(
        self, method: str, behavior: Callable[..., Any], decode: Callable[[bytes], Any] | None
    ) -> Callable[..., Any]:
        async def wrapper(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            async with self._handled(method, context):
                return await behavior(decoded(request, decode), context)

        return wrapper

    def _wrap_stream(
        self, method: str, behavior: Callable[..., Any], decode: Callable[[bytes], Any] | None
    ) -> Callable[..., Any]:
        async def wrapper(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            async with self._handled(method, context):
                async for item in behavior(decoded(request, decode), context):
                    yield item

        return wrapper


# A client's deadline reaches the server as a timeout, so the server's copy of it ends a little later than
# the client's: a cancellation this close to it is the client's deadline passing, not a cancel.
DEADLINE_SLACK_S = 0.05


def past_deadline(context: grpc.aio.ServicerContext[Any, Any]) -> bool:
    remaining = context.time_remaining()
    return remaining is not None and remaining <= DEADLINE_SLACK_S


def abandoned(context: grpc.aio.ServicerContext[Any, Any]) -> grpc.StatusCode:
    """The status a client saw when grpc cancelled its handler: its deadline, or its own cancel."""
    return grpc.StatusCode.DEADLINE_EXCEEDED if past_deadline(context) else grpc.StatusCode.CANCELLED


def decoded(request: Any, decode: Callable[[bytes], Any] | None) -> Any:
    """The request message, decoded here rather than by grpc: grpc answers a message it cannot parse
    (invalid UTF-8 in a string field, a truncated message) with UNKNOWN; here it is INVALID_ARGUMENT."""
    if decode is None:
        return request
    try:
        return decode(request)
    except DecodeError as e:
        raise InvalidInput(f"the request could not be parsed (invalid UTF-8 in a string, or malformed): {e}") from None


def _limit_trailers(exc: Exception) -> tuple[tuple[str, str], ...]:
    """RateLimited says when to come back (`retry-after`, seconds) and which limit it hit."""
    trailers = []
    if retry_after_s := getattr(exc, "retry_after_s", 0.0):
        trailers.append((RETRY_AFTER, str(math.ceil(retry_after_s))))
    if limit := getattr(exc, "limit", ""):
        trailers.append((LIMIT, str(limit)))
    # What a failed request's model calls cost (the orchestrator's servicer sets it): the batch lane adds it
    # to the job, so a failed attempt's cheap answer is not spent outside every account.
    if spent_usd := getattr(exc, "spent_usd", 0.0):
        trailers.append((SPENT_USD, repr(float(spent_usd))))
    return tuple(trailers)


def _record_failure(span: trace.Span, method: str, exc: Exception) -> tuple[grpc.StatusCode, str]:
    code, message = status_for(exc)
    if code == grpc.StatusCode.INTERNAL:
        log.exception("%s failed", method)
    span.set_status(Status(StatusCode.ERROR, message))
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    return code, message


def _outgoing(details: grpc.aio.ClientCallDetails, token: str) -> grpc.aio.ClientCallDetails:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    for key, value in carrier.items():
        metadata.add(key, value)
    if token:
        metadata.add(MESH_TOKEN_KEY, token)
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


class UnaryMeshMetadata(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]  # generic only in the stubs
    """Client side of unary calls: carries the current trace context and the mesh token to the next hop."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(_outgoing(client_call_details, self._token), request)


# A separate class for streams: grpc.aio files an interceptor under the first call kind it implements only.
class StreamMeshMetadata(grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[type-arg]  # generic only in the stubs
    """Client side of server-streaming calls: the same metadata as UnaryMeshMetadata."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(_outgoing(client_call_details, self._token), request)


# Every client channel of the mesh. gRPC's default reconnect backoff starts at 1 s and grows x1.6 up to
# 120 s, so a stage restarted under load was reconnected only after up to 20 s, every call failing open
# meanwhile. Here a lost connection is retried after 100 ms and never more than 1 s apart: a restarted
# service is reached within ~1 s of listening again. Each attempt keeps the default 20 s to connect
# (grpc.min_reconnect_backoff_ms), so a slow handshake on a loaded machine is not cut off. Keepalive
# pings find a peer that vanished without closing the connection (a dead host, a dropped route) on long
# calls, but no more often than every 5 min, the least interval a gRPC server accepts by default
# (grpc.http2.min_recv_ping_interval_without_data_ms): a client that pings more often is sent GOAWAY
# (too_many_pings) in the middle of a long model call. Replies may be up to 64 MiB (gRPC's default is 4):
# an Embed reply of 2,048 inputs at 3,072 dimensions is 25 MB; what a caller may send stays at the
# servers' 4 MiB default.
MAX_REPLY_BYTES = 64 * 1024 * 1024
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", MAX_REPLY_BYTES),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.keepalive_time_ms", 300_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 0),
)


def client_channel(target: str, token: str | None = None) -> grpc.aio.Channel:
    """An insecure channel to another costmesh service that sends the mesh token and the trace context.

    ``token`` defaults to this process's own (COSTMESH_MESH_TOKEN); tools outside the mesh pass the stack's.
    """
    token = mesh_token() if token is None else token
    interceptors = [UnaryMeshMetadata(token), StreamMeshMetadata(token)]
    # grpc-stubs types this list with a placeholder that no real interceptor matches.
    return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS, interceptors=interceptors)  # type: ignore[arg-type]


class _BlockingCallDetails(grpc.ClientCallDetails):
    """grpc.ClientCallDetails is abstract: the blocking API needs a concrete one to pass on."""

    def __init__(self, details: grpc.ClientCallDetails, metadata: tuple[tuple[str, str | bytes], ...]) -> None:
        self.method = details.method
        self.timeout = details.timeout
        self.metadata = metadata
        self.credentials = details.credentials
        self.wait_for_ready = getattr(details, "wait_for_ready", None)
        self.compression = getattr(details, "compression", None)


class BlockingMeshToken(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[type-arg]  # generic only in the stubs
    grpc.UnaryStreamClientInterceptor,  # type: ignore[type-arg]
):
    """The blocking API's client side (the CLI, benches): sends the mesh token with every call."""

    def __init__(self, token: str) -> None:
        self._token = token

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = (*(details.metadata or ()), (MESH_TOKEN_KEY, self._token))
        return _BlockingCallDetails(details, metadata)

    def intercept_unary_unary(self, continuation: Callable[..., Any], client_call_details: Any, request: Any) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation: Callable[..., Any], client_call_details: Any, request: Any) -> Any:
        return continuation(self._details(client_call_details), request)


def blocking_channel(target: str, token: str) -> grpc.Channel:
    """A blocking insecure channel to a costmesh service that sends ``token`` as the mesh token."""
    return grpc.intercept_channel(grpc.insecure_channel(target, options=CHANNEL_OPTIONS), BlockingMeshToken(token))
