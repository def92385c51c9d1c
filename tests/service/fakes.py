"""Fake model backends for service tests: real gRPC servers, no model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from services.common.errors import BackendUnavailable
from services.inference.domain import ChatPrompt, Completion, Usage


class EchoBackend:
    """Answers 'echo: <last user message>', cut at max_tokens words; counts words as tokens."""

    def __init__(self, name: str = "fake", model: str = "fake-model", delay_s: float = 0.0) -> None:
        self.name = name
        self.model = model
        self.delay_s = delay_s
        self.prompts: list[ChatPrompt] = []
        self.streamed = 0  # prompts answered through stream(), not complete()

    def _answer(self, prompt: ChatPrompt) -> Completion:
        words = ("echo: " + prompt.messages[-1].content).split(" ")
        finish = "length" if len(words) > prompt.sampling.max_tokens else "stop"
        text = " ".join(words[: prompt.sampling.max_tokens])
        prompt_tokens = sum(len(m.content.split()) + 4 for m in prompt.messages)
        return Completion(text, self.model, finish, Usage(prompt_tokens, len(text.split()), 0), (("echo", -0.1),))

    async def complete(self, prompt: ChatPrompt, timeout_s: float) -> Completion:
        self.prompts.append(prompt)
        await asyncio.sleep(self.delay_s)
        return self._answer(prompt)

    async def stream(self, prompt: ChatPrompt, timeout_s: float) -> AsyncIterator[str | Completion]:
        self.prompts.append(prompt)
        self.streamed += 1
        completion = self._answer(prompt)
        for word in completion.text.split(" "):
            yield word + " "
        yield completion

    async def healthy(self) -> bool:
        return True

    async def close(self) -> None:
        return None


class DeadBackend(EchoBackend):
    async def complete(self, prompt: ChatPrompt, timeout_s: float) -> Completion:
        raise BackendUnavailable(f"{self.name} unavailable: connection refused")

    async def stream(self, prompt: ChatPrompt, timeout_s: float) -> AsyncIterator[str | Completion]:
        raise BackendUnavailable(f"{self.name} unavailable: connection refused")
        yield ""  # pragma: no cover - makes this an async generator

    async def healthy(self) -> bool:
        return False


class CrashingBackend(EchoBackend):
    async def complete(self, prompt: ChatPrompt, timeout_s: float) -> Completion:
        raise KeyError("internal detail that must not leak")


class ScriptedBackend(EchoBackend):
    """Always gives the same answer, with the given logprobs: a cheap tier that is unsure, wrong or off-format."""

    def __init__(self, name: str, answer: str, logprobs: tuple[tuple[str, float], ...] = (("x", -0.1),)) -> None:
        super().__init__(name)
        self.answer = answer
        self.logprobs = logprobs

    def _answer(self, prompt: ChatPrompt) -> Completion:
        prompt_tokens = sum(len(m.content.split()) + 4 for m in prompt.messages)
        usage = Usage(prompt_tokens, len(self.answer.split()), 0)
        # Each token's alternatives: itself and one unlikely other, as vLLM returns its top-5.
        top = tuple(((t, lp), ("other", -9.0)) for t, lp in self.logprobs)
        return Completion(self.answer, self.model, "stop", usage, self.logprobs, top)
