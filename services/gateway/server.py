"""Runs the gateway: Starlette on uvicorn, with the stores opened at start-up and closed at shutdown.

uvicorn handles SIGTERM/SIGINT: it stops accepting, lets in-flight requests finish for `grace_s`, then
runs the lifespan's shutdown, which closes the orchestrator and batch channels and Redis.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import redis.asyncio as redis
import uvicorn
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

from services.common.apikeys import KeyStore
from services.common.interceptors import client_channel
from services.common.telemetry import serve_metrics, setup_tracing
from services.gateway.app import build_app
from services.gateway.context import Gateway
from services.gateway.files import FileStore
from services.gateway.settings import GatewaySettings

log = logging.getLogger(__name__)


def create_app(settings: GatewaySettings, registry: CollectorRegistry | None = None) -> Starlette:
    registry = registry or CollectorRegistry()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Made here, inside uvicorn's event loop: a grpc.aio channel belongs to the loop it was made in.
        client = redis.Redis.from_url(settings.redis_url)
        gateway = Gateway(
            settings,
            KeyStore(client),
            FileStore(client, settings.file_retention_s),
            client_channel(settings.orchestrator_addr),
            registry,
            client_channel(settings.batch_addr),
        )
        app.state.gateway = gateway
        try:
            yield
        finally:
            await gateway.channel.close(None)
            await gateway.batch_channel.close(None)
            await client.aclose()

    app = build_app()
    app.router.lifespan_context = lifespan
    return app


def main() -> None:
    settings = GatewaySettings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s gateway %(levelname)s %(name)s: %(message)s"
    )
    provider = setup_tracing("gateway", settings.otlp_endpoint)
    registry = CollectorRegistry()
    serve_metrics(registry, settings.host, settings.metrics_port)
    config = uvicorn.Config(
        create_app(settings, registry),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=int(settings.grace_s),
        access_log=False,
    )
    log.info("gateway listening on http://%s:%d/v1", settings.host, settings.port)
    uvicorn.Server(config).run()
    provider.shutdown()
