"""Router service settings (env prefix COSTMESH_ROUTER_)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings

DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "quality.json"


class RouterSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="COSTMESH_ROUTER_", extra="forbid")

    port: int = 50051
    # "estimator": the calibrated quality estimator trained by `costmesh router train` on outcome records
    # (services/router/estimator.py); it routes and judges cheap answers, and falls back to the rules for a
    # request without an embedding. "rules": the transparent heuristic alone (no Assess).
    classifier: Literal["estimator", "rules"] = "estimator"
    model_path: str = str(DEFAULT_MODEL)
    # The quality target when a request names none (the orchestrator sends its own, per tenant).
    max_quality_loss_pts: float = Field(default=1.0, ge=0.0)
    # P(large) at or above which LARGE is chosen: the cost/quality knob. Per tenant, as JSON:
    # COSTMESH_ROUTER_TENANT_THRESHOLDS='{"acme": 0.6}'; per request: RouteRequest.threshold.
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    tenant_thresholds: dict[str, Annotated[float, Field(ge=0.0, le=1.0)]] = Field(default_factory=dict)
    # The distillation task registry (services/common/tasks.py) in the stack's Redis; empty: no tasks.
    tasks_redis_url: str = ""
    tasks_refresh_s: float = Field(default=5.0, gt=0)
    # A request naming no task is assigned the nearest one when it is at most this many times that
    # task's training p95 distance from the centroid.
    task_assign_margin: float = Field(default=1.0, gt=0)
