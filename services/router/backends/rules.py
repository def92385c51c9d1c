"""A transparent rules heuristic: weighted evidence of complexity squashed into a probability."""

from __future__ import annotations

import math
from dataclasses import dataclass

from services.router.backends.base import Score
from services.router.features import Features


@dataclass(frozen=True)
class RuleWeights:
    bias: float = -2.0
    per_100_words: float = 0.8
    code: float = 1.2
    # One arithmetic expression is enough for the large tier: small models get products wrong (17 * 23).
    math: float = 2.0
    multi_step: float = 1.5
    extra_question: float = 0.4
    deep_conversation: float = 0.5  # more than 6 turns
    long_word_ratio: float = 3.0


class RulesClassifier:
    name = "rules"

    def __init__(self, weights: RuleWeights | None = None) -> None:
        self._w = weights or RuleWeights()

    def score(self, features: Features, embedding: list[float]) -> Score:
        w = self._w
        evidence = {
            "length": w.per_100_words * min(features.words, 500) / 100,
            "code": w.code * min(features.code_markers, 3),
            "math": w.math * min(features.math_markers, 3),
            "multi-step": w.multi_step * min(features.multi_step_markers, 2),
            "questions": w.extra_question * max(0, min(features.questions, 5) - 1),
            "depth": w.deep_conversation if features.turns > 6 else 0.0,
            "density": w.long_word_ratio * features.long_word_ratio,
        }
        logit = w.bias + sum(evidence.values())
        top = max(evidence, key=lambda k: evidence[k])
        reason = f"rules: strongest signal {top} ({evidence[top]:+.2f}), logit {logit:+.2f}"
        return Score(1 / (1 + math.exp(-logit)), reason, multi_step=features.multi_step_markers > 0)
