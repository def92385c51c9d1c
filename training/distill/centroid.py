"""A task's training centroid and how far its training inputs lie from it: the drift baseline.

Embedded exactly as the orchestrator embeds a request (the user's message, all-MiniLM-L6-v2), so the
router's live distances and these are the same quantity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from services.common.embedding import Embedder

BATCH = 64


@dataclass(frozen=True)
class Centroid:
    vector: tuple[float, ...]
    distance_p50: float
    distance_p95: float


def embed(embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
    parts = [embedder.embed(list(texts[i : i + BATCH])) for i in range(0, len(texts), BATCH)]
    vectors = np.concatenate(parts) if parts else np.zeros((0, embedder.dimensions), dtype=np.float32)
    return np.asarray(vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12))


def distances(vectors: np.ndarray, centroid: np.ndarray) -> np.ndarray:
    """Cosine distance of each (unit) vector to the centroid."""
    unit = centroid / max(float(np.linalg.norm(centroid)), 1e-12)
    return np.asarray(1.0 - vectors @ unit)


def fit(embedder: Embedder, texts: Sequence[str]) -> Centroid:
    if not texts:
        raise ValueError("a centroid needs at least one training input")
    vectors = embed(embedder, texts)
    centroid = vectors.mean(axis=0)
    d = distances(vectors, centroid)
    return Centroid(tuple(float(v) for v in centroid), float(np.quantile(d, 0.5)), float(np.quantile(d, 0.95)))
