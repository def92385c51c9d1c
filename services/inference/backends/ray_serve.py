"""A Ray Serve deployment's OpenAI-compatible ingress (deploy/ray_serve): self-hosting across machines.

Ray Serve queues and autoscales replicas itself, so costmesh treats it like any OpenAI-compatible server.
"""

from __future__ import annotations

from services.inference.backends.openai_compatible import OpenAICompatibleBackend


def ray_serve_backend(base_url: str, model: str, api_key: str) -> OpenAICompatibleBackend:
    return OpenAICompatibleBackend("ray-serve", base_url, model, api_key, max_retries=0)
