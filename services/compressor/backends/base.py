"""The compressor interface: shorten compressible text, deterministically."""

from __future__ import annotations

from typing import Protocol


class TextCompressor(Protocol):
    """Same input, same output: compressed static blocks must stay byte-identical for prefix caching."""

    name: str

    async def compress(self, texts: list[str], target_ratio: float, question: str = "") -> list[str]:
        """One output per input text, in order; target_ratio is tokens before / tokens after. With a
        question, a method may keep what is relevant to it; the core passes none for static blocks."""
        ...

    async def close(self) -> None: ...
