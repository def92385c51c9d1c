"""Batch service settings (env prefix COSTMESH_BATCH_)."""

from __future__ import annotations

import socket
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class BatchSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="COSTMESH_BATCH_", extra="forbid")

    port: int = 50056  # the Batch RPCs (costmesh.v1.Batch) and gRPC health
    redis_url: str = "redis://127.0.0.1:6390/0"  # the job store, and the queue when queue=redis
    # Where the work items wait (backends/registry.py): Redis Streams on redis_url, or a Kafka cluster.
    queue: Literal["redis", "kafka"] = "redis"
    kafka_bootstrap: str = "127.0.0.1:9094"  # the broker `costmesh up` starts with COSTMESH_STACK_QUEUE=kafka
    kafka_topic_prefix: str = "costmesh.batch"  # topics <prefix>.high, .normal, .low
    kafka_group: str = "batch-consumers"
    kafka_partitions: int = Field(default=4, ge=1)  # per topic, when the queue creates it
    # A dead consumer's partitions go to a live one after this long; a restart waits as long for its own.
    kafka_session_timeout_s: float = Field(default=10.0, gt=0)
    # API keys (services/common/apikeys.py), the same store the orchestrator and the gateway check; empty:
    # keys are off and only callers with the mesh token are served.
    keys_redis_url: str = ""
    orchestrator_addr: str = "127.0.0.1:50050"
    # Unique per consumer process, stable across its restarts, so a restart recovers its own pending work.
    consumer_name: str = Field(default_factory=lambda: f"consumer-{socket.gethostname()}")
    concurrency: int = Field(default=4, ge=1)  # items in flight; the model server batches them
    request_timeout_s: float = Field(default=600.0, gt=0)
    # Entries another consumer left pending this long are taken over (it died). Longer than any request.
    reclaim_idle_s: float = Field(default=900.0, gt=0)
    max_attempts: int = Field(default=30, ge=1)
    retry_base_s: float = Field(default=0.5, gt=0)
    retry_max_s: float = Field(default=30.0, gt=0)
    retention_s: int = Field(default=7 * 86_400, gt=0)  # how long jobs and results are kept
