"""Inference service settings (env prefix COSTMESH_INFERENCE_)."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class InferenceSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="COSTMESH_INFERENCE_", extra="forbid")

    port: int = 50055
    # Each tier lists its backends in order, "kind=base_url" pairs separated by commas; the next one
    # takes the request when one fails. With OPENAI_API_KEY set and no explicit list, OpenAI serves.
    small_backends: str = "vllm=http://127.0.0.1:8101/v1"
    large_backends: str = "vllm=http://127.0.0.1:8102/v1"
    small_model: str = "smollm2-135m-instruct"
    large_model: str = "qwen2.5-0.5b-instruct"
    # Which price-table row prices each tier: local stand-ins are priced as the model they stand in for.
    small_price_model: str = "gpt-4o-mini"
    large_price_model: str = "gpt-4o"
    default_max_tokens: int = 256
    timeout_s: float = 120.0  # CPU-served models are slow; a GPU deployment can lower this
    openai_api_key: str = Field(
        default="", validation_alias=AliasChoices("OPENAI_API_KEY", "COSTMESH_INFERENCE_OPENAI_API_KEY")
    )

    def backends_for(self, tier: str) -> list[tuple[str, str]]:
        spec = self.small_backends if tier == "small" else self.large_backends
        pairs = []
        for item in filter(None, (s.strip() for s in spec.split(","))):
            kind, _, url = item.partition("=")
            pairs.append((kind.strip(), url.strip()))
        return pairs
