"""vLLM's OpenAI-compatible server: the self-hosted engine (CPU build here, CUDA in production).

Prefix caching is a server flag (`--enable-prefix-caching`, set by `costmesh up`); the engine reuses the KV
cache of any prompt prefix it has seen, which is why prompts are assembled static-first. Token logprobs and
usage come back through the same API as OpenAI's.
"""

from __future__ import annotations

from services.inference.backends.openai_compatible import OpenAICompatibleBackend


def vllm_backend(base_url: str, model: str, api_key: str) -> OpenAICompatibleBackend:
    # A local server: fail over to the next backend at once rather than retrying.
    return OpenAICompatibleBackend("vllm", base_url, model, api_key, max_retries=0, sends_priority=True)
