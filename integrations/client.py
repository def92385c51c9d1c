"""What both integrations share: channels to the stack's stage services and a trace id for every call.

The stage services (summarizer, compressor) trust callers that carry the stack's mesh token
(`StackSettings().mesh_token()`, or COSTMESH_MESH_TOKEN in the environment); the OpenAI-compatible
gateway takes an API key made with `costmesh keys create`.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import grpc
from opentelemetry import propagate, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from services.common.interceptors import blocking_channel, client_channel
from services.common.meshauth import mesh_token

TRACER = "costmesh.integrations"
TRACE_ID_ATTRIBUTE = "costmesh.trace_id"  # the trace the service's own spans are in


def gateway_base_url(port: int = 8080, host: str = "127.0.0.1") -> str:
    """The OpenAI-compatible base URL of the gateway (`costmesh up` serves it on 8080)."""
    return f"http://{host}:{port}/v1"


def async_channel(address: str, token: str | None = None) -> grpc.aio.Channel:
    """A channel that sends the mesh token and the current trace context; token None: COSTMESH_MESH_TOKEN."""
    return client_channel(address, token)


def sync_channel(address: str, token: str | None = None) -> grpc.Channel:
    """The blocking twin for frameworks' sync code paths; its calls pass trace_metadata() themselves."""
    return blocking_channel(address, mesh_token() if token is None else token)


def trace_metadata() -> tuple[tuple[str, str], ...]:
    """The current trace context as gRPC metadata (the blocking channel does not inject it)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return tuple(carrier.items())


@contextlib.contextmanager
def traced(name: str) -> Iterator[tuple[trace.Span, str]]:
    """A CLIENT span around one call to the mesh, and the trace id (32 hex digits) the services' spans join.

    Without a tracing SDK in this process the span records nothing and has no trace id; the call then runs
    under a sampled trace id made here, so the services' spans still share one that the caller knows.
    """
    tracer = trace.get_tracer(TRACER)
    with tracer.start_as_current_span(name, kind=SpanKind.CLIENT) as span:
        context = span.get_span_context()
        if context.is_valid:
            trace_id = trace.format_trace_id(context.trace_id)
            span.set_attribute(TRACE_ID_ATTRIBUTE, trace_id)
            yield span, trace_id
            return
        own = SpanContext(
            trace_id=random.getrandbits(128) or 1,
            span_id=random.getrandbits(64) or 1,
            is_remote=False,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
        with trace.use_span(NonRecordingSpan(own)):
            yield span, trace.format_trace_id(own.trace_id)
