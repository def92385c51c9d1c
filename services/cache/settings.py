"""Cache service settings (env prefix COSTMESH_CACHE_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class CacheSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="COSTMESH_CACHE_", extra="forbid")

    port: int = 50052
    redis_url: str = "redis://127.0.0.1:6390/0"
    weaviate_url: str = "http://127.0.0.1:8090"  # empty: semantic tier off
    weaviate_grpc_port: int = 50061
    default_ttl_s: int = Field(default=24 * 3600, gt=0)
    similarity_threshold: float = Field(default=0.92, ge=0.0, le=1.0)
    backend_timeout_s: float = 0.5
