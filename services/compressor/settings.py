"""Compressor service settings (env prefix COSTMESH_COMPRESSOR_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class CompressorSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="COSTMESH_COMPRESSOR_", extra="forbid")

    port: int = 50053
    method: str = "dedupe"
    target_ratio: float = Field(default=2.0, ge=1.0)
