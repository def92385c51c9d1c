"""The quality estimator: P(the cheap tier's answer is as good as the large tier's), before and after the call.

Two calibrated logistic heads in one model file, trained offline on outcome records (`costmesh router
train`, training/estimator.py):
- `pre`, on the request embedding and the router's text features: route to the cheap tier or not;
- `post`, on the same plus the cheap answer's signals (token logprobs, top-2 margin, entropy, length):
  keep the cheap answer or escalate.
Each head's raw score is mapped to a probability by Platt scaling fitted on out-of-fold predictions. The
file also holds the operating points chosen on validation records: for each quality target (accuracy points
the cascade may lose against all-large) the route and keep thresholds that cost least under it. Scoring is
two dot products over ~400 numbers: microseconds.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from services.common.errors import MissingConfig
from services.common.signals import MAX_MARGIN, Signals
from services.router.features import Features

MODEL_KIND = "costmesh-quality-estimator/1"
FEATURE_NAMES = ("words", "code", "math", "multi_step", "questions", "turns", "long_word_ratio")
SIGNAL_NAMES = ("mean_logprob", "min_logprob", "first_logprob", "mean_margin", "mean_entropy", "tokens", "chars")


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


def signal_vector(s: Signals) -> np.ndarray:
    """The answer's signals on comparable scales (logprobs clipped: one -30 token says no more than -10)."""
    return np.array(
        [
            max(s.mean_logprob, -10.0) / 10,
            max(s.min_logprob, -20.0) / 20,
            max(s.first_logprob, -10.0) / 10,
            s.mean_margin / MAX_MARGIN,
            s.mean_entropy / math.log(5),  # top-5 alternatives: at most log 5 nats
            min(s.tokens, 64) / 64,
            min(s.chars, 400) / 400,
        ],
        dtype=np.float64,
    )


def pre_inputs(features: Features, embedding: np.ndarray) -> np.ndarray:
    return np.concatenate([embedding.astype(np.float64), feature_vector(features)])


def post_inputs(features: Features, embedding: np.ndarray, signals: Signals) -> np.ndarray:
    return np.concatenate([pre_inputs(features, embedding), signal_vector(signals)])


def sigmoid(z: float) -> float:
    # Written both ways so exp never overflows.
    return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))


@dataclass(frozen=True)
class Head:
    weights: np.ndarray
    bias: float
    platt_a: float = 1.0  # calibrated P = sigmoid(a * raw score + b)
    platt_b: float = 0.0

    def raw(self, x: np.ndarray) -> float:
        return float(self.weights @ x) + self.bias

    def p(self, x: np.ndarray) -> float:
        return sigmoid(self.platt_a * self.raw(x) + self.platt_b)

    def to_json(self) -> dict[str, object]:
        return {
            "weights": [round(float(w), 6) for w in self.weights],
            "bias": self.bias,
            "platt_a": self.platt_a,
            "platt_b": self.platt_b,
        }

    @classmethod
    def from_json(cls, body: dict[str, object], size: int, path: Path) -> Head:
        weights = np.array(body["weights"], dtype=np.float64)
        if len(weights) != size:
            raise MissingConfig(f"{path}: a head has {len(weights)} weights, expected {size}")
        return cls(weights, float(str(body["bias"])), float(str(body["platt_a"])), float(str(body["platt_b"])))


@dataclass(frozen=True)
class OperatingPoint:
    """Thresholds chosen on validation records for one quality target, and what they did there."""

    max_loss_pts: float  # the target this point was chosen for
    route_threshold: float  # cheap tier first when P_pre(cheap good) >= this
    keep_threshold: float  # keep the cheap answer when P_post(cheap good) >= this
    validation_loss_pts: float
    validation_cost_ratio: float  # cost against all-large on the validation records


ALL_LARGE = OperatingPoint(0.0, 2.0, 2.0, 0.0, 1.0)  # no probability reaches 2: everything goes large


@dataclass(frozen=True)
class QualityModel:
    dimensions: int  # embedding size it was trained on
    pre: Head
    post: Head
    points: tuple[OperatingPoint, ...]  # ascending max_loss_pts
    meta: dict[str, object]

    def p_pre(self, features: Features, embedding: np.ndarray) -> float:
        return self.pre.p(pre_inputs(features, embedding))

    def p_post(self, features: Features, embedding: np.ndarray, signals: Signals) -> float:
        return self.post.p(post_inputs(features, embedding, signals))

    def point(self, max_loss_pts: float) -> OperatingPoint:
        """The point chosen for the largest target not above this one: never looser than asked for."""
        fitting = [p for p in self.points if p.max_loss_pts <= max_loss_pts + 1e-9]
        return fitting[-1] if fitting else ALL_LARGE

    def save(self, path: Path) -> None:
        body = {
            "kind": MODEL_KIND,
            "dimensions": self.dimensions,
            "feature_names": list(FEATURE_NAMES),
            "signal_names": list(SIGNAL_NAMES),
            "pre": self.pre.to_json(),
            "post": self.post.to_json(),
            "points": [asdict(p) for p in self.points],
            "meta": self.meta,
        }
        path.write_text(json.dumps(body, indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> QualityModel:
        try:
            body = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise MissingConfig(f"cannot read the quality estimator {path}: {exc}") from None
        if (
            body.get("kind") != MODEL_KIND
            or body.get("feature_names") != list(FEATURE_NAMES)
            or body.get("signal_names") != list(SIGNAL_NAMES)
        ):
            raise MissingConfig(f"{path} is not a {MODEL_KIND} model with this router's features")
        dims = int(body["dimensions"])
        pre = Head.from_json(body["pre"], dims + len(FEATURE_NAMES), path)
        post = Head.from_json(body["post"], dims + len(FEATURE_NAMES) + len(SIGNAL_NAMES), path)
        points = tuple(sorted((OperatingPoint(**p) for p in body["points"]), key=lambda p: p.max_loss_pts))
        return cls(dims, pre, post, points, dict(body.get("meta", {})))
