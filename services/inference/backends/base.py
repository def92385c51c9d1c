"""The one interface every model backend implements."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from services.inference.domain import ChatPrompt, Completion


class ChatBackend(Protocol):
    """A chat model behind an API. ``stream`` yields text deltas, then exactly one Completion."""

    name: str
    model: str

    async def complete(self, prompt: ChatPrompt, timeout_s: float) -> Completion: ...

    def stream(self, prompt: ChatPrompt, timeout_s: float) -> AsyncIterator[str | Completion]: ...

    async def healthy(self) -> bool: ...

    async def close(self) -> None: ...
