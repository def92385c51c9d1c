"""Tracing (OpenTelemetry) and metrics (Prometheus) set-up shared by every service."""

from __future__ import annotations

import logging
from collections.abc import Collection

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client import CollectorRegistry, start_http_server

log = logging.getLogger(__name__)

# The label value of every tenant outside a metric's allow-list: tenant names come from callers, and a
# label per name would let them grow Prometheus's series without bound.
OTHER_TENANT = "other"


def setup_tracing(service_name: str, otlp_endpoint: str) -> TracerProvider:
    """Install this process's tracer provider; spans are exported over OTLP/gRPC to each endpoint of the
    comma-separated list (the stack's Jaeger and a team's own collector, say); none: not exported."""
    provider = TracerProvider(resource=Resource.create({"service.name": f"costmesh-{service_name}"}))
    endpoints = [e.strip() for e in otlp_endpoint.split(",") if e.strip()]
    if endpoints:
        # Imported here: the exporter pulls in its own gRPC client, unneeded when nothing is exported.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415 - optional path
            OTLPSpanExporter,
        )

        for endpoint in endpoints:
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
            log.info("exporting spans to %s", endpoint)
    trace.set_tracer_provider(provider)
    return provider


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> None:
    """Expose ``registry`` at http://host:port/metrics (Prometheus text format)."""
    if port:
        start_http_server(port, addr=host, registry=registry)
        log.info("metrics on http://%s:%d/metrics", host, port)


def current_trace_id() -> str:
    """The active span's trace id in hex, or an empty string outside a trace."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else ""


def tenant_label(tenant: str, allowed: Collection[str]) -> str:
    """The value a metric's ``tenant`` label takes: the tenant itself when allowed, else "other"."""
    return tenant if tenant in allowed else OTHER_TENANT
