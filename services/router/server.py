"""Builds the Router gRPC server."""

from __future__ import annotations

from pathlib import Path

import redis.asyncio as redis

from costmesh.v1 import router_pb2, router_pb2_grpc
from services.common.runtime import Service, new_service
from services.common.tasks import TaskStore, TaskTable
from services.router.backends.registry import make_classifier
from services.router.core import RouterCore
from services.router.estimator import QualityModel
from services.router.servicer import RouterServicer
from services.router.settings import RouterSettings
from services.router.tasks import TaskMetrics, TaskRouting

SERVICE_NAME = router_pb2.DESCRIPTOR.services_by_name["Router"].full_name


async def build_server(settings: RouterSettings) -> Service:
    service = new_service("router", settings, [SERVICE_NAME])
    # Loaded once, at start-up. The estimator falls back to the rules for a request with no embedding.
    estimator = None
    if settings.classifier == "estimator":
        path = Path(settings.model_path).expanduser()  # noqa: ASYNC240 - read once, before serving
        estimator = QualityModel.load(path)
    classifier = make_classifier("rules" if estimator else settings.classifier)
    core = RouterCore(
        classifier, settings.threshold, settings.tenant_thresholds, estimator, settings.max_quality_loss_pts
    )
    tasks = await _task_routing(settings, service)
    router_pb2_grpc.add_RouterServicer_to_server(RouterServicer(core, tasks), service.server)
    # No network dependencies on the hot path: the classifier and the task snapshot are in memory, so the
    # router serves as soon as it is built (a registry it cannot read yet just means no tasks).
    return service


async def _task_routing(settings: RouterSettings, service: Service) -> TaskRouting | None:
    if not settings.tasks_redis_url:
        return None
    client = redis.Redis.from_url(settings.tasks_redis_url)
    table = TaskTable(TaskStore(client), settings.task_assign_margin)
    routing = TaskRouting(table, TaskMetrics(service.registry))

    async def refresh() -> None:
        await table.refresh_logged()
        routing.export_training()

    await refresh()
    service.periodic.append(("task registry", settings.tasks_refresh_s, refresh))
    service.closers.append(client.aclose)
    return routing
