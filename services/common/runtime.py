"""Service bootstrap: one grpc.aio server with health, reflection, interceptors and graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry

from services.common.interceptors import RpcMetrics, ServerInterceptor
from services.common.meshauth import mesh_token
from services.common.settings import ServiceSettings
from services.common.telemetry import serve_metrics, setup_tracing

log = logging.getLogger(__name__)

HealthCheck = Callable[[], Awaitable[bool]]
Closer = Callable[[], Awaitable[None]]
Job = Callable[[], Awaitable[object]]
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass
class Service:
    """A built, not yet started, service: the server plus what its health and shutdown need."""

    name: str
    server: grpc.aio.Server
    port: int
    registry: CollectorRegistry
    health: HealthServicer
    service_names: Sequence[str]
    checks: dict[str, HealthCheck] = field(default_factory=dict)  # dependency name -> check
    closers: list[Closer] = field(default_factory=list)
    # Periodic upkeep (for example cache eviction): (name, interval_s, job); started with the server.
    periodic: list[tuple[str, float, Job]] = field(default_factory=list)
    # Long-running work (the batch consumer's loop): started with the server, cancelled at shutdown.
    background: list[Job] = field(default_factory=list)

    async def run_periodic(self, name: str, interval_s: float, job: Job) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await job()
            except Exception:
                log.exception("periodic job %s failed; retrying in %.0fs", name, interval_s)

    async def check_dependencies(self) -> dict[str, bool]:
        """Runs every dependency check concurrently; a check that raises counts as down."""
        names = list(self.checks)
        results = await asyncio.gather(*(self.checks[n]() for n in names), return_exceptions=True)
        return {n: r is True for n, r in zip(names, results, strict=True)}

    async def refresh_health(self) -> bool:
        """SERVING only when every dependency answers."""
        results = await self.check_dependencies()
        ok = all(results.values())
        status = SERVING if ok else NOT_SERVING
        for name in ("", *self.service_names):
            await self.health.set(name, status)
        if not ok:
            log.warning("not serving; dependencies down: %s", [n for n, up in results.items() if not up])
        return ok

    async def watch_health(self, interval_s: float) -> None:
        while True:
            await self.refresh_health()
            await asyncio.sleep(interval_s)

    async def stop(self, grace_s: float) -> None:
        """NOT_SERVING first so balancers drain us, then finish in-flight RPCs, then close backends."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_s)
        for close in self.closers:
            try:
                await close()
            except Exception:
                log.exception("closing a backend failed")


def new_service(
    name: str, settings: ServiceSettings, service_names: Sequence[str], public_prefixes: Sequence[str] = ()
) -> Service:
    """A grpc.aio server with the standard health service, reflection and costmesh's interceptors.

    Only callers with the mesh token (COSTMESH_MESH_TOKEN) reach the servicer, except for health, reflection
    and the methods under ``public_prefixes``, which authenticate their callers themselves.
    The caller adds its servicer with ``add_XServicer_to_server(servicer, service.server)``.
    """
    registry = CollectorRegistry()
    interceptor = ServerInterceptor(RpcMetrics(registry, name), mesh_token(), public_prefixes)
    server = grpc.aio.server(interceptors=[interceptor])
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        (*service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    port = server.add_insecure_port(f"{settings.host}:{settings.port}")
    if port == 0:
        raise RuntimeError(f"could not bind {settings.host}:{settings.port}")
    return Service(name, server, port, registry, health, service_names)


BuildServer = Callable[..., Awaitable[Service]]


async def serve(build_server: BuildServer, settings: ServiceSettings, name: str) -> None:
    provider = setup_tracing(name, settings.otlp_endpoint)
    service = await build_server(settings)
    serve_metrics(service.registry, settings.host, settings.metrics_port)
    await service.server.start()
    # Health starts NOT_SERVING and flips once every dependency has answered.
    await service.refresh_health()
    monitor = asyncio.create_task(service.watch_health(settings.health_interval_s))
    jobs = [asyncio.create_task(service.run_periodic(*p)) for p in service.periodic]
    jobs += [asyncio.create_task(run_background(job)) for job in service.background]
    log.info("%s listening on %s:%d", name, settings.host, service.port)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

    log.info("%s shutting down (grace %.1fs)", name, settings.grace_s)
    for task in (monitor, *jobs):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await service.stop(settings.grace_s)
    provider.shutdown()  # flushes pending spans
    log.info("%s stopped", name)


async def run_background(job: Job) -> None:
    await job()


def run(build_server: BuildServer, settings: ServiceSettings, name: str) -> None:
    """Entry point of every service's ``__main__``."""
    logging.basicConfig(
        level=settings.log_level.upper(), format=f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(serve(build_server, settings, name))
