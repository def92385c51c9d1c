"""Config name -> backend factory. Add a backend by adding one line here."""

from __future__ import annotations

from collections.abc import Callable

from services.common.errors import MissingConfig
from services.inference.backends.base import ChatBackend
from services.inference.backends.openai_compatible import OpenAICompatibleBackend


def _vllm(base_url: str, model: str, api_key: str) -> ChatBackend:
    # A local server: fail over to the next backend at once rather than retrying.
    return OpenAICompatibleBackend("vllm", base_url, model, api_key, max_retries=0)


def _openai(base_url: str, model: str, api_key: str) -> ChatBackend:
    if not api_key:
        raise MissingConfig("the openai backend needs OPENAI_API_KEY")
    return OpenAICompatibleBackend("openai", base_url or "https://api.openai.com/v1", model, api_key, max_retries=2)


BackendFactory = Callable[[str, str, str], ChatBackend]
BACKENDS: dict[str, BackendFactory] = {"vllm": _vllm, "openai": _openai}


def make_backend(kind: str, base_url: str, model: str, api_key: str) -> ChatBackend:
    try:
        factory = BACKENDS[kind]
    except KeyError:
        raise MissingConfig(f"unknown backend {kind!r}; known: {sorted(BACKENDS)}") from None
    return factory(base_url, model, api_key)
