"""What a model's answer looked like, from its token logprobs: the quality estimator's post-call inputs.

Computed the same way online (the orchestrator, on the cheap tier's answer) and offline (the outcome
records the estimator is trained on), so a model trained on records sees the numbers it will be given.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from costmesh.v1 import inference_pb2, router_pb2

MAX_MARGIN = 10.0  # a top-1/top-2 gap past this says nothing more (and a lone alternative would be infinite)


@dataclass(frozen=True)
class Signals:
    tokens: int
    mean_logprob: float
    min_logprob: float
    first_logprob: float
    mean_margin: float
    mean_entropy: float
    chars: int

    def to_proto(self) -> router_pb2.AnswerSignals:
        return router_pb2.AnswerSignals(
            tokens=self.tokens,
            mean_logprob=self.mean_logprob,
            min_logprob=self.min_logprob,
            first_logprob=self.first_logprob,
            mean_margin=self.mean_margin,
            mean_entropy=self.mean_entropy,
            chars=self.chars,
        )

    @classmethod
    def from_proto(cls, p: router_pb2.AnswerSignals) -> Signals:
        return cls(p.tokens, p.mean_logprob, p.min_logprob, p.first_logprob, p.mean_margin, p.mean_entropy, p.chars)


def _margin(chosen: float, alternatives: Sequence[float]) -> float:
    """How far the chosen token led the best other candidate (top-k lists include the chosen token)."""
    ranked = sorted(alternatives, reverse=True)
    if len(ranked) < 2:
        return MAX_MARGIN
    best, second = ranked[0], ranked[1]
    # Sampling may pick a token that is not the top one: the margin is then negative.
    lead = chosen - (second if math.isclose(chosen, best, abs_tol=1e-6) else best)
    return max(-MAX_MARGIN, min(MAX_MARGIN, lead))


def _entropy(alternatives: Sequence[float]) -> float:
    """Entropy of the top-k candidates' probabilities, renormalised to sum to one (nats)."""
    if not alternatives:
        return 0.0
    top = max(alternatives)
    weights = [math.exp(lp - top) for lp in alternatives]
    total = sum(weights)
    return -sum(w / total * math.log(w / total) for w in weights if w > 0)


def signals(logprobs: Sequence[float], top: Sequence[Sequence[float]], text: str) -> Signals:
    """`logprobs`: the chosen tokens'; `top`: per token, its alternatives' logprobs (may be empty)."""
    if not logprobs:
        return Signals(0, 0.0, 0.0, 0.0, MAX_MARGIN, 0.0, len(text))
    tops = list(top) if len(top) == len(logprobs) else [[] for _ in logprobs]
    margins = [_margin(lp, alts) if alts else MAX_MARGIN for lp, alts in zip(logprobs, tops, strict=True)]
    entropies = [_entropy(alts) for alts in tops]
    return Signals(
        tokens=len(logprobs),
        mean_logprob=sum(logprobs) / len(logprobs),
        min_logprob=min(logprobs),
        first_logprob=logprobs[0],
        mean_margin=sum(margins) / len(margins),
        mean_entropy=sum(entropies) / len(entropies),
        chars=len(text),
    )


def answer_signals(logprobs: Sequence[inference_pb2.TokenLogprob], text: str) -> router_pb2.AnswerSignals:
    """The orchestrator's entry: the inference service's TokenLogprob list as AnswerSignals."""
    chosen = [t.logprob for t in logprobs]
    top = [[a.logprob for a in t.top] for t in logprobs]
    return signals(chosen, top, text).to_proto()
