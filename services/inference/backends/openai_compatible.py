"""The client every backend shares: any server that speaks OpenAI's chat-completions API, via the `openai` SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai
from openai import AsyncOpenAI

from services.common.errors import BackendUnavailable, InvalidInput, RateLimited
from services.inference.domain import TOP_LOGPROBS, ChatPrompt, Completion, Usage


def request_args(model: str, prompt: ChatPrompt, sends_priority: bool = False) -> dict[str, Any]:
    s = prompt.sampling
    args: dict[str, Any] = {
        "model": prompt.adapter or model,
        "messages": [{"role": m.role, "content": m.content} for m in prompt.messages],
        "temperature": s.temperature,
        "max_tokens": s.max_tokens,
    }
    if s.top_p is not None:
        args["top_p"] = s.top_p
    if s.stop:
        args["stop"] = list(s.stop)
    if s.seed is not None:
        args["seed"] = s.seed
    if s.logprobs:
        args["logprobs"] = True
        args["top_logprobs"] = TOP_LOGPROBS
    if sends_priority and prompt.priority:
        args["extra_body"] = {"priority": prompt.priority}  # vLLM's own request field
    return args


def _usage(raw: Any) -> Usage:
    if raw is None:
        return Usage()
    details = getattr(raw, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) or 0
    return Usage(raw.prompt_tokens, raw.completion_tokens, cached)


def _translate(exc: openai.OpenAIError, backend: str) -> Exception:
    """SDK errors -> costmesh's domain errors (and so gRPC codes)."""
    if isinstance(exc, openai.RateLimitError):
        return RateLimited(f"{backend}: rate limited")
    if isinstance(exc, openai.BadRequestError):
        return InvalidInput(f"{backend} rejected the request: {exc.message}")
    return BackendUnavailable(f"{backend} unavailable: {exc.__class__.__name__}")


class OpenAICompatibleBackend:
    def __init__(
        self, name: str, base_url: str, model: str, api_key: str, max_retries: int, sends_priority: bool = False
    ) -> None:
        self.name = name
        self.model = model
        self._sends_priority = sends_priority  # only servers that accept vLLM's `priority` field
        # Retries with exponential backoff on 429/5xx/connection errors are the SDK's own.
        self._client = AsyncOpenAI(base_url=base_url, api_key=api_key or "EMPTY", max_retries=max_retries)

    async def load_adapter(self, prompt: ChatPrompt) -> bool:
        """Makes the prompt's adapter servable; False when this server cannot (the base: it never can)."""
        return False

    async def complete(self, prompt: ChatPrompt, timeout_s: float) -> Completion:
        args = request_args(self.model, prompt, self._sends_priority)
        try:
            try:
                resp = await self._client.chat.completions.create(**args, timeout=timeout_s)
            except openai.NotFoundError:
                if not (prompt.adapter and await self.load_adapter(prompt)):
                    raise
                resp = await self._client.chat.completions.create(**args, timeout=timeout_s)
        except openai.OpenAIError as exc:
            raise _translate(exc, self.name) from exc
        choice = resp.choices[0]
        content = choice.logprobs.content if choice.logprobs is not None else None
        return Completion(
            text=choice.message.content or "",
            model=resp.model,
            finish_reason=choice.finish_reason or "",
            usage=_usage(resp.usage),
            logprobs=tuple((t.token, t.logprob) for t in content or ()),
            top_logprobs=tuple(tuple((a.token, a.logprob) for a in t.top_logprobs or ()) for t in content or ()),
        )

    async def stream(self, prompt: ChatPrompt, timeout_s: float) -> AsyncIterator[str | Completion]:
        args = request_args(self.model, prompt, self._sends_priority)
        pieces: list[str] = []
        finish_reason, model, usage = "", self.model, Usage()
        options: dict[str, Any] = {"stream": True, "stream_options": {"include_usage": True}, "timeout": timeout_s}
        try:
            try:
                events = await self._client.chat.completions.create(**args, **options)
            except openai.NotFoundError:
                if not (prompt.adapter and await self.load_adapter(prompt)):
                    raise
                events = await self._client.chat.completions.create(**args, **options)
            async for event in events:
                model = event.model or model
                if event.usage is not None:
                    usage = _usage(event.usage)
                for choice in event.choices:
                    if choice.delta.content:
                        pieces.append(choice.delta.content)
                        yield choice.delta.content
                    if choice.finish_reason:
                        finish_reason = choice.finish_reason
        except openai.OpenAIError as exc:
            raise _translate(exc, self.name) from exc
        yield Completion(text="".join(pieces), model=model, finish_reason=finish_reason, usage=usage)

    async def healthy(self) -> bool:
        try:
            await self._client.models.list(timeout=2.0)
        except openai.OpenAIError:
            return False
        return True

    async def close(self) -> None:
        await self._client.close()
