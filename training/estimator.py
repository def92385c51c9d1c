"""`costmesh router train`: fits the quality estimator on outcome records and picks its operating points.

1. A stratified test split (by task kind) is set aside and never used for fitting or choosing: its line
   numbers go into the model file, and `costmesh bench cascade` reports on those lines only.
2. On the rest, 5-fold out-of-fold scores of both heads (L2 logistic regression, Newton's method) are
   calibrated with Platt scaling, then the cheapest (route, keep) thresholds are found for each quality
   target on those out-of-fold probabilities: thresholds chosen on records the heads did not see.
3. The heads are refitted on all of it and saved with the calibration and the operating points.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from services.common.embedding import OnnxMiniLM, embedding_text, load_minilm
from services.orchestrator.settings import OrchestratorSettings
from services.router.estimator import Head, OperatingPoint, QualityModel, post_inputs, pre_inputs
from services.router.features import extract
from services.router.settings import DEFAULT_MODEL
from training import outcomes, simulate

TARGETS = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)  # accuracy points lost against all-large
GRID = [round(0.02 * i, 2) for i in range(51)] + [2.0]  # 2.0: nothing passes (all large / always escalate)
FOLDS = 5
L2_GRID = (0.1, 0.3, 1.0, 3.0, 10.0)  # chosen per head by out-of-fold log loss on the dev records


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, iterations: int = 50) -> tuple[np.ndarray, float]:
    """Newton-Raphson on the L2-penalised log-likelihood (the bias is not penalised)."""
    xb = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(xb.shape[1])
    penalty = np.full(xb.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-np.clip(xb @ w, -30, 30)))
        gradient = xb.T @ (p - y) + penalty * w
        hessian = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(penalty) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[:-1], float(w[-1])


def platt(raw: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Calibration: P = sigmoid(a * raw + b), fitted on held-out raw scores (tiny ridge keeps it finite)."""
    w, b = fit_logistic(raw[:, None], y, l2=1e-3)
    return float(w[0]), b


def auc(scores: np.ndarray, y: np.ndarray) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    pos, neg = scores[y == 1], scores[y == 0]
    if not len(pos) or not len(neg):
        return float("nan")
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


def stratified_split(groups: Sequence[str], share: float, seed: int) -> tuple[list[int], list[int]]:
    """(kept, held out): the same share of every group is held out."""
    rng = random.Random(seed)
    held: list[int] = []
    for group in sorted(set(groups)):
        members = [i for i, g in enumerate(groups) if g == group]
        rng.shuffle(members)
        held += members[: round(len(members) * share)]
    return sorted(set(range(len(groups))) - set(held)), sorted(held)


def design(records: list[outcomes.Outcome], embedder: OnnxMiniLM) -> tuple[np.ndarray, np.ndarray]:
    """(pre inputs, post inputs) per record, built as the router builds them from a live request."""
    texts = [embedding_text(r.task.messages) for r in records]
    vectors = np.vstack([embedder.embed(texts[i : i + 64]) for i in range(0, len(texts), 64)])
    pre, post = [], []
    for r, v in zip(records, vectors, strict=True):
        features = extract(r.text, turns=len(r.task.messages))
        pre.append(pre_inputs(features, v))
        post.append(post_inputs(features, v, r.small.signals()))
    return np.vstack(pre), np.vstack(post)


def out_of_fold(x: np.ndarray, y: np.ndarray, l2: float, seed: int) -> np.ndarray:
    """Each row's raw score from a head fitted without its fold."""
    order = np.random.default_rng(seed).permutation(len(y))
    raw = np.zeros(len(y))
    for k in range(FOLDS):
        held = order[k::FOLDS]
        kept = np.setdiff1d(order, held)
        w, b = fit_logistic(x[kept], y[kept], l2)
        raw[held] = x[held] @ w + b
    return raw


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def calibrated_head(x: np.ndarray, y: np.ndarray, l2: float | None, seed: int) -> tuple[Head, np.ndarray, float]:
    """A head fitted on all rows, calibrated on its out-of-fold scores; those calibrated probabilities; and
    the L2 strength used (None: the one whose calibrated out-of-fold predictions have the least log loss)."""
    best: tuple[float, float, np.ndarray, float, float] | None = None
    for strength in L2_GRID if l2 is None else (l2,):
        raw = out_of_fold(x, y, strength, seed)
        a, b = platt(raw, y)
        p = 1 / (1 + np.exp(-(a * raw + b)))
        loss = log_loss(p, y)
        if best is None or loss < best[0]:
            best = (loss, strength, p, a, b)
    assert best is not None
    _, strength, p, a, b = best
    w, bias = fit_logistic(x, y, strength)
    return Head(w, bias, a, b), p, strength


def sim_rows(records: list[outcomes.Outcome], p_pre: np.ndarray, p_post: np.ndarray) -> list[simulate.Row]:
    return [
        simulate.Row(
            float(pp), float(pq), r.small.correct, r.large.correct, r.small.cost_usd("small"), r.large.cost_usd("large")
        )
        for r, pp, pq in zip(records, p_pre, p_post, strict=True)
    ]


def operating_points(rows: list[simulate.Row]) -> tuple[OperatingPoint, ...]:
    base = simulate.all_large(rows)
    points = []
    for target in TARGETS:
        found = simulate.cheapest_within(rows, target, GRID)
        if found is None:
            continue
        route, keep, outcome = found
        loss = 100 * (base.accuracy - outcome.accuracy)
        ratio = outcome.total_cost / max(base.total_cost, 1e-12)
        points.append(OperatingPoint(target, route, keep, round(loss, 3), round(ratio, 4)))
    return tuple(points)


def train(data: Path, out: Path, l2: float | None, test_share: float, seed: int) -> dict[str, object]:
    records = outcomes.load(data)
    settings = OrchestratorSettings()
    embedder = load_minilm(settings.embedding_model_dir, settings.embedding_threads)
    x_pre, x_post = design(records, embedder)
    y = np.array([r.cheap_good for r in records], dtype=np.float64)
    dev, test = stratified_split([r.task.kind for r in records], test_share, seed)
    pre, p_pre, l2_pre = calibrated_head(x_pre[dev], y[dev], l2, seed)
    post, p_post, l2_post = calibrated_head(x_post[dev], y[dev], l2, seed)
    points = operating_points(sim_rows([records[i] for i in dev], p_pre, p_post))
    test_pre = np.array([pre.p(x_pre[i]) for i in test])
    test_post = np.array([post.p(x_post[i]) for i in test])
    report: dict[str, object] = {
        "data": data.name,
        # The test split is line numbers of this very file: the bench refuses any other.
        "records_sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
        "records": len(records),
        "cheap_good_share": round(float(y.mean()), 4),
        "dev": len(dev),
        "test": len(test),
        "validation_auc_pre": round(auc(p_pre, y[dev]), 4),
        "validation_auc_post": round(auc(p_post, y[dev]), 4),
        "test_auc_pre": round(auc(test_pre, y[test]), 4),
        "test_auc_post": round(auc(test_post, y[test]), 4),
        "test_brier_post": round(float(np.mean((test_post - y[test]) ** 2)), 4),
        "models": records[0].models if records else {},
        "l2": {"pre": l2_pre, "post": l2_post},
        "seed": seed,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    QualityModel(embedder.dimensions, pre, post, points, {**report, "test_lines": test}).save(out)
    return {**report, "points": [p.__dict__ for p in points]}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="costmesh router train", description=__doc__)
    parser.add_argument("--data", type=Path, default=outcomes.DEFAULT_RECORDS, help="from `costmesh router label`")
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--l2", type=float, default=None, help="regularisation strength (default: chosen)")
    parser.add_argument("--test", type=float, default=0.3, help="share of records kept out of fitting and choosing")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    report = train(args.data, args.out, args.l2, args.test, args.seed)
    sys.stdout.write(json.dumps({"estimator": str(args.out), **report}) + "\n")
    return 0
