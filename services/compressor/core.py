"""Which documents get compressed, and the token accounting around it. No grpc here."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.errors import InvalidInput
from services.common.tokens import count_text
from services.compressor.backends.base import TextCompressor

# Only retrieved context and few-shot examples are compressible; fixed documents are kept verbatim.
COMPRESSIBLE_KINDS = frozenset({"context", "example"})


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

    @property
    def applied(self) -> bool:
        return self.tokens_after < self.tokens_before


class CompressorCore:
    def __init__(self, compressor: TextCompressor, default_ratio: float) -> None:
        self._compressor = compressor
        self._default_ratio = default_ratio

    async def compress(self, docs: list[Doc], question: str, target_ratio: float) -> Compressed:
        ratio = target_ratio or self._default_ratio
        if ratio < 1.0:
            raise InvalidInput("target_ratio must be >= 1 (tokens before / tokens after)")
        picked = [i for i, d in enumerate(docs) if d.kind in COMPRESSIBLE_KINDS]
        shortened = await self._compressor.compress([docs[i].text for i in picked], question, ratio)
        out = list(docs)
        for i, text in zip(picked, shortened, strict=True):
            out[i] = Doc(docs[i].id, text, docs[i].kind)
        before = sum(count_text(d.text) for d in docs)
        after = sum(count_text(d.text) for d in out)
        return Compressed(out, before, after, self._compressor.name)
