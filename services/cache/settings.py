"""Cache service settings (env prefix COSTMESH_CACHE_)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from services.common.settings import ServiceSettings, split_commas


class TenantPolicySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ttl_s: int | None = Field(default=None, gt=0)
    similarity_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    verifier_threshold: float | None = Field(default=None, ge=0.0, le=1.0)


class CacheSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="COSTMESH_CACHE_", extra="forbid")

    port: int = 50052
    redis_url: str = "redis://127.0.0.1:6390/0"
    weaviate_url: str = "http://127.0.0.1:8090"  # empty: semantic tier off
    weaviate_grpc_port: int = 50061
    weaviate_api_key: str = ""  # empty: Weaviate allows anonymous access (`costmesh up` sets its key)
    # Length every embedding must have (all-MiniLM-L6-v2's, which the orchestrator sends); 0: any length.
    # A vector of another length or with NaN / infinity is INVALID_ARGUMENT, never a stored entry.
    embedding_dim: int = Field(default=384, ge=0)
    default_ttl_s: int = Field(default=24 * 3600, gt=0)
    # Recall threshold: candidates at or above this cosine go to the guard and the verifier. The pair
    # (0.76, 0.93) is `costmesh cache calibrate --max-false-hit-rate 0.005` on bench/data/pairs/
    # calibrate.jsonl (half the 1 % goal), checked on check.jsonl (README).
    similarity_threshold: float = Field(default=0.76, ge=0.0, le=1.0)
    # Without a verifier (VERIFIER_MODEL_DIR empty) the rules alone decide, so candidates need this cosine:
    # 0.76 with the rules alone served 10.5 % false hits on check.jsonl, 0.90 served 1.4 %.
    similarity_threshold_without_verifier: float = Field(default=0.90, ge=0.0, le=1.0)
    verifier_kind: str = "cross-encoder"
    # Fine-tuned at setup (training/verifier_fit.py); empty: no verifier, the rules alone decide.
    verifier_model_dir: str = "~/.cache/costmesh/models/minilm-l6-pair-verifier-v1"
    verifier_threshold: float = Field(default=0.93, ge=0.0, le=1.0)  # P(same answer) a candidate needs to hit
    verifier_threads: int = Field(default=2, ge=1)  # two halve a lone pair's time here (8.3 -> 5.4 ms p50)
    backend_timeout_s: float = 0.5
    # Per-tenant overrides, JSON: {"acme": {"ttl_s": 3600, "similarity_threshold": 0.95, "verifier_threshold": 0.9}}
    tenant_policies: dict[str, TenantPolicySettings] = Field(default_factory=dict)
    max_entries_per_tenant: int = Field(default=100_000, ge=0)  # semantic tier; oldest evicted first; 0: no cap
    sweep_interval_s: float = Field(default=60.0, gt=0)  # how often expired / excess entries are removed
    # Tenants that get their own label on the cache's metrics, comma-separated; every other tenant counts
    # as "other", so a caller inventing tenant names cannot grow the series without bound.
    metrics_tenants: Annotated[frozenset[str], NoDecode] = frozenset()

    @field_validator("metrics_tenants", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return split_commas(value)
