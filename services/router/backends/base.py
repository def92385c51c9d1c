"""The classifier interface: features (and optionally an embedding) -> P(needs the large tier)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from services.router.features import Features


@dataclass(frozen=True)
class Score:
    p_large: float
    reason: str
    multi_step: bool


class ComplexityClassifier(Protocol):
    name: str

    def score(self, features: Features, embedding: list[float]) -> Score: ...
