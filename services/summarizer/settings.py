"""Summarizer service settings (env prefix COSTMESH_SUMMARIZER_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class SummarizerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="COSTMESH_SUMMARIZER_", extra="forbid")

    port: int = 50054
    inference_addr: str = "127.0.0.1:50055"
    max_tokens: int = Field(default=3500, gt=0)  # prune when the history passes this
    keep_last: int = Field(default=6, ge=0)  # messages kept verbatim
    summary_tokens: int = Field(default=200, gt=0)
    window_tokens: int = Field(default=4000, gt=0)  # the active window after pruning
    summary_timeout_s: float = 60.0
    # Running summaries, shared by replicas; empty: kept in this process's memory only.
    redis_url: str = "redis://127.0.0.1:6390/0"
    summary_ttl_s: int = Field(default=86_400, gt=0)
    store_timeout_s: float = Field(default=0.25, gt=0)
