"""`costmesh router train --data FILE`: fits the learned router from outcome labels (services/router/labels.py).

Logistic regression with L2 regularisation, fitted by Newton's method (a few hundred examples and 391 inputs:
exact and instant). A stratified hold-out split is kept out of training; its indices go into the model file
so `costmesh bench router` evaluates on questions the model never saw.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

from services.common.embedding import OnnxMiniLM, embedding_text, load_minilm
from services.orchestrator.settings import OrchestratorSettings
from services.router import labels
from services.router.backends.learned import LogisticModel, inputs
from services.router.features import extract
from services.router.settings import DEFAULT_MODEL

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "bench" / "data" / "router" / "mmlu_outcomes.jsonl"


def design_matrix(outcomes: list[labels.Outcome], embedder: OnnxMiniLM) -> np.ndarray:
    """Each example as the router will see it: the orchestrator's embedding text and the text features."""
    texts = [o.text for o in outcomes]
    vectors = np.vstack(
        [embedder.embed([embedding_text([("user", t)]) for t in texts[i : i + 64]]) for i in range(0, len(texts), 64)]
    )
    return np.vstack([inputs(extract(t, turns=1), v) for t, v in zip(texts, vectors, strict=True)])


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


def auc(scores: np.ndarray, y: np.ndarray) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    pos, neg = scores[y == 1], scores[y == 0]
    if not len(pos) or not len(neg):
        return float("nan")
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


def holdout_split(y: np.ndarray, share: float, seed: int) -> tuple[list[int], list[int]]:
    """Stratified: the same share of positives and negatives is held out."""
    rng = random.Random(seed)
    held: list[int] = []
    for label in (0, 1):
        members = [i for i in range(len(y)) if y[i] == label]
        rng.shuffle(members)
        held += members[: round(len(members) * share)]
    kept = sorted(set(range(len(y))) - set(held))
    return kept, sorted(held)


def train(data: Path, out: Path, l2: float, holdout: float, seed: int) -> dict[str, object]:
    outcomes = labels.load(data)
    settings = OrchestratorSettings()
    embedder = load_minilm(settings.embedding_model_dir, settings.embedding_threads)
    x = design_matrix(outcomes, embedder)
    y = np.array([o.large_needed for o in outcomes], dtype=np.float64)
    train_idx, held_idx = holdout_split(y, holdout, seed)
    weights, bias = fit_logistic(x[train_idx], y[train_idx], l2)
    model = LogisticModel(weights, bias, embedder.dimensions, {})
    held_scores = np.array([model.p_large(x[i]) for i in held_idx])
    report: dict[str, object] = {
        "data": data.name,
        "examples": len(outcomes),
        "large_needed": int(y.sum()),
        "train": len(train_idx),
        "holdout": len(held_idx),
        "holdout_auc": round(auc(held_scores, y[held_idx]), 4),
        "l2": l2,
        "seed": seed,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    # The held-out examples by line number in the data file: the router bench evaluates on these only.
    LogisticModel(weights, bias, embedder.dimensions, {**report, "holdout_lines": held_idx}).save(out)
    return report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="costmesh router train", description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="outcome labels from `costmesh router label`")
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--l2", type=float, default=1.0, help="regularisation strength")
    parser.add_argument("--holdout", type=float, default=0.3, help="share of examples kept out of training")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    report = train(args.data, args.out, args.l2, args.holdout, args.seed)
    sys.stdout.write(json.dumps({"router_model": str(args.out), **report}) + "\n")
    return 0
