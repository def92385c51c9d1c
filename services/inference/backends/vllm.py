"""vLLM's OpenAI-compatible server: the self-hosted engine (CPU build here, CUDA in production).

Prefix caching is a server flag (`--enable-prefix-caching`, set by `costmesh up`); the engine reuses the KV
cache of any prompt prefix it has seen, which is why prompts are assembled static-first. Token logprobs and
usage come back through the same API as OpenAI's.

Distilled students are LoRA adapters on an engine started with `--enable-lora` and
VLLM_ALLOW_RUNTIME_LORA_UPDATING: a request for an adapter the engine does not know yet (a new student, or
an engine restarted since) loads it from the request's adapter path through vLLM's `load_lora_adapter`.
"""

from __future__ import annotations

import asyncio
import logging

import openai

from services.inference.backends.openai_compatible import OpenAICompatibleBackend
from services.inference.domain import ChatPrompt

log = logging.getLogger(__name__)


class VllmBackend(OpenAICompatibleBackend):
    def __init__(self, base_url: str, model: str, api_key: str) -> None:
        # A local server: fail over to the next backend at once rather than retrying.
        super().__init__("vllm", base_url, model, api_key, max_retries=0, sends_priority=True)
        self._loading = asyncio.Lock()  # concurrent first requests for one adapter load it once

    async def load_adapter(self, prompt: ChatPrompt) -> bool:
        if not prompt.adapter_path:
            return False
        async with self._loading:
            models = await self._client.models.list(timeout=5.0)
            if any(m.id == prompt.adapter for m in models.data):
                return True  # another request loaded it meanwhile
            try:
                await self._client.post(
                    "/load_lora_adapter",
                    body={"lora_name": prompt.adapter, "lora_path": prompt.adapter_path},
                    cast_to=str,
                    options={"timeout": 60.0},
                )
            except openai.APIStatusError as exc:
                log.warning("vLLM refused to load adapter %s from %s: %s", prompt.adapter, prompt.adapter_path, exc)
                return False
        log.info("loaded adapter %s from %s", prompt.adapter, prompt.adapter_path)
        return True


def vllm_backend(base_url: str, model: str, api_key: str) -> OpenAICompatibleBackend:
    return VllmBackend(base_url, model, api_key)
