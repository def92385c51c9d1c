"""The compressor interface: shorten compressible text, deterministically."""

from __future__ import annotations

from typing import Protocol


class TextCompressor(Protocol):
    """Same input, same output: compressed static blocks must stay byte-identical for prefix caching."""

    name: str

    async def compress(self, texts: list[str], question: str, target_ratio: float) -> list[str]: ...
