"""Routing decision: features -> classifier -> tier. Pure computation, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.common.errors import InvalidInput
from services.router.backends.base import ComplexityClassifier
from services.router.features import Features, extract


@dataclass(frozen=True)
class Route:
    tier: str  # "small" | "large"
    confidence: float
    reason: str
    classifier: str
    multi_step: bool
    features: Features


class RouterCore:
    def __init__(
        self,
        classifier: ComplexityClassifier,
        default_threshold: float,
        tenant_thresholds: Mapping[str, float] | None = None,
    ) -> None:
        self._classifier = classifier
        self._default_threshold = default_threshold
        self._tenant_thresholds = dict(tenant_thresholds or {})

    def route(
        self,
        messages: list[tuple[str, str]],
        embedding: list[float],
        threshold: float | None = None,
        tenant: str = "",
    ) -> Route:
        """Threshold precedence: the request's, then the tenant's, then the default."""
        user_turns = [content for role, content in messages if role == "user"]
        if not user_turns:
            raise InvalidInput("messages must contain a user message")
        t = threshold if threshold is not None else self._tenant_thresholds.get(tenant, self._default_threshold)
        if not 0.0 <= t <= 1.0:
            raise InvalidInput("threshold must be within [0, 1]")
        features = extract(user_turns[-1], turns=len(messages))
        score = self._classifier.score(features, embedding)
        large = score.p_large >= t
        confidence = score.p_large if large else 1.0 - score.p_large
        return Route(
            tier="large" if large else "small",
            confidence=confidence,
            reason=f"{score.reason}; P(large)={score.p_large:.2f} vs threshold {t:.2f}",
            classifier=self._classifier.name,
            multi_step=score.multi_step,
            features=features,
        )
