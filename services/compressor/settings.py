"""Compressor service settings (env prefix COSTMESH_COMPRESSOR_)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class CompressorSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="COSTMESH_COMPRESSOR_", extra="forbid")

    port: int = 50053
    method: str = "llmlingua"  # or "dedupe" (no model: drops repeated sentences)
    target_ratio: float = Field(default=2.0, ge=1.0)
    # Few-shot examples, whole ones dropped (measured: `costmesh bench compress`): "nearest" keeps a static
    # share of 1/ratio of them plus the ones nearest the question; "select" keeps 1/ratio, the same for every
    # question, the same share per answer; "tokens" has the method shorten every example's input instead.
    examples: Literal["nearest", "select", "tokens"] = "nearest"
    # With "nearest": of the examples kept, the share that is the same for every question (a cached prefix).
    examples_static_share: float = Field(default=0.75, gt=0, le=1)
    # all-MiniLM-L6-v2 as exported by scripts/prepare_models.py (the orchestrator's embedding model).
    embedding_model_dir: str = "~/.cache/costmesh/models/all-minilm-l6-v2"
    embedding_threads: int = Field(default=1, ge=1)
    # Blocks smaller than this are passed through: a model call would cost more than it saves.
    min_tokens: int = Field(default=100, ge=0)
    cache_entries: int = Field(default=1024, ge=1)  # compressed blocks kept in memory (LRU)
    llmlingua_url: str = "http://127.0.0.1:8104"
    # A cold block of a few thousand tokens takes tens of seconds on a small CPU.
    llmlingua_timeout_s: float = Field(default=300.0, gt=0)
