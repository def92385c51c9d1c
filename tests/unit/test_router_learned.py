"""The learned router: fitting, the model file, scoring with and without an embedding, per-tenant thresholds."""

from pathlib import Path

import numpy as np
import pytest

from services.common.errors import MissingConfig
from services.router.backends.learned import FEATURE_NAMES, LearnedClassifier, LogisticModel, sigmoid
from services.router.backends.registry import make_classifier
from services.router.core import RouterCore
from services.router.features import extract
from services.router.training import auc, fit_logistic, holdout_split

DIM = 8


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels that depend on the first embedding dimension only, with some noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, DIM + len(FEATURE_NAMES)))
    y = (x[:, 0] + 0.3 * rng.normal(size=n) > 0.5).astype(np.float64)
    return x, y


def test_fit_learns_the_signal_and_generalises() -> None:
    x, y = synthetic(400, 1)
    weights, bias = fit_logistic(x, y, l2=1.0)
    assert np.argmax(np.abs(weights)) == 0
    test_x, test_y = synthetic(200, 2)
    scores = 1 / (1 + np.exp(-(test_x @ weights + bias)))
    assert auc(scores, test_y) > 0.95
    assert auc(np.zeros(len(test_y)), test_y) == 0.5  # no information: chance


def test_holdout_is_stratified_and_disjoint() -> None:
    y = np.array([1] * 30 + [0] * 70, dtype=np.float64)
    kept, held = holdout_split(y, 0.3, seed=3)
    assert not set(kept) & set(held) and len(kept) + len(held) == 100
    assert sum(y[held]) == 9 and len(held) == 30


def model(tmp_path: Path) -> Path:
    weights = np.zeros(DIM + len(FEATURE_NAMES))
    weights[0] = 4.0  # the first embedding dimension means "hard"
    path = tmp_path / "router.json"
    LogisticModel(weights, -2.0, DIM, {"note": "test"}).save(path)
    return path


def test_model_file_round_trip_and_scoring(tmp_path: Path) -> None:
    classifier = make_classifier("learned", str(model(tmp_path)))
    features = extract("What is the capital of France?", turns=1)
    hard = classifier.score(features, [1.0] + [0.0] * (DIM - 1))
    easy = classifier.score(features, [0.0] * DIM)
    assert hard.p_large == pytest.approx(sigmoid(2.0)) and easy.p_large == pytest.approx(sigmoid(-2.0))
    assert hard.reason.startswith("learned")


def test_without_an_embedding_the_rules_answer(tmp_path: Path) -> None:
    classifier = LearnedClassifier(LogisticModel.load(model(tmp_path)))
    score = classifier.score(extract("What is the capital of France?", turns=1), [])
    assert "no 8-d embedding" in score.reason and "rules" in score.reason


def test_a_broken_model_file_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"kind": "something else"}')
    with pytest.raises(MissingConfig, match="not a costmesh-router-logistic/1 model"):
        make_classifier("learned", str(broken))
    with pytest.raises(MissingConfig, match="cannot read the router model"):
        make_classifier("learned", str(tmp_path / "missing.json"))


def test_sigmoid_never_overflows() -> None:
    assert sigmoid(-1000) == 0.0 and sigmoid(1000) == 1.0


def test_threshold_precedence_request_then_tenant_then_default(tmp_path: Path) -> None:
    core = RouterCore(make_classifier("learned", str(model(tmp_path))), 0.5, {"strict": 0.05})
    messages = [("user", "What is the capital of France?")]
    easy = [0.0] * DIM  # P(large) = sigmoid(-2) = 0.12
    assert core.route(messages, easy, tenant="acme").tier == "small"
    assert core.route(messages, easy, tenant="strict").tier == "large"  # the tenant's own knob
    assert core.route(messages, easy, threshold=0.9, tenant="strict").tier == "small"  # the request wins
