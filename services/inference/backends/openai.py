"""OpenAI's API through the official SDK: the hosted tiers (gpt-4o-mini, gpt-4o)."""

from __future__ import annotations

from services.common.errors import MissingConfig
from services.inference.backends.openai_compatible import OpenAICompatibleBackend

OPENAI_URL = "https://api.openai.com/v1"


def openai_backend(base_url: str, model: str, api_key: str) -> OpenAICompatibleBackend:
    if not api_key:
        raise MissingConfig("the openai backend needs OPENAI_API_KEY")
    # A shared, rate-limited API: the SDK retries 429 and 5xx with exponential backoff.
    return OpenAICompatibleBackend("openai", base_url or OPENAI_URL, model, api_key, max_retries=2)
