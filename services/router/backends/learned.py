"""A logistic-regression head on the request embedding plus the text features: P(needs the large tier).

Trained offline by `costmesh router train` (services/router/training.py) from real outcomes, saved as a
small JSON file, loaded once. Scoring is one dot product over 391 numbers: microseconds.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from services.common.errors import MissingConfig
from services.router.backends.base import Score
from services.router.backends.rules import RulesClassifier
from services.router.features import Features

MODEL_KIND = "costmesh-router-logistic/1"


def feature_vector(features: Features) -> np.ndarray:
    """The text features, scaled to roughly [0, 1] so one regularisation strength suits them all."""
    return np.array(
        [
            min(features.words, 500) / 500,
            min(features.code_markers, 3) / 3,
            min(features.math_markers, 3) / 3,
            min(features.multi_step_markers, 2) / 2,
            min(features.questions, 5) / 5,
            min(features.turns, 20) / 20,
            features.long_word_ratio,
        ],
        dtype=np.float64,
    )


def sigmoid(z: float) -> float:
    # Written both ways so exp never overflows.
    return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))


FEATURE_NAMES = ("words", "code", "math", "multi_step", "questions", "turns", "long_word_ratio")


def inputs(features: Features, embedding: np.ndarray) -> np.ndarray:
    return np.concatenate([embedding.astype(np.float64), feature_vector(features)])


@dataclass(frozen=True)
class LogisticModel:
    weights: np.ndarray
    bias: float
    dimensions: int  # embedding size the model was trained on
    meta: dict[str, object]

    def p_large(self, x: np.ndarray) -> float:
        return sigmoid(float(self.weights @ x) + self.bias)

    def save(self, path: Path) -> None:
        body = {
            "kind": MODEL_KIND,
            "dimensions": self.dimensions,
            "feature_names": list(FEATURE_NAMES),
            "bias": self.bias,
            "weights": [round(float(w), 6) for w in self.weights],
            "meta": self.meta,
        }
        path.write_text(json.dumps(body, indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> LogisticModel:
        try:
            body = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise MissingConfig(f"cannot read the router model {path}: {exc}") from None
        if body.get("kind") != MODEL_KIND or body.get("feature_names") != list(FEATURE_NAMES):
            raise MissingConfig(f"{path} is not a {MODEL_KIND} model with this router's features")
        weights = np.array(body["weights"], dtype=np.float64)
        if len(weights) != body["dimensions"] + len(FEATURE_NAMES):
            raise MissingConfig(f"{path}: {len(weights)} weights for {body['dimensions']} + features")
        return cls(weights, float(body["bias"]), int(body["dimensions"]), dict(body.get("meta", {})))


class LearnedClassifier:
    name = "learned"

    def __init__(self, model: LogisticModel) -> None:
        self._model = model
        self._fallback = RulesClassifier()

    def score(self, features: Features, embedding: list[float]) -> Score:
        multi_step = features.multi_step_markers > 0
        if len(embedding) != self._model.dimensions:
            # No embedding upstream (no embedder configured): the rules still give an answer.
            rules = self._fallback.score(features, embedding)
            reason = f"learned: no {self._model.dimensions}-d embedding, so {rules.reason}"
            return Score(rules.p_large, reason, multi_step)
        p = self._model.p_large(inputs(features, np.asarray(embedding)))
        return Score(p, "learned: logistic head on the embedding and features", multi_step)
