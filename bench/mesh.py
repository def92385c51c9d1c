"""What the mesh itself adds, measured on the running stack (`costmesh up`).

- router: one Router.Route call (gRPC hop + classification) against its 15 ms budget;
- cache_hit: a full Orchestrator.Complete answered by the exact cache (no model call): validation,
  cache lookup and router concurrently, response assembly, two gRPC hops;
- stages: the orchestrator's own per-stage timings on those hits.
Each is repeated --rounds times; medians of the per-round percentiles are reported.
"""

from __future__ import annotations

import argparse
import statistics
import time

import grpc

from bench.output import emit
from bench.stats import summarize_ms
from costmesh.v1 import (
    common_pb2,
    orchestrator_pb2,
    orchestrator_pb2_grpc,
    router_pb2,
    router_pb2_grpc,
)
from launcher.settings import StackSettings
from services.common.interceptors import blocking_channel

PROMPTS = [
    "What is the capital of France?",
    "Explain step by step how to design a rate limiter for a multi-tenant API, and compare token bucket "
    "with sliding window approaches.",
    "def add(a, b): return a + b  -- why does this fail for strings and integers?",
]


def bench_router(channel: grpc.Channel, n: int) -> list[float]:
    stub = router_pb2_grpc.RouterStub(channel)
    samples = []
    for i in range(n):
        request = router_pb2.RouteRequest(
            tenant="bench",
            messages=[common_pb2.Message(role=common_pb2.ROLE_USER, content=PROMPTS[i % len(PROMPTS)])],
        )
        started = time.perf_counter()
        stub.Route(request, timeout=1.0)
        samples.append(time.perf_counter() - started)
    return samples


def bench_cache_hits(channel: grpc.Channel, n: int) -> tuple[list[float], dict[str, list[float]]]:
    stub = orchestrator_pb2_grpc.OrchestratorStub(channel)
    request = orchestrator_pb2.CompletionRequest(
        tenant="bench",
        messages=[common_pb2.Message(role=common_pb2.ROLE_USER, content="What is the capital of France?")],
        sampling=common_pb2.SamplingParams(max_tokens=64),
    )
    stub.Complete(request, timeout=120.0)  # fills the cache
    samples: list[float] = []
    stages: dict[str, list[float]] = {}
    for _ in range(n):
        started = time.perf_counter()
        response = stub.Complete(request, timeout=5.0)
        samples.append(time.perf_counter() - started)
        if response.cache.kind != common_pb2.CACHE_HIT_KIND_EXACT:
            raise SystemExit("expected an exact cache hit; is the cache service healthy?")
        for stage in response.stages:
            stages.setdefault(stage.stage, []).append(stage.duration_ms / 1000)
    return samples, stages


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="costmesh bench mesh")
    parser.add_argument("--address", default="127.0.0.1:50050")
    parser.add_argument("--router", default="127.0.0.1:50051")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    per_round: dict[str, list[dict[str, float]]] = {}
    token = StackSettings().mesh_token()  # the router serves the mesh only; the orchestrator admits it too
    with blocking_channel(args.router, token) as router, blocking_channel(args.address, token) as orchestrator:
        bench_router(router, 20)  # warm-up
        for r in range(args.rounds):
            results = {"router": summarize_ms(bench_router(router, args.requests))}
            hits, stages = bench_cache_hits(orchestrator, args.requests)
            results["cache_hit_e2e"] = summarize_ms(hits)
            results.update({f"stage.{name}": summarize_ms(s) for name, s in stages.items()})
            for name, figures in results.items():
                emit({"bench": "mesh", "round": r, "metric": name, **figures})
                per_round.setdefault(name, []).append(figures)

    summary = {
        name: {k: round(statistics.median(f[k] for f in rounds), 3) for k in ("p50_ms", "p95_ms", "p99_ms")}
        for name, rounds in per_round.items()
    }
    emit(
        {
            "bench": "mesh",
            "summary": True,
            "rounds": args.rounds,
            "requests_per_round": args.requests,
            "medians_of_rounds": summary,
        }
    )
    return 0
