"""Config name (COSTMESH_BATCH_QUEUE) -> work queue factory. Add a queue by adding a module and one line here."""

from __future__ import annotations

from collections.abc import Callable

import redis.asyncio as redis

from services.batch.backends.base import WorkQueue
from services.batch.backends.kafka import KafkaOptions, KafkaQueue
from services.batch.backends.redis_streams import RedisStreamQueue
from services.batch.settings import BatchSettings
from services.common.errors import MissingConfig

QueueFactory = Callable[[BatchSettings, redis.Redis], WorkQueue]  # (settings, the job store's Redis)


def redis_queue(_: BatchSettings, client: redis.Redis) -> WorkQueue:
    return RedisStreamQueue(client)


def kafka_queue(settings: BatchSettings, _: redis.Redis) -> WorkQueue:
    return KafkaQueue(
        KafkaOptions(
            settings.kafka_bootstrap,
            settings.kafka_topic_prefix,
            settings.kafka_group,
            settings.kafka_partitions,
            session_timeout_ms=int(settings.kafka_session_timeout_s * 1000),
        )
    )


QUEUES: dict[str, QueueFactory] = {"redis": redis_queue, "kafka": kafka_queue}


def make_queue(settings: BatchSettings, client: redis.Redis) -> WorkQueue:
    try:
        factory = QUEUES[settings.queue]
    except KeyError:
        raise MissingConfig(f"unknown batch queue {settings.queue!r}; known: {sorted(QUEUES)}") from None
    return factory(settings, client)
