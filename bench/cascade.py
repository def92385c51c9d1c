"""`costmesh bench cascade`: what the cascade saves, and the quality it costs, against all-large.

From outcome records (both tiers' real answers, recorded once: `costmesh router label`) each policy is
replayed offline, the way RouteLLM and RouterBench evaluate routers: all-large, all-small, random routing
answering the same share cheaply, the cascade at the quality target's operating point (the quality
estimator's route and keep thresholds) and the oracle. Then the chosen point is confirmed live through the
running mesh on a sample (`--live N`, 0 to skip): the orchestrator applies its own quality target
(COSTMESH_ORCHESTRATOR_MAX_QUALITY_LOSS_PTS), so run it with the same `--target` for a like-for-like check.

`--workload mixed` reports on the shipped records' test lines, which the estimator never saw in fitting or
choosing thresholds. `--workload FILE` (replay JSONL with gold and grader) records both tiers on the file
first (resumable, under runs/cascade/) and reports on all of it. The last line is the JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import statistics
import time
from collections import Counter
from pathlib import Path

import numpy as np

from bench.cascade_plot import svg_curve
from bench.output import emit
from costmesh.v1 import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from launcher.settings import ROOT, StackSettings
from services.common.embedding import load_minilm
from services.common.interceptors import client_channel
from services.common.openai_wire import ROLES
from services.orchestrator.settings import OrchestratorSettings
from services.router.estimator import QualityModel
from services.router.settings import DEFAULT_MODEL
from training import estimator, outcomes, simulate
from workloads import graders


def policy_line(name: str, o: simulate.PolicyResult, large: simulate.PolicyResult) -> dict[str, object]:
    lo, hi = simulate.wilson(sum(o.correct), o.n)
    delta, d_lo, d_hi = simulate.paired_delta([float(c) for c in o.correct], [float(c) for c in large.correct])
    return {
        "bench": "cascade",
        "policy": name,
        "n": o.n,
        "cost_usd_per_1k": round(1000 * o.total_cost / max(1, o.n), 5),
        "cost_ratio_vs_large": round(o.total_cost / max(large.total_cost, 1e-12), 4),
        "accuracy": round(o.accuracy, 4),
        "accuracy_ci95": [round(lo, 4), round(hi, 4)],
        "accuracy_delta_pts": round(delta, 2),
        "accuracy_delta_ci95": [round(d_lo, 2), round(d_hi, 2)],
        "cheap_share": round(o.cheap_share, 4),
        "escalation_rate": round(o.escalation_rate, 4),
    }


def records_for(workload: str, records_path: Path, model: QualityModel, concurrency: int) -> list[outcomes.Outcome]:
    if workload == "mixed":
        trained_on = model.meta.get("records_sha256")
        if trained_on and trained_on != hashlib.sha256(records_path.read_bytes()).hexdigest():
            raise SystemExit(f"{records_path} is not the file the estimator was trained on: its test lines differ")
        lines = model.meta.get("test_lines", [])
        every = outcomes.load(records_path)
        return [every[i] for i in lines] if isinstance(lines, list) else every
    path = Path(workload)
    out = ROOT / "runs" / "cascade" / f"{path.stem}-outcomes.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    tasks = outcomes.file_tasks(path)
    with out.open("a") as sink:
        endpoints = StackSettings().endpoints()
        asyncio.run(outcomes.label(tasks, outcomes.already_recorded(out), sink, concurrency, endpoints))
    wanted = {outcomes.key(t) for t in tasks}
    return [r for r in outcomes.load(out) if outcomes.key(r.task) in wanted]


def per_kind(records: list[outcomes.Outcome], rows: list[simulate.Row], point: tuple[float, float]) -> None:
    kinds: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        kinds.setdefault(r.task.kind or "-", []).append(i)
    for kind, members in sorted(kinds.items()):
        sub = [rows[i] for i in members]
        o, large = simulate.cascade(sub, *point), simulate.all_large(sub)
        emit({**policy_line("cascade", o, large), "kind": kind, "small_accuracy": simulate.all_small(sub).accuracy})


async def live(
    records: list[outcomes.Outcome], address: str, concurrency: int
) -> list[tuple[outcomes.Outcome, orchestrator_pb2.CompletionResponse, float]]:
    tenant = f"cascade-bench-{int(time.time())}"
    gate = asyncio.Semaphore(concurrency)
    # An offline tool of the operator's: the mesh token lets it name the tenant its runs are kept under.
    async with client_channel(address, token=StackSettings().mesh_token()) as channel:
        stub: orchestrator_pb2_grpc.OrchestratorAsyncStub = orchestrator_pb2_grpc.OrchestratorStub(channel)

        async def one(r: outcomes.Outcome) -> tuple[outcomes.Outcome, orchestrator_pb2.CompletionResponse, float]:
            request = orchestrator_pb2.CompletionRequest(
                tenant=tenant,
                messages=[common_pb2.Message(role=ROLES[role], content=text) for role, text in r.task.messages],
                sampling=common_pb2.SamplingParams(max_tokens=r.task.max_tokens),
                cache=common_pb2.CacheControl(no_cache=True, no_store=True),  # the cascade, not the cache
            )
            async with gate:
                started = time.perf_counter()
                response = await stub.Complete(request, timeout=600)
                return r, response, time.perf_counter() - started

        return await asyncio.gather(*(one(r) for r in records))


def live_line(results: list[tuple[outcomes.Outcome, orchestrator_pb2.CompletionResponse, float]]) -> dict[str, object]:
    correct = [graders.grade(resp.answer, r.task.gold, r.task.grader) for r, resp, _ in results]
    recorded_large = [r.large.correct for r, _, _ in results]
    cheap = [resp.route.tier == common_pb2.TIER_SMALL and not resp.route.escalated for _, resp, _ in results]
    escalated = [resp.route.escalated for _, resp, _ in results]
    tried = sum(c or e for c, e in zip(cheap, escalated, strict=True))
    delta, lo, hi = simulate.paired_delta([float(c) for c in correct], [float(c) for c in recorded_large])
    cost = sum(resp.cost.cost_usd for _, resp, _ in results)
    baseline = sum(resp.cost.baseline_cost_usd for _, resp, _ in results)
    reasons = Counter(resp.route.escalation_reason.split(":")[0] for _, resp, _ in results if resp.route.escalated)
    return {
        "bench": "cascade",
        "live": True,
        "n": len(results),
        "cost_ratio_vs_large": round(cost / max(baseline, 1e-12), 4),
        "accuracy": round(sum(correct) / max(1, len(correct)), 4),
        "recorded_large_accuracy": round(sum(recorded_large) / max(1, len(recorded_large)), 4),
        "accuracy_delta_pts": round(delta, 2),
        "accuracy_delta_ci95": [round(lo, 2), round(hi, 2)],
        "cheap_share": round(sum(cheap) / max(1, len(cheap)), 4),
        "escalation_rate": round(sum(escalated) / max(1, tried), 4),
        "escalation_reasons": dict(reasons),
        "latency_p50_s": round(statistics.median(s for _, _, s in results), 3) if results else 0.0,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="costmesh bench cascade", description=__doc__)
    parser.add_argument("--workload", default="mixed", help="mixed (the shipped records' test lines) or a JSONL file")
    parser.add_argument("--records", type=Path, default=outcomes.DEFAULT_RECORDS)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--target", type=float, default=1.0, help="accuracy points the cascade may lose")
    parser.add_argument("--live", type=int, default=40, help="requests to confirm through the mesh; 0: none")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--plot", type=Path, default=Path("cascade-curve.svg"))
    parser.add_argument("--address", default="")
    args = parser.parse_args(argv)

    model = QualityModel.load(args.model)
    records = records_for(args.workload, args.records, model, args.concurrency)
    if not records:
        parser.error("no outcome records to evaluate")
    settings = OrchestratorSettings()
    x_pre, x_post = estimator.design(records, load_minilm(settings.embedding_model_dir, settings.embedding_threads))
    p_pre = np.array([model.pre.p(x) for x in x_pre])
    p_post = np.array([model.post.p(x) for x in x_post])
    rows = estimator.sim_rows(records, p_pre, p_post)
    y = np.array([r.cheap_good for r in records], dtype=np.float64)
    point = model.point(args.target)
    thresholds = (point.route_threshold, point.keep_threshold)

    large = simulate.all_large(rows)
    chosen = simulate.cascade(rows, *thresholds)
    expected, random_cost = simulate.random_expected(rows, chosen.cheap_share)
    lines = {
        "all_large": policy_line("all_large", large, large),
        "all_small": policy_line("all_small", simulate.all_small(rows), large),
        "cascade": {**policy_line("cascade", chosen, large), "route_threshold": thresholds[0]},
        "oracle": policy_line("oracle", simulate.oracle(rows), large),
    }
    lines["cascade"]["keep_threshold"] = thresholds[1]
    vs_random = simulate.paired_delta([float(c) for c in chosen.correct], expected)
    random_vs_large = simulate.paired_delta(expected, [float(c) for c in large.correct])
    random_line = {
        "bench": "cascade",
        "policy": "random_same_share",  # expected values over the random draw
        "n": len(rows),
        "cost_usd_per_1k": round(1000 * random_cost / len(rows), 5),
        "cost_ratio_vs_large": round(random_cost / max(large.total_cost, 1e-12), 4),
        "accuracy": round(sum(expected) / len(rows), 4),
        "accuracy_delta_pts": round(random_vs_large[0], 2),
        "accuracy_delta_ci95": [round(random_vs_large[1], 2), round(random_vs_large[2], 2)],
        "cheap_share": round(chosen.cheap_share, 4),
        "escalation_rate": 0.0,
    }
    for line in (*lines.values(), random_line):
        emit(line)
    per_kind(records, rows, thresholds)
    auc_pre, auc_post = estimator.auc(p_pre, y), estimator.auc(p_post, y)
    emit({"bench": "cascade", "estimator_auc_pre": round(auc_pre, 4), "estimator_auc_post": round(auc_post, 4)})
    svg_curve(rows, model, args.plot)

    confirmed: dict[str, object] = {}
    if args.live > 0:
        sample = random.Random(args.seed).sample(records, min(args.live, len(records)))
        address = args.address or f"127.0.0.1:{StackSettings().orchestrator_port}"
        confirmed = live_line(asyncio.run(live(sample, address, args.concurrency)))
        emit(confirmed)
    cascade_line = lines["cascade"]
    emit(
        {
            "policy": "cascade",
            "workload": args.workload,
            "target_max_loss_pts": args.target,
            "cost_ratio_vs_large": cascade_line["cost_ratio_vs_large"],
            "accuracy_delta_pts": cascade_line["accuracy_delta_pts"],
            "accuracy_delta_ci95": cascade_line["accuracy_delta_ci95"],
            "cheap_share": cascade_line["cheap_share"],
            "escalation_rate": cascade_line["escalation_rate"],
            "random_same_share_accuracy_delta_pts": round(vs_random[0], 2),
            "random_same_share_accuracy_delta_ci95": [round(vs_random[1], 2), round(vs_random[2], 2)],
            "oracle_cost_ratio_vs_large": lines["oracle"]["cost_ratio_vs_large"],
            "estimator_auc_post": round(auc_post, 4),
            "n": len(rows),
            "live": confirmed,
            "plot": str(args.plot),
        }
    )
    return 0
