"""Typed settings read once from the environment, one prefix per service.

Unknown variables under a service's prefix are rejected: a typo such as COSTMESH_CACHE_TTL_SEC must
fail loudly at start-up rather than be ignored.
"""

from __future__ import annotations

import os
from typing import Self

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Variables one service reads under another service's prefix, which that prefix's unknown-key check must
# let through: COSTMESH_CACHE_VERIFY_SAMPLE is the orchestrator's spot-check share, named so by issue 15.
BORROWED_ENV = frozenset({"COSTMESH_CACHE_VERIFY_SAMPLE"})


class ServiceSettings(BaseSettings):
    """Settings every service has. Subclasses set ``model_config`` with their own env prefix."""

    model_config = SettingsConfigDict(env_prefix="COSTMESH_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = 0
    metrics_port: int = 0  # 0: no /metrics endpoint
    grace_s: float = 5.0
    health_interval_s: float = 5.0
    # e.g. http://127.0.0.1:4317, or several comma-separated (each gets every span); empty: not exported
    otlp_endpoint: str = ""
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _reject_unknown_env(self) -> Self:
        prefix = (self.model_config.get("env_prefix") or "").upper()
        if not prefix:
            return self
        known = {name.upper() for name in type(self).model_fields}
        unknown = sorted(
            key
            for key in os.environ
            if key.upper().startswith(prefix)
            and key[len(prefix) :].upper() not in known
            and key.upper() not in BORROWED_ENV
        )
        if unknown:
            raise ValueError(f"unknown settings in the environment: {', '.join(unknown)}")
        return self


def split_commas(value: object) -> object:
    """A comma-separated environment value as a list ("a, b" -> ["a", "b"]); other values unchanged. For a
    `mode="before"` validator on a field annotated ``NoDecode`` (which pydantic-settings would read as JSON)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value
