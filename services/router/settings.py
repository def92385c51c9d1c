"""Router service settings (env prefix COSTMESH_ROUTER_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class RouterSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="COSTMESH_ROUTER_", extra="forbid")

    port: int = 50051
    classifier: str = "rules"
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)  # P(large) at or above which LARGE is chosen
