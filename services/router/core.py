"""Routing decision: features -> classifier -> tier, and the keep-or-escalate judgement after the cheap call.

With the quality estimator (services/router/estimator.py) both decisions come from its calibrated
P(the cheap answer is as good as the large one) and the thresholds it chose for the caller's quality
target; with a plain classifier only the route does. Pure computation, no I/O."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from services.common.errors import InvalidInput, MissingConfig
from services.common.signals import Signals
from services.router.backends.base import ComplexityClassifier
from services.router.estimator import QualityModel
from services.router.features import Features, extract


@dataclass(frozen=True)
class Route:
    tier: str  # "small" | "large"
    confidence: float
    reason: str
    classifier: str
    multi_step: bool
    features: Features
    p_cheap_good: float | None = None  # the estimator's, before the call
    assess_after: bool = False  # the cheap answer is to be judged by assess()


@dataclass(frozen=True)
class Assessment:
    keep: bool
    p_cheap_good: float
    threshold: float
    reason: str


class RouterCore:
    def __init__(
        self,
        classifier: ComplexityClassifier,
        default_threshold: float,
        tenant_thresholds: Mapping[str, float] | None = None,
        estimator: QualityModel | None = None,
        default_max_quality_loss_pts: float = 1.0,
    ) -> None:
        self._classifier = classifier  # the estimator's fallback when a request has no usable embedding
        self._default_threshold = default_threshold
        self._tenant_thresholds = dict(tenant_thresholds or {})
        self._estimator = estimator
        self._default_target = default_max_quality_loss_pts

    def route(
        self,
        messages: list[tuple[str, str]],
        embedding: list[float],
        threshold: float | None = None,
        tenant: str = "",
        max_quality_loss_pts: float | None = None,
    ) -> Route:
        """P(large) threshold precedence: the request's, then the tenant's; without either the estimator
        routes by the quality target's operating point, and a plain classifier by the default threshold."""
        features = _features(messages)
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise InvalidInput("threshold must be within [0, 1]")
        if not all(math.isfinite(v) for v in embedding):
            raise InvalidInput("embedding values must be finite")
        self._target(max_quality_loss_pts)  # a bad target is refused on every path
        explicit = threshold if threshold is not None else self._tenant_thresholds.get(tenant)
        if self._usable(embedding):
            return self._route_by_estimator(features, embedding, max_quality_loss_pts, explicit)
        t = explicit if explicit is not None else self._default_threshold
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

    def _usable(self, embedding: list[float]) -> bool:
        return self._estimator is not None and len(embedding) == self._estimator.dimensions

    def _target(self, max_quality_loss_pts: float | None) -> float:
        target = self._default_target if max_quality_loss_pts is None else max_quality_loss_pts
        if not (math.isfinite(target) and target >= 0):
            raise InvalidInput("max_quality_loss_pts must be a finite number >= 0")
        return target

    def _route_by_estimator(
        self, features: Features, embedding: list[float], max_quality_loss_pts: float | None, threshold: float | None
    ) -> Route:
        assert self._estimator is not None  # checked by _usable
        target = self._target(max_quality_loss_pts)
        p_good = self._estimator.p_pre(features, np.asarray(embedding))
        if threshold is not None:  # a P(large) threshold set by the request or the tenant
            small = 1.0 - p_good < threshold
            why = f"P(large)={1.0 - p_good:.2f} vs threshold {threshold:.2f}"
        else:
            point = self._estimator.point(target)
            small = p_good >= point.route_threshold
            why = f"P(cheap answer as good)={p_good:.2f} vs {point.route_threshold:.2f} for a {target:g}-point target"
        return Route(
            tier="small" if small else "large",
            confidence=p_good if small else 1.0 - p_good,
            reason=f"estimator: {why}",
            classifier="estimator",
            multi_step=False,  # the estimator has already weighed how hard the task is
            features=features,
            p_cheap_good=p_good,
            assess_after=small,
        )

    def assess(
        self,
        messages: list[tuple[str, str]],
        embedding: list[float],
        signals: Signals,
        max_quality_loss_pts: float | None = None,
    ) -> Assessment:
        """Keep the cheap answer, or escalate: the estimator's post-call head against the keep threshold."""
        if self._estimator is None:
            raise MissingConfig("this router has no quality estimator (COSTMESH_ROUTER_CLASSIFIER=estimator)")
        if not self._usable(embedding):
            raise InvalidInput(f"assess needs the request's {self._estimator.dimensions}-d embedding")
        if not all(math.isfinite(v) for v in embedding):
            raise InvalidInput("embedding values must be finite")
        features = _features(messages)
        target = self._target(max_quality_loss_pts)
        point = self._estimator.point(target)
        p_good = self._estimator.p_post(features, np.asarray(embedding), signals)
        keep = p_good >= point.keep_threshold
        verdict = "kept" if keep else "escalate"
        return Assessment(
            keep,
            p_good,
            point.keep_threshold,
            f"{verdict}: P(cheap answer as good)={p_good:.2f} vs {point.keep_threshold:.2f}"
            f" for a {target:g}-point target",
        )


def _features(messages: list[tuple[str, str]]) -> Features:
    user_turns = [content for role, content in messages if role == "user"]
    if not user_turns:
        raise InvalidInput("messages must contain a user message")
    return extract(user_turns[-1], turns=len(messages))
