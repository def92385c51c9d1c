"""Orchestrator settings (env prefix COSTMESH_ORCHESTRATOR_)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class OrchestratorSettings(ServiceSettings):
    # populate_by_name: fields with an alias (below) can still be set by name in code.
    model_config = SettingsConfigDict(env_prefix="COSTMESH_ORCHESTRATOR_", extra="forbid", populate_by_name=True)

    port: int = 50050
    router_addr: str = "127.0.0.1:50051"
    cache_addr: str = "127.0.0.1:50052"
    compressor_addr: str = "127.0.0.1:50053"
    summarizer_addr: str = "127.0.0.1:50054"
    inference_addr: str = "127.0.0.1:50055"
    # Per-stage budgets, in seconds. Each downstream call gets min(budget, time the caller has left).
    router_budget_s: float = Field(default=0.015, gt=0)  # the 15 ms routing budget
    cache_lookup_budget_s: float = Field(default=0.1, gt=0)
    cache_store_budget_s: float = Field(default=0.25, gt=0)
    compressor_budget_s: float = Field(default=2.0, gt=0)
    summarizer_budget_s: float = Field(default=60.0, gt=0)  # it calls the cheap model
    request_timeout_s: float = Field(default=180.0, gt=0)  # when the caller sets no deadline
    # Prompts (messages and documents) over this many o200k tokens are refused (INVALID_ARGUMENT) before
    # any stage runs: a 3.5 MB prompt used to take 8 s of routing and pruning before vLLM refused it.
    max_prompt_tokens: int = Field(default=32_000, gt=0)
    # all-MiniLM-L6-v2 as exported by scripts/prepare_models.py; empty: no embeddings (no semantic cache).
    embedding_model_dir: str = "~/.cache/costmesh/models/all-minilm-l6-v2"
    # ONNX Runtime threads per embedding. Two halve a lone request's embedding time on this 2-core machine
    # (13 -> 8 ms, `costmesh bench cache`); under heavy concurrency one thread per request wastes less.
    embedding_threads: int = Field(default=2, ge=1)
    # Route used when the router misses its budget or fails: quality-safe by default.
    default_tier: Literal["small", "large"] = "large"
    # The cascade: when the router picks the cheap tier, its answer is judged (services/orchestrator/
    # escalation.py) and the large tier asked once if it fails. The thresholds are the cost/quality knob.
    escalation: bool = True
    escalation_min_mean_token_prob: float = Field(default=0.55, ge=0.0, le=1.0)
    escalation_min_token_logprob: float = Field(default=-9.0, le=0.0)
    # The operator's quality target: accuracy points the cascade may lose against all-large. Sent to the
    # router (Route and Assess), whose quality estimator picks its thresholds for it. Per tenant: JSON.
    max_quality_loss_pts: float = Field(default=1.0, ge=0.0)
    tenant_max_quality_loss_pts: dict[str, Annotated[float, Field(ge=0.0)]] = Field(default_factory=dict)
    # API keys (services/common/apikeys.py) and their spend and rate counters; empty: keys are off and only
    # callers with the mesh token are served.
    keys_redis_url: str = ""
    # Distillation (distill.py): where shadow comparisons and collected pairs go (the task registry's
    # Redis; empty: neither), and the hook every collected text passes through first, "module:function"
    # taking and returning a str (the default masks e-mail addresses, card and phone numbers, IBANs).
    tasks_redis_url: str = ""
    distill_redact: str = "services.orchestrator.redact:mask_pii"
    # The escalation rate the alert in deploy/prometheus/rules.yml compares against (exported as a gauge).
    escalation_alert_baseline: float = Field(default=0.25, ge=0.0, le=1.0)
    # Spot-checks of semantic cache hits (spotcheck.py): the share re-asked of the large tier after serving.
    # Read as COSTMESH_CACHE_VERIFY_SAMPLE, the name issue 15 gives it (and validation errors use), or under
    # the orchestrator's prefix; the first wins when both are set.
    cache_verify_sample: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        validation_alias=AliasChoices("COSTMESH_CACHE_VERIFY_SAMPLE", "COSTMESH_ORCHESTRATOR_CACHE_VERIFY_SAMPLE"),
    )
    # Per check, waits for the batch lane's quota included. A batch lane that goes through OpenAI's Batch
    # API answers in minutes to hours: raise this, or use the realtime lane at real-time prices.
    cache_verify_timeout_s: float = Field(default=120.0, gt=0)
    cache_verify_lane: Literal["batch", "realtime"] = "batch"
