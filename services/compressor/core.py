"""Which documents get compressed, and the token accounting around it. No grpc here.

Few-shot examples are compressed at the demonstration level: whole examples are dropped, every label keeps
at least one. By default (examples="nearest") a static share of them is kept for every question and the
rest of the budget goes to the examples nearest the question (nearest.py), moved after the static ones so
the prefix stays byte-identical; "select" keeps only the static subset; "tokens" sends each example's input
to the compressor like context. Examples and retrieved context are compressed as separate blocks. Static
examples depend on nothing else: not the request's context, not its question. Retrieved context changes
with the question anyway, so it is compressed with the question, which lets a question-aware method keep
the facts the passage is there for. Each block's result is cached by everything it depends on (blocks.py).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from services.common.errors import InvalidInput
from services.common.tokens import count_text
from services.compressor.backends.base import TextCompressor
from services.compressor.blocks import BlockCache, block_key
from services.compressor.nearest import ExampleIndex

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


def select_examples(examples: list[str], ratio: float, round_down: bool = False) -> list[bool]:
    """Demonstration-level compression: which examples to keep, about 1/ratio of them (at most, with
    round_down: the nearest examples fill the rest of the budget).

    The same share is kept for every answer (the last line, so every label stays demonstrated), spread
    evenly over that answer's examples in the caller's order. Whole examples go, so the ones that stay are
    intact: token-level compression of short few-shot inputs drops the very words that decide the label.
    """
    by_answer: dict[str, list[int]] = {}
    for i, text in enumerate(examples):
        by_answer.setdefault(split_answer(text)[1].strip(), []).append(i)
    keep: set[int] = set()
    for indices in by_answer.values():
        share = len(indices) / ratio
        k = max(1, int(share) if round_down else round(share))
        keep.update(indices[int(j * len(indices) / k)] for j in range(k))
    return [i in keep for i in range(len(examples))]


def split_answer(example: str) -> tuple[str, str]:
    """A few-shot example's input and its demonstrated answer (the last line), which is kept verbatim:
    dropping tokens from a label or an output format teaches the model the wrong answer."""
    body, newline, answer = example.rstrip().rpartition("\n")
    return (body, newline + answer) if newline and body.strip() else (example, "")


def _drop(docs: list[Doc], out: list[Doc], picked: list[int], kept: list[bool]) -> None:
    for i, keep in zip(picked, kept, strict=True):
        if not keep:
            out[i] = Doc(docs[i].id, "", "example")


class CompressorCore:
    def __init__(
        self,
        compressor: TextCompressor,
        default_ratio: float,
        min_tokens: int = 0,
        cache_entries: int = 1024,
        examples: str = "select",
        nearest: ExampleIndex | None = None,
        static_share: float = 0.75,
    ) -> None:
        if examples not in ("nearest", "select", "tokens"):
            raise InvalidInput(f"examples must be 'nearest', 'select' or 'tokens', not {examples!r}")
        if examples == "nearest" and nearest is None:
            raise InvalidInput("examples='nearest' needs an example index (an embedding model)")
        if not 0 < static_share <= 1:
            raise InvalidInput("static_share must be in (0, 1]")
        self._compressor = compressor
        self._default_ratio = default_ratio
        self._min_tokens = min_tokens
        self._examples = examples
        self._nearest = nearest if examples == "nearest" else None
        self._static_share = static_share  # of the kept examples, the share that is the same for every question
        self.blocks: BlockCache[list[str]] = BlockCache(cache_entries)

    async def compress(self, docs: list[Doc], question: str, target_ratio: float) -> Compressed:
        ratio = target_ratio or self._default_ratio
        if ratio < 1.0:
            raise InvalidInput("target_ratio must be >= 1 (tokens before / tokens after)")
        out = list(docs)
        cached = 0
        methods = []
        kinds = list(COMPRESSIBLE_KINDS)
        tail: list[int] = []  # examples picked for this question: they go after everything static
        if self._examples != "tokens":
            kinds.remove("example")
            tail = await self._select(docs, out, ratio, question)
            if tail:
                methods.append("nearest-examples")
            elif out != docs:
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
        if tail:
            moved = set(tail)
            out = [d for i, d in enumerate(out) if i not in moved] + [docs[i] for i in tail]
        before = sum(count_text(d.text) for d in docs)
        after = sum(count_text(d.text) for d in out)
        return Compressed(out, before, after, "+".join(dict.fromkeys(methods)) or self._compressor.name, cached)

    async def _select(self, docs: list[Doc], out: list[Doc], ratio: float, question: str) -> list[int]:
        """Empties the examples demonstration-level compression drops (the prompt leaves empty documents
        out) and returns the ones kept for this question alone, nearest last. The static choice needs no
        model and is deterministic: nothing to cache."""
        picked = [i for i, d in enumerate(docs) if d.kind == "example"]
        if sum(count_text(docs[i].text) for i in picked) < self._min_tokens:
            return []
        texts = [docs[i].text for i in picked]
        if self._nearest is None or not question.strip():
            _drop(docs, out, picked, select_examples(texts, ratio))
            return []
        kept = select_examples(texts, ratio / self._static_share, round_down=True)
        _drop(docs, out, picked, kept)
        rest = [j for j, keep in enumerate(kept) if not keep]
        budget = round(len(picked) / ratio) - sum(kept)
        order = await self._nearest.nearest([split_answer(texts[j])[0] for j in rest], question, budget)
        return [picked[rest[o]] for o in order]

    async def close(self) -> None:
        await self.blocks.close()
        if self._nearest is not None:
            await self._nearest.close()
        await self._compressor.close()
