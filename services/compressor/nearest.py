"""The few-shot examples nearest a question, by sentence-embedding cosine.

Demonstrations that resemble the question help a model most (Liu et al. 2022, "What Makes Good In-Context
Examples for GPT-3?"), and a fixed subset of the examples drops half of those for any question. So with
examples="nearest" the core keeps a static share (the same for every question, so the prompt prefix
through it stays byte-identical for provider prefix caches) and fills the rest of its budget with the
examples nearest the question, placed after the static ones.

An example is embedded by its input only (the answer line is the same for all of a label's examples). The
vectors of a block are kept by content in a BlockCache, so a static example list is embedded once (by one
request, however many arrive together); each request then costs one embedding of the question and a dot
product.
"""

from __future__ import annotations

import asyncio
import functools

import numpy as np

from services.common.embedding import Embedder
from services.compressor.blocks import BlockCache, block_key

# Example lists whose vectors are kept: 80 examples take 120 KB, and an app has a few static lists.
BLOCKS_KEPT = 64


class ExampleIndex:
    def __init__(self, embedder: Embedder, max_blocks: int = BLOCKS_KEPT) -> None:
        self._embedder = embedder
        self._vectors: BlockCache[np.ndarray] = BlockCache(max_blocks)

    async def nearest(self, inputs: list[str], question: str, k: int) -> list[int]:
        """Indices of the k inputs nearest the question, the nearest last (next to the question in the
        prompt). Ties keep the caller's order, so the same question always gets the same examples."""
        if k <= 0 or not inputs:
            return []
        vectors = await self._block_vectors(inputs)
        (query,) = await asyncio.to_thread(self._embedder.embed, [question])
        order = np.argsort(-(vectors @ query), kind="stable")[:k]
        return [int(i) for i in order[::-1]]

    async def _block_vectors(self, inputs: list[str]) -> np.ndarray:
        # ONNX Runtime releases the GIL: the event loop keeps serving while a block is embedded.
        vectors, _ = await self._vectors.get_or_compute(
            block_key(self._embedder.name, 1.0, "example-vectors", inputs, ""),
            functools.partial(asyncio.to_thread, self._embedder.embed, inputs),
        )
        return vectors

    async def close(self) -> None:
        await self._vectors.close()
