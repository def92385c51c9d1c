"""Which documents get compressed, and the token accounting around it. No grpc here.

Few-shot examples are compressed at the demonstration level by default (select_examples: whole examples
dropped, every label kept); with examples="tokens" they go to the compressor like context does.
Examples and retrieved context are compressed as two separate blocks. Examples are usually
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


def select_examples(examples: list[str], ratio: float) -> list[bool]:
    """Demonstration-level compression: which examples to keep, about 1/ratio of them.

    The same share is kept for every answer (the last line, so every label stays demonstrated), spread
    evenly over that answer's examples in the caller's order. Whole examples go, so the ones that stay are
    intact: token-level compression of short few-shot inputs drops the very words that decide the label.
    """
    by_answer: dict[str, list[int]] = {}
    for i, text in enumerate(examples):
        by_answer.setdefault(split_answer(text)[1].strip(), []).append(i)
    keep: set[int] = set()
    for indices in by_answer.values():
        k = max(1, round(len(indices) / ratio))
        keep.update(indices[int(j * len(indices) / k)] for j in range(k))
    return [i in keep for i in range(len(examples))]


def split_answer(example: str) -> tuple[str, str]:
    """A few-shot example's input and its demonstrated answer (the last line), which is kept verbatim:
    dropping tokens from a label or an output format teaches the model the wrong answer."""
    body, newline, answer = example.rstrip().rpartition("\n")
    return (body, newline + answer) if newline and body.strip() else (example, "")


class CompressorCore:
    def __init__(
        self,
        compressor: TextCompressor,
        default_ratio: float,
        min_tokens: int = 0,
        cache_entries: int = 1024,
        examples: str = "select",
    ) -> None:
        if examples not in ("select", "tokens"):
            raise InvalidInput(f"examples must be 'select' or 'tokens', not {examples!r}")
        self._compressor = compressor
        self._default_ratio = default_ratio
        self._min_tokens = min_tokens
        self._examples = examples  # "select": drop whole examples; "tokens": the compressor shortens each
        self.blocks = BlockCache(cache_entries)

    async def compress(self, docs: list[Doc], question: str, target_ratio: float) -> Compressed:
        ratio = target_ratio or self._default_ratio
        if ratio < 1.0:
            raise InvalidInput("target_ratio must be >= 1 (tokens before / tokens after)")
        out = list(docs)
        cached = 0
        methods = []
        kinds = list(COMPRESSIBLE_KINDS)
        if self._examples == "select":
            kinds.remove("example")
            if self._select(docs, out, ratio):
                methods.append("select-examples")
        for kind in kinds:
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
            methods.append(self._compressor.name)
            for i, text, (_, answer) in zip(picked, shortened, parts, strict=True):
                out[i] = Doc(docs[i].id, text + answer, kind)
        before = sum(count_text(d.text) for d in docs)
        after = sum(count_text(d.text) for d in out)
        return Compressed(out, before, after, "+".join(dict.fromkeys(methods)) or self._compressor.name, cached)

    def _select(self, docs: list[Doc], out: list[Doc], ratio: float) -> bool:
        """Empties the examples demonstration-level compression drops (the prompt leaves empty documents
        out); True if it dropped any. No model, deterministic: nothing to cache."""
        picked = [i for i, d in enumerate(docs) if d.kind == "example"]
        if sum(count_text(docs[i].text) for i in picked) < self._min_tokens:
            return False
        kept = select_examples([docs[i].text for i in picked], ratio)
        for i, keep in zip(picked, kept, strict=True):
            if not keep:
                out[i] = Doc(docs[i].id, "", "example")
        return not all(kept)

    async def close(self) -> None:
        await self.blocks.close()
        await self._compressor.close()
