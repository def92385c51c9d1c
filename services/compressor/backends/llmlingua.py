"""LLMLingua-1 through its HTTP server (deploy/llmlingua/server.py, its own environment)."""

from __future__ import annotations

import httpx

from services.common.errors import BackendUnavailable


class LLMLinguaCompressor:
    name = "llmlingua"

    def __init__(self, url: str, timeout_s: float) -> None:
        # No per-call deadline from the caller: blocks.py finishes a compression even after the request
        # that started it has gone, so the next request finds it cached.
        self._client = httpx.AsyncClient(base_url=url.rstrip("/"), timeout=timeout_s)

    async def compress(self, texts: list[str], target_ratio: float, question: str = "") -> list[str]:
        body = {"texts": texts, "rate": 1.0 / target_ratio, "question": question}
        try:
            reply = await self._client.post("/compress", json=body)
        except httpx.HTTPError as e:
            raise BackendUnavailable(f"LLMLingua server at {self._client.base_url}: {e!r}") from e
        if reply.status_code != 200:
            raise BackendUnavailable(f"LLMLingua server answered {reply.status_code}: {reply.text[:300]}")
        out = reply.json().get("texts")
        if not isinstance(out, list) or len(out) != len(texts):
            raise BackendUnavailable("LLMLingua server returned a different number of texts")
        return [str(t) for t in out]

    async def close(self) -> None:
        await self._client.aclose()
