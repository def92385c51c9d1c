"""A cross-encoder exported to ONNX, run with ONNX Runtime on CPU: P(two questions have the same answer).

The folder is written at setup by training/verifier_fit.py (all-MiniLM-L6-v2 from a package, fine-tuned):
model.onnx (inputs input_ids / attention_mask / token_type_ids, output one logit per pair, read through a
sigmoid), tokenizer.json, and costmesh-source.json, whose "head" names that output ("sigmoid") and the
pair's token cap ("max_length").
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from services.common.embedding import cpu_session
from services.common.errors import MissingConfig


class CrossEncoder:
    def __init__(self, folder: Path, threads: int = 1) -> None:
        marker = json.loads((folder / "costmesh-source.json").read_text())
        head = marker.get("head") or {}
        self.name = str(marker.get("name") or folder.name)
        if head.get("output", "sigmoid") != "sigmoid":
            raise MissingConfig(f"{folder}: verifier head output {head['output']!r}; only 'sigmoid' is read")
        self._session = cpu_session(folder / "model.onnx", threads)
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.enable_truncation(int(head.get("max_length", 128)))
        self._tokenizer.enable_padding()

    def scores(self, query: str, candidates: Sequence[str]) -> list[float]:
        if not candidates:
            return []
        encodings = self._tokenizer.encode_batch([(query, c) for c in candidates])
        feed = {
            name: np.array([getattr(e, field) for e in encodings], dtype=np.int64)
            for name, field in (
                ("input_ids", "ids"),
                ("attention_mask", "attention_mask"),
                ("token_type_ids", "type_ids"),
            )
        }
        (logits,) = self._session.run(None, feed)
        return [float(p) for p in 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)[:, 0]))]
