"""The ONNX export of all-MiniLM-L6-v2 that `make setup` produces, on real sentences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.common.embedding import OnnxMiniLM, embedding_text
from services.orchestrator.settings import OrchestratorSettings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def embedder() -> OnnxMiniLM:
    return OnnxMiniLM(Path(OrchestratorSettings().embedding_model_dir).expanduser())


def cos(e: OnnxMiniLM, a: str, b: str) -> float:
    va, vb = e.embed([a, b])
    return float(va @ vb)


def test_unit_vectors_of_384_dimensions(embedder: OnnxMiniLM) -> None:
    v = embedder.embed(["hello world", "a much longer sentence that forces the batch to pad"])
    assert v.shape == (2, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    # Padding in a batch does not change an embedding.
    assert float(v[0] @ embedder.embed(["hello world"])[0]) == pytest.approx(1.0, abs=1e-5)


def test_paraphrases_are_close_and_unrelated_text_is_far(embedder: OnnxMiniLM) -> None:
    assert cos(embedder, "What is the capital of France?", "What's the capital of France?") > 0.95
    assert cos(embedder, "How do I reset my card PIN?", "What is the weather like today?") < 0.3


def test_a_conversation_is_embedded_as_its_last_question() -> None:
    # The earlier turns are matched exactly through the cache's context key, not blurred into the vector.
    turns = [
        ("system", "Be brief."),
        ("user", "Capital of France?"),
        ("assistant", "Paris."),
        ("user", "And of Spain?"),
    ]
    assert embedding_text(turns) == "And of Spain?"
    assert embedding_text([("system", "Be brief.")]) == "Be brief."
