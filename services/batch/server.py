"""Builds the batch process: the Batch RPCs (submit, status, results, cancel, list) and the consumer loop,
with gRPC health and metrics like every service."""

from __future__ import annotations

import redis.asyncio as redis
from prometheus_client import Gauge

from costmesh.v1 import batch_pb2, batch_pb2_grpc
from services.batch.api import BatchApi
from services.batch.backends.registry import make_queue
from services.batch.callers import BatchGate
from services.batch.consumer import Consumer, ConsumerSettings
from services.batch.executor import MeshExecutor
from services.batch.jobs import JobStore
from services.batch.servicer import BatchServicer
from services.batch.settings import BatchSettings
from services.common.apikeys import KeyStore
from services.common.runtime import Service, new_service

SERVICE_NAME = batch_pb2.DESCRIPTOR.services_by_name["Batch"].full_name


def consumer_settings(settings: BatchSettings) -> ConsumerSettings:
    return ConsumerSettings(
        settings.consumer_name,
        settings.concurrency,
        int(settings.reclaim_idle_s * 1000),
        settings.max_attempts,
        settings.retry_base_s,
        settings.retry_max_s,
    )


async def build_server(settings: BatchSettings) -> Service:
    # The Batch RPCs authenticate API keys themselves (callers.py); the mesh token also admits.
    service = new_service("batch", settings, [SERVICE_NAME], public_prefixes=(f"/{SERVICE_NAME}/",))
    client = redis.Redis.from_url(settings.redis_url)
    queue = make_queue(settings, client)
    store = JobStore(client, settings.retention_s)
    gate = BatchGate(KeyStore(redis.Redis.from_url(settings.keys_redis_url)) if settings.keys_redis_url else None)
    batch_pb2_grpc.add_BatchServicer_to_server(BatchServicer(BatchApi(store, queue), gate), service.server)
    executor = MeshExecutor(settings.orchestrator_addr, settings.request_timeout_s)
    consumer = Consumer(queue, store, executor, consumer_settings(settings))
    depth = Gauge(
        "costmesh_batch_queue_depth", "Batch items queued and not yet acknowledged", registry=service.registry
    )

    async def refresh_depth() -> None:
        depth.set(await queue.depth())

    async def redis_up() -> bool:
        return bool(await client.ping())

    async def consuming() -> bool:
        return consumer.consuming()

    service.checks["redis"] = redis_up
    service.checks["consumer"] = consuming  # Redis may answer PING while the queue still cannot be read
    service.periodic.append(("queue-depth", 5.0, refresh_depth))
    service.background.append(consumer.run)
    service.closers += [consumer.close, executor.close, gate.close, queue.close, client.aclose]
    return service
