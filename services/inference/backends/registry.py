"""Config name -> backend factory. Add a backend by adding a module and one line here."""

from __future__ import annotations

from collections.abc import Callable

from services.common.errors import MissingConfig
from services.inference.backends.base import ChatBackend
from services.inference.backends.openai import openai_backend
from services.inference.backends.ray_serve import ray_serve_backend
from services.inference.backends.vllm import vllm_backend

BackendFactory = Callable[[str, str, str], ChatBackend]  # (base_url, model, api_key)
BACKENDS: dict[str, BackendFactory] = {"vllm": vllm_backend, "openai": openai_backend, "ray-serve": ray_serve_backend}


def make_backend(kind: str, base_url: str, model: str, api_key: str) -> ChatBackend:
    try:
        factory = BACKENDS[kind]
    except KeyError:
        raise MissingConfig(f"unknown backend {kind!r}; known: {sorted(BACKENDS)}") from None
    return factory(base_url, model, api_key)
