"""Which documents get compressed, and the token accounting around it. No grpc here.

Few-shot examples and retrieved context are compressed as two separate blocks. Examples are usually
static across requests and sit early in the prompt, so their compressed form depends on nothing else: not
the request's context, not its question. Retrieved context changes with the question anyway, so it is
compressed with the question, which lets a question-aware method keep the facts the passage is there for.
Each block's result is cached by everything it depends on (blocks.py).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from services.common.errors import InvalidInput
from services.common.tokens import count_text
from services.compressor.backends.base import TextCompressor
from services.compressor.blocks import BlockCache, block_key

# Only retrieved context and few-shot examples are compressible; fixed documents are kept verbatim.
COMPRESSIBLE_KINDS = ("example", "context")


@dataclass(frozen=True)
class Doc:
    id: str
    text: str
    kind: str  # "context" | "example" | "fixed"


@dataclass(frozen=True)
class Compressed:
    documents: list[Doc]
    tokens_before: int
    tokens_after: int
    method: str
    cached_blocks: int = 0  # blocks served from the cache rather than compressed now

    @property
    def applied(self) -> bool:
        return self.tokens_after < self.tokens_before


def split_answer(example: str) -> tuple[str, str]:
    """A few-shot example's input and its demonstrated answer (the last line), which is kept verbatim:
    dropping tokens from a label or an output format teaches the model the wrong answer."""
    body, newline, answer = example.rstrip().rpartition("\n")
    return (body, newline + answer) if newline and body.strip() else (example, "")


class CompressorCore:
    def __init__(
        self, compressor: TextCompressor, default_ratio: float, min_tokens: int = 0, cache_entries: int = 1024
    ) -> None:
        self._compressor = compressor
        self._default_ratio = default_ratio
        self._min_tokens = min_tokens
        self.blocks = BlockCache(cache_entries)

    async def compress(self, docs: list[Doc], question: str, target_ratio: float) -> Compressed:
        ratio = target_ratio or self._default_ratio
        if ratio < 1.0:
            raise InvalidInput("target_ratio must be >= 1 (tokens before / tokens after)")
        out = list(docs)
        cached = 0
        for kind in COMPRESSIBLE_KINDS:
            picked = [i for i, d in enumerate(docs) if d.kind == kind]
            parts = [split_answer(docs[i].text) if kind == "example" else (docs[i].text, "") for i in picked]
            bodies = [body for body, _ in parts]
            if not bodies or sum(count_text(b) for b in bodies) < self._min_tokens:
                continue  # too little text for a compression call to pay off
            about = question if kind == "context" else ""
            shortened, hit = await self.blocks.get_or_compute(
                block_key(self._compressor.name, ratio, kind, bodies, about),
                functools.partial(self._compressor.compress, bodies, ratio, about),
            )
            cached += hit
            for i, text, (_, answer) in zip(picked, shortened, parts, strict=True):
                out[i] = Doc(docs[i].id, text + answer, kind)
        before = sum(count_text(d.text) for d in docs)
        after = sum(count_text(d.text) for d in out)
        return Compressed(out, before, after, self._compressor.name, cached)

    async def close(self) -> None:
        await self.blocks.close()
        await self._compressor.close()
