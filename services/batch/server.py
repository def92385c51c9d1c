"""Builds the batch consumer process: the consumer loop, with gRPC health and metrics like every service."""

from __future__ import annotations

import redis.asyncio as redis
from prometheus_client import Gauge

from services.batch.backends.redis_streams import RedisStreamQueue
from services.batch.consumer import Consumer, ConsumerSettings
from services.batch.executor import MeshExecutor
from services.batch.jobs import JobStore
from services.batch.settings import BatchSettings
from services.common.runtime import Service, new_service


async def build_server(settings: BatchSettings) -> Service:
    service = new_service("batch", settings, [])
    client = redis.Redis.from_url(settings.redis_url)
    queue = RedisStreamQueue(client)
    store = JobStore(client, settings.retention_s)
    executor = MeshExecutor(settings.orchestrator_addr, settings.request_timeout_s)
    consumer = Consumer(
        queue,
        store,
        executor,
        ConsumerSettings(
            settings.consumer_name,
            settings.concurrency,
            int(settings.reclaim_idle_s * 1000),
            settings.max_attempts,
            settings.retry_base_s,
            settings.retry_max_s,
        ),
    )
    depth = Gauge(
        "costmesh_batch_queue_depth", "Batch items queued and not yet acknowledged", registry=service.registry
    )

    async def refresh_depth() -> None:
        depth.set(await queue.depth())

    async def redis_up() -> bool:
        return bool(await client.ping())

    service.checks["redis"] = redis_up
    service.periodic.append(("queue-depth", 5.0, refresh_depth))
    service.background.append(consumer.run)
    service.closers += [consumer.close, executor.close, client.aclose]
    return service
