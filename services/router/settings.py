"""Router service settings (env prefix COSTMESH_ROUTER_)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings

DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "learned.json"


class RouterSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="COSTMESH_ROUTER_", extra="forbid")

    port: int = 50051
    # "rules": the transparent heuristic. "learned": the logistic head trained by `costmesh router train`
    # (falls back to the rules without an embedding). Rules by default: the shipped model was trained on
    # the local CPU stand-ins, which answer MMLU near chance (see README); retrain it on your own tiers.
    classifier: str = "rules"
    model_path: str = str(DEFAULT_MODEL)
    # P(large) at or above which LARGE is chosen: the cost/quality knob. Per tenant, as JSON:
    # COSTMESH_ROUTER_TENANT_THRESHOLDS='{"acme": 0.6}'; per request: RouteRequest.threshold.
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    tenant_thresholds: dict[str, Annotated[float, Field(ge=0.0, le=1.0)]] = Field(default_factory=dict)
