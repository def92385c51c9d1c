"""Router: decision latency, and the cascade's cost-quality curve on held-out MMLU outcomes.

Latency: RouterCore.route (features + classifier) on real prompts up to 512 tokens, the embedding computed
upstream as in the mesh, one process, one core's worth of work.

Curve: the held-out examples of the trained model (the lines `costmesh router train` kept out), each with
both tiers' real answers (`costmesh router label`). For each threshold the cascade routes by P(large),
then judges the cheap answer as the orchestrator does (services/orchestrator/escalation.py, on the recorded
logprobs) and escalates once. Quality is MMLU accuracy; cost is priced with gpt-4o-mini / gpt-4o list prices
on the recorded token counts. Compared with all-small, all-large and random routing at the same cheap share.
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass
from pathlib import Path

from bench.output import emit
from bench.stats import summarize_ms
from services.common.embedding import OnnxMiniLM, embedding_text, load_minilm
from services.inference.domain import Usage
from services.inference.pricing import DEFAULT_PRICES, price_of
from services.orchestrator.escalation import EscalationPolicy, judge
from services.orchestrator.settings import OrchestratorSettings
from services.router import labels
from services.router.backends.learned import LogisticModel
from services.router.backends.registry import make_classifier
from services.router.core import RouterCore
from services.router.settings import DEFAULT_MODEL
from services.router.training import DEFAULT_DATA, design_matrix
from workloads import datasets

THRESHOLDS = [round(0.05 * i, 2) for i in range(21)]


@dataclass(frozen=True)
class Example:
    p_large: float
    small_correct: bool
    large_correct: bool
    small_cost: float
    large_cost: float
    small_escalates: bool  # the orchestrator's judge would reject the cheap answer


def examples(outcomes: list[labels.Outcome], model: LogisticModel, embedder: OnnxMiniLM) -> list[Example]:
    small_price, large_price = DEFAULT_PRICES["gpt-4o-mini"], DEFAULT_PRICES["gpt-4o"]
    policy = EscalationPolicy()
    x = design_matrix(outcomes, embedder)  # the router's inputs, built as for training
    out = []
    for o, row in zip(outcomes, x, strict=True):
        # MMLU answers are a letter, cut at 4 tokens on purpose: judged as complete answers.
        reason, _ = judge(o.small_answer, "stop", o.small_logprobs, "", policy)
        out.append(
            Example(
                p_large=model.p_large(row),
                small_correct=o.small_correct,
                large_correct=o.large_correct,
                small_cost=price_of(Usage(o.small_prompt_tokens, o.small_completion_tokens), small_price),
                large_cost=price_of(Usage(o.large_prompt_tokens, o.large_completion_tokens), large_price),
                small_escalates=bool(reason),
            )
        )
    return out


def point(name: str, rows: list[Example], cheap: list[bool], escalate: bool) -> dict[str, object]:
    """Quality and cost when `cheap[i]` sends example i to the small tier first."""
    correct = cost = 0.0
    escalations = 0
    for ex, small_first in zip(rows, cheap, strict=True):
        if not small_first:
            correct += ex.large_correct
            cost += ex.large_cost
        elif escalate and ex.small_escalates:
            escalations += 1
            correct += ex.large_correct
            cost += ex.small_cost + ex.large_cost
        else:
            correct += ex.small_correct
            cost += ex.small_cost
    n = len(rows)
    answered_small = sum(cheap) - escalations
    return {
        "bench": "router",
        "policy": name,
        "cheap_share": round(answered_small / n, 4),
        "escalation_rate": round(escalations / max(1, sum(cheap)), 4),
        "accuracy": round(correct / n, 4),
        "cost_usd_per_1k": round(1000 * cost / n, 5),
    }


def curve(rows: list[Example], seed: int) -> list[dict[str, object]]:
    n = len(rows)
    points = [
        point("all_small", rows, [True] * n, escalate=False),
        point("all_large", rows, [False] * n, escalate=False),
        point("small_then_escalate", rows, [True] * n, escalate=True),
    ]
    rng = random.Random(seed)
    for t in THRESHOLDS:
        cheap = [ex.p_large < t for ex in rows]
        points.append({**point("cascade", rows, cheap, escalate=True), "threshold": t})
        # Random routing sending the same share to the small tier first, with the same escalation.
        shuffled = rng.sample(cheap, n)
        points.append({**point("random_same_share", rows, shuffled, escalate=True), "threshold": t})
    return points


def latency(model_path: Path, embedder: OnnxMiniLM, n: int) -> list[dict[str, object]]:
    prompts = [q.prompt() for q in datasets.sample(datasets.mmlu(), n, seed=21)]
    prompts += [text for text, _ in datasets.mtbench()]
    vectors = [embedder.embed([embedding_text([("user", p)])])[0].tolist() for p in prompts]
    rows = []
    for name in ("rules", "learned"):
        core = RouterCore(make_classifier(name, str(model_path)), 0.5)
        samples = []
        for prompt, vector in zip(prompts, vectors, strict=True):
            started = time.perf_counter()
            core.route([("user", prompt)], vector)
            samples.append(time.perf_counter() - started)
        row: dict[str, object] = {"bench": "router", "latency": name, "prompts": len(prompts), **summarize_ms(samples)}
        emit(row)
        rows.append(row)
    return rows


def svg_plot(points: list[dict[str, object]], path: Path) -> None:
    """Cost (x) against accuracy (y): the cascade's curve, random routing, and the fixed policies."""
    w, h, pad = 640, 420, 50
    xs = [float(str(p["cost_usd_per_1k"])) for p in points]
    ys = [float(str(p["accuracy"])) for p in points]
    x0, x1, y0, y1 = min(xs), max(xs) or 1, min(ys), max(ys)

    def at(p: dict[str, object]) -> tuple[float, float]:
        x = pad + (float(str(p["cost_usd_per_1k"])) - x0) / max(x1 - x0, 1e-9) * (w - 2 * pad)
        y = h - pad - (float(str(p["accuracy"])) - y0) / max(y1 - y0, 1e-9) * (h - 2 * pad)
        return x, y

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">'
    ]
    parts.append(f'<rect width="{w}" height="{h}" fill="white"/>')
    parts.append(f'<text x="{w / 2}" y="{h - 10}" text-anchor="middle">cost, USD per 1k requests</text>')
    parts.append(f'<text x="14" y="{h / 2}" transform="rotate(-90 14 {h / 2})" text-anchor="middle">accuracy</text>')
    for policy, colour in (("cascade", "#1f77b4"), ("random_same_share", "#aaaaaa")):
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y in map(at, [p for p in points if p["policy"] == policy]))
        parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>')
    for p in points:
        if p["policy"] in ("all_small", "all_large", "small_then_escalate"):
            x, y = at(p)
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="#d62728"/>')
            parts.append(f'<text x="{x + 7:.1f}" y="{y - 7:.1f}">{p["policy"]}</text>')
    parts.append(f'<text x="{pad}" y="20">blue: cascade over the threshold; grey: random routing, same share</text>')
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="costmesh bench router", description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--latency-prompts", type=int, default=400)
    parser.add_argument("--plot", type=Path, default=Path("router-curve.svg"))
    args = parser.parse_args(argv)

    settings = OrchestratorSettings()
    embedder = load_minilm(settings.embedding_model_dir, settings.embedding_threads)
    lat = latency(args.model, embedder, args.latency_prompts)
    model = LogisticModel.load(args.model)
    held_lines = model.meta.get("holdout_lines", [])
    held = set(held_lines) if isinstance(held_lines, list) else set()
    outcomes = [o for i, o in enumerate(labels.load(args.data)) if i in held]
    points = curve(examples(outcomes, model, embedder), seed=1)
    for p in points:
        emit(p)
    svg_plot(points, args.plot)
    large = next(p for p in points if p["policy"] == "all_large")
    # The cheapest cascade point within 1 accuracy point of all-large: the seed figure to beat.
    near = [
        p
        for p in points
        if p["policy"] == "cascade" and float(str(p["accuracy"])) >= float(str(large["accuracy"])) - 0.01
    ]
    best = min(near, key=lambda p: float(str(p["cost_usd_per_1k"])), default=None)
    emit(
        {
            "bench": "router",
            "summary": True,
            "holdout_examples": len(outcomes),
            "holdout_auc": model.meta.get("holdout_auc"),
            "latency_p99_ms": {str(r["latency"]): r["p99_ms"] for r in lat},
            "all_large": large,
            "best_within_1pt_of_all_large": best,
            "plot": str(args.plot),
        }
    )
    return 0
