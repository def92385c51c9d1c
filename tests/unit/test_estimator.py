"""The quality estimator: fitting and calibration, operating points, the model file, routing and assessing."""

from pathlib import Path

import numpy as np
import pytest

from services.common.errors import InvalidInput, MissingConfig
from services.common.signals import Signals
from services.router.backends.rules import RulesClassifier
from services.router.core import RouterCore
from services.router.estimator import (
    FEATURE_NAMES,
    SIGNAL_NAMES,
    Head,
    OperatingPoint,
    QualityModel,
)
from training import simulate
from training.estimator import auc, calibrated_head, fit_logistic, operating_points, stratified_split

DIM = 8
PRE = DIM + len(FEATURE_NAMES)
POST = PRE + len(SIGNAL_NAMES)


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels that depend on the first input only, with noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, PRE))
    y = (x[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(np.float64)
    return x, y


def test_fit_and_calibration_generalise() -> None:
    x, y = synthetic(400, 1)
    head, oof, strength = calibrated_head(x, y, l2=None, seed=2)
    assert strength in (0.1, 0.3, 1.0, 3.0, 10.0)
    assert np.argmax(np.abs(head.weights)) == 0
    test_x, test_y = synthetic(300, 3)
    p = np.array([head.p(row) for row in test_x])
    assert auc(p, test_y) > 0.9
    # Calibrated: among rows given ~0.8, about 80 % are positive (loose: 300 rows).
    band = (p > 0.7) & (p < 0.9)
    assert band.sum() > 10 and abs(test_y[band].mean() - p[band].mean()) < 0.15
    assert len(oof) == 400 and ((oof > 0) & (oof < 1)).all()


def test_stratified_split_keeps_every_kind_in_both_parts() -> None:
    groups = ["a"] * 30 + ["b"] * 70
    kept, held = stratified_split(groups, 0.3, seed=3)
    assert not set(kept) & set(held) and len(kept) + len(held) == 100
    assert sum(groups[i] == "a" for i in held) == 9 and sum(groups[i] == "b" for i in held) == 21


def row(p: float, small: bool, large: bool) -> simulate.Row:
    return simulate.Row(p, p, small, large, small_cost=0.1, large_cost=1.0)


def test_operating_points_are_the_cheapest_under_each_target() -> None:
    # Where the estimator is confident the small tier is right; where it is not, only the large tier is.
    rows = [row(0.9, True, True)] * 50 + [row(0.1, False, True)] * 50
    points = {p.max_loss_pts: p for p in operating_points(rows)}
    zero = points[0.0]
    assert zero.validation_loss_pts == 0.0 and zero.validation_cost_ratio < 0.6
    outcome = simulate.cascade(rows, zero.route_threshold, zero.keep_threshold)
    assert outcome.accuracy == 1.0 and outcome.cheap_share == 0.5


def model(tmp_path: Path) -> Path:
    pre = np.zeros(PRE)
    pre[0] = 6.0  # the first embedding dimension means "easy": the cheap answer will do
    post = np.zeros(POST)
    post[0] = 6.0
    post[PRE] = 6.0  # the answer's mean logprob (scaled): a confident answer is a good one
    points = (OperatingPoint(0.0, 0.9, 0.9, 0.0, 0.8), OperatingPoint(2.0, 0.5, 0.5, 1.5, 0.5))
    path = tmp_path / "quality.json"
    QualityModel(DIM, Head(pre, 0.0), Head(post, 3.0), points, {"note": "test"}).save(path)
    return path


def signals(mean_logprob: float) -> Signals:
    return Signals(3, mean_logprob, mean_logprob, mean_logprob, 5.0, 0.1, 10)


def core(tmp_path: Path) -> RouterCore:
    return RouterCore(RulesClassifier(), 0.5, {}, QualityModel.load(model(tmp_path)), 1.0)


def test_route_by_the_estimator_and_the_quality_target(tmp_path: Path) -> None:
    easy, hard = [1.0] + [0.0] * (DIM - 1), [-1.0] + [0.0] * (DIM - 1)
    router = core(tmp_path)
    r = router.route([("user", "hi")], easy, max_quality_loss_pts=2.0)
    assert r.tier == "small" and r.assess_after and r.classifier == "estimator" and r.p_cheap_good is not None
    assert router.route([("user", "hi")], hard, max_quality_loss_pts=2.0).tier == "large"
    # The default target (1.0) gets the strictest point not looser than it: 0.0 -> route threshold 0.9.
    p = router.route([("user", "hi")], [0.3] + [0.0] * (DIM - 1))
    assert p.tier == "large" and "0.90" in p.reason
    # The strictest point still sends a clear-cut easy request to the cheap tier.
    assert router.route([("user", "hi")], easy, max_quality_loss_pts=0.0).tier == "small"
    with pytest.raises(InvalidInput):
        router.route([("user", "hi")], easy, max_quality_loss_pts=float("nan"))
    with pytest.raises(InvalidInput, match="finite"):
        router.route([("user", "hi")], [float("nan")] * DIM)
    with pytest.raises(InvalidInput):  # refused on the rules path too (no embedding)
        router.route([("user", "hi")], [], max_quality_loss_pts=-1.0)
    # No embedding: the rules answer, with no assessment.
    fallback = router.route([("user", "What is the capital of France?")], [])
    assert fallback.classifier == "rules" and not fallback.assess_after


def test_assess_keeps_confident_answers_and_escalates_unsure_ones(tmp_path: Path) -> None:
    router = core(tmp_path)
    neutral = [0.0] * DIM
    kept = router.assess([("user", "q")], neutral, signals(-0.05), 2.0)
    escalate = router.assess([("user", "q")], neutral, signals(-8.0), 2.0)
    assert kept.keep and not escalate.keep and kept.p_cheap_good > escalate.p_cheap_good
    assert escalate.threshold == 0.5 and escalate.reason.startswith("escalate")
    with pytest.raises(InvalidInput, match="embedding"):
        router.assess([("user", "q")], [0.0] * 3, signals(-0.05))
    with pytest.raises(MissingConfig):
        RouterCore(RulesClassifier(), 0.5).assess([("user", "q")], neutral, signals(-0.05))


def test_model_file_errors_are_config_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"kind": "something else"}')
    with pytest.raises(MissingConfig):
        QualityModel.load(broken)
    with pytest.raises(MissingConfig):
        QualityModel.load(tmp_path / "missing.json")
    loaded = QualityModel.load(model(tmp_path))
    assert loaded.point(1.0).max_loss_pts == 0.0 and loaded.point(5.0).max_loss_pts == 2.0
    assert loaded.point(-1.0).route_threshold > 1.0  # no point fits: all large


def test_fit_logistic_finds_the_signal() -> None:
    x, y = synthetic(300, 4)
    w, _ = fit_logistic(x, y, l2=1.0)
    assert np.argmax(np.abs(w)) == 0
