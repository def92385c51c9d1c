"""Inference service settings (env prefix COSTMESH_INFERENCE_)."""

from __future__ import annotations

from pydantic import AliasChoices, BaseModel, Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class PriceRow(BaseModel):
    """USD per 1M tokens."""

    input_per_m: float = Field(ge=0)
    cached_input_per_m: float = Field(ge=0)
    output_per_m: float = Field(ge=0)
    batch_discount: float = Field(default=0.5, gt=0, le=1)  # the share of the price a Batch API charges


class LaneLimitRow(BaseModel):
    requests_per_minute: float = Field(gt=0)
    tokens_per_minute: float = Field(gt=0)  # prompt tokens plus max_tokens, charged when a request starts


# The batch lane's default quota is deliberately small next to what one CPU model server can do, so
# batch work fills idle capacity without queueing ahead of real-time requests. Real time: no limit.
DEFAULT_LANE_LIMITS = {
    "batch": {
        "small": LaneLimitRow(requests_per_minute=30, tokens_per_minute=60_000),
        "large": LaneLimitRow(requests_per_minute=10, tokens_per_minute=30_000),
    }
}


class InferenceSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="COSTMESH_INFERENCE_", extra="forbid")

    port: int = 50055
    # Each tier lists its backends in order, "kind=base_url" pairs separated by commas; the next one
    # takes the request when one fails. With OPENAI_API_KEY set and no explicit list, OpenAI serves.
    small_backends: str = "vllm=http://127.0.0.1:8101/v1"
    large_backends: str = "vllm=http://127.0.0.1:8102/v1"
    # The engine serving distilled students (LoRA adapters on the small model; `costmesh up` starts it on
    # 8105); empty: no students, a request naming an adapter is refused.
    student_backends: str = ""
    small_model: str = "smollm2-135m-instruct"
    student_model: str = "smollm2-135m-instruct"  # the students' base model
    large_model: str = "qwen2.5-coder-1.5b-instruct"
    # Which price-table row prices each tier: local stand-ins are priced as the model they stand in for.
    small_price_model: str = "gpt-4o-mini"
    large_price_model: str = "gpt-4o"
    student_price_model: str = "self-hosted-student"
    # Price-table rows added to or replacing the defaults in pricing.py, as JSON, for example
    # COSTMESH_INFERENCE_PRICES='{"llama-8b": {"input_per_m": 0.05, "cached_input_per_m": 0.01, "output_per_m": 0.2}}'
    prices: dict[str, PriceRow] = Field(default_factory=dict)
    # A backend that fails this many calls in a row is skipped for the cool-down, then tried once again.
    breaker_failures: int = Field(default=3, ge=1)
    breaker_cooldown_s: float = Field(default=30.0, gt=0)
    # Rate limits per lane ("realtime", "batch") and tier ("small", "large"), as JSON, replacing the
    # defaults above, for example COSTMESH_INFERENCE_LANE_LIMITS='{"batch": {"large": {"requests_per_minute":
    # 60, "tokens_per_minute": 100000}}}'. A lane and tier without a row is not limited.
    lane_limits: dict[str, dict[str, LaneLimitRow]] = Field(default_factory=lambda: dict(DEFAULT_LANE_LIMITS))
    # How many seconds of quota an idle lane may spend at once. Short keeps a batch flood from starting
    # with a burst that queues ahead of real-time requests.
    lane_burst_s: float = Field(default=10.0, gt=0)
    # Embed's backend: "local=<dir>" (all-MiniLM-L6-v2 as setup exports it: the model the orchestrator embeds
    # requests with) or "openai=[base url]" (`embedding_model` on OpenAI's API); empty: Embed is refused.
    embedding_backend: str = "local=~/.cache/costmesh/models/all-minilm-l6-v2"
    embedding_model: str = "text-embedding-3-small"  # the OpenAI model, for the openai backend
    embedding_price_model: str = "text-embedding-3-small"  # the local MiniLM is priced as what it stands in for
    embedding_threads: int = Field(default=1, ge=1)
    # Where the lane buckets live: a Redis URL shares one quota among every inference replica (`costmesh up`
    # sets the stack's); empty keeps them in this process, right only for a single replica.
    limits_redis_url: str = ""
    # Batch-lane calls wait while the tier served real-time calls in the last this many seconds (0: off):
    # batch work fills idle capacity instead of sharing the engine with real-time requests.
    batch_yield_s: float = Field(default=1.0, ge=0)
    # Batch-lane calls to `openai` backends go through OpenAI's Batch API (half price, within 24 h): requests
    # arriving within the window are sent as one job, polled every poll_s. The batch consumer's
    # COSTMESH_BATCH_REQUEST_TIMEOUT_S (and this service's TIMEOUT_S) must then allow for 24 hours.
    openai_batch_api: bool = False
    openai_batch_window_s: float = Field(default=5.0, gt=0)
    openai_batch_max_items: int = Field(default=1000, ge=1)
    openai_batch_poll_s: float = Field(default=30.0, gt=0)
    default_max_tokens: int = 256
    timeout_s: float = 120.0  # CPU-served models are slow; a GPU deployment can lower this
    openai_api_key: str = Field(
        default="", validation_alias=AliasChoices("OPENAI_API_KEY", "COSTMESH_INFERENCE_OPENAI_API_KEY")
    )

    def backends_for(self, tier: str) -> list[tuple[str, str]]:
        spec = {"small": self.small_backends, "large": self.large_backends, "student": self.student_backends}[tier]
        pairs = []
        for item in filter(None, (s.strip() for s in spec.split(","))):
            kind, _, url = item.partition("=")
            pairs.append((kind.strip(), url.strip()))
        return pairs

    def lane_limit_table(self) -> dict[tuple[str, str], tuple[float, float]]:
        for lane, tiers in self.lane_limits.items():
            if lane not in ("realtime", "batch") or not set(tiers) <= {"small", "large"}:
                raise ValueError(f"lane_limits: unknown lane {lane!r} or tier in {sorted(tiers)}")
        return {
            (lane, tier): (row.requests_per_minute, row.tokens_per_minute)
            for lane, tiers in self.lane_limits.items()
            for tier, row in tiers.items()
        }
