"""A cross-encoder exported to ONNX, run with ONNX Runtime on CPU: P(two questions have the same answer).

The folder is written at setup by training/verifier_fit.py (all-MiniLM-L6-v2 from a package, fine-tuned):
model.onnx (inputs input_ids / attention_mask [/ token_type_ids], output logits), tokenizer.json, and
costmesh-source.json, whose "head" says how the logits read:
- {"output": "sigmoid"}: one logit, a duplicate/similarity score;
- {"output": "softmax", "same_label": i}: class i (duplicate, or entailment) is "same answer";
and "symmetric": true scores both orders and keeps the lower, for heads trained on ordered pairs (NLI:
"a entails b" is not "b entails a"). "max_length" caps the pair's tokens.
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
        self._output = str(head.get("output", "sigmoid"))
        if self._output not in ("sigmoid", "softmax"):
            raise MissingConfig(f"{folder}: unknown verifier head output {self._output!r}")
        self._same_label = int(head.get("same_label", 0))
        self._symmetric = bool(head.get("symmetric", False))
        self._session = cpu_session(folder / "model.onnx", threads)
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.enable_truncation(int(head.get("max_length", 128)))
        self._tokenizer.enable_padding()

    def scores(self, query: str, candidates: Sequence[str]) -> list[float]:
        if not candidates:
            return []
        pairs = [(query, c) for c in candidates]
        if self._symmetric:
            pairs += [(c, query) for c in candidates]
        probabilities = self._probabilities(pairs)
        n = len(candidates)
        if self._symmetric:
            probabilities = np.minimum(probabilities[:n], probabilities[n:])
        return [float(p) for p in probabilities]

    def _probabilities(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(pairs)
        feed = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        }
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.array([e.type_ids for e in encodings], dtype=np.int64)
        (logits,) = self._session.run(None, feed)
        logits = np.asarray(logits, dtype=np.float64)
        if self._output == "sigmoid":
            return np.asarray(1.0 / (1.0 + np.exp(-logits[:, 0])))
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return np.asarray(shifted[:, self._same_label] / shifted.sum(axis=1))
