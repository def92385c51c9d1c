"""Cheap text features of a prompt; no model, no network, microseconds per prompt."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

_CODE = re.compile(r"```|\bdef |\bclass |\bfunction\b|\breturn\b|[{};]\s*$|=>|\bimport\b|\bSELECT\b", re.M)
_MATH = re.compile(r"\d+\s*[-+*/^=]\s*\d+|\b(integral|derivative|prove|equation|probability|matrix|solve)\b", re.I)
_MULTI_STEP = re.compile(
    r"\b(step[- ]by[- ]step|first\b.*\bthen|explain why|compare|analy[sz]e|design|trade-?offs?|derive|plan)\b",
    re.I | re.S,
)
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Features:
    words: int
    code_markers: int
    math_markers: int
    multi_step_markers: int
    questions: int
    turns: int
    long_word_ratio: float  # share of words with 9+ letters: a proxy for technical density

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def extract(last_user_message: str, turns: int) -> Features:
    words = _WORD.findall(last_user_message)
    long_words = sum(1 for w in words if len(w) >= 9)
    return Features(
        words=len(words),
        code_markers=len(_CODE.findall(last_user_message)),
        math_markers=len(_MATH.findall(last_user_message)),
        multi_step_markers=len(_MULTI_STEP.findall(last_user_message)),
        questions=last_user_message.count("?"),
        turns=turns,
        long_word_ratio=long_words / len(words) if words else 0.0,
    )
