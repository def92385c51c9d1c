"""Gateway settings (env prefix COSTMESH_GATEWAY_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="COSTMESH_GATEWAY_", extra="forbid")

    port: int = 8080
    orchestrator_addr: str = "127.0.0.1:50050"
    batch_addr: str = "127.0.0.1:50056"  # the batch service: /v1/batches and batch output files
    # API keys (the same store the orchestrator checks) and the files /v1/files holds for the batch lane.
    redis_url: str = "redis://127.0.0.1:6390/0"
    request_timeout_s: float = Field(default=180.0, gt=0)  # the deadline sent with each orchestrator call
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)  # a chat request; larger is 413
    # An uploaded batch input file. It reaches the batch service in one SubmitBatch message, and gRPC caps a
    # message at 4 MiB by default: larger inputs are split into several batches for now.
    max_file_bytes: int = Field(default=3 * 1024 * 1024, gt=0)
    file_retention_s: int = Field(default=7 * 86_400, gt=0)  # as long as the batch lane keeps a batch
