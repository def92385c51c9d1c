"""Do exact hits stay hits under load? Closed-loop clients against the running stack's orchestrator.

Each step runs ``concurrency`` clients for ``--seconds``; each client sends its next request as soon as
the last one answered, cycling through a small set of prompts that are already in the exact cache
(stored through Cache.Store under the bench key's tenant before the first step), plus an optional share
of never-seen prompts (``--miss-share``: these need a model tier, e.g. `costmesh up --only ... vllm-small`).
Every request carries an API key, as users' requests do, and the client's deadline (``--deadline-s``).

Per step, one JSON line: exact-hit latency (p50/p99), failures by status, and ``hits_became_model_calls``:
requests whose prompt was cached but whose answer says a model answered it (the cache stage missed its
budget, failed open and the request paid for a model call). ``late_exact_hits`` counts hits served after
the exact stage had missed its budget (the late-hit rule, services/orchestrator/prepare.py). A summary
line follows: the worst step's figures and whether the target held (0 failures, 0 conversions, exact-hit
p99 <= ``--p99-target-ms``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import grpc

from bench.output import emit
from bench.stats import summarize_ms
from costmesh.v1 import cache_pb2, cache_pb2_grpc, common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from launcher.settings import StackSettings
from services.common.apikeys import KeyStore
from services.common.interceptors import client_channel

TENANT = "bench-load"
PROMPTS = (
    "What is the capital of France?",
    "Name three primary colours.",
    "How many days are in a leap year?",
    "What does HTTP stand for?",
    "Translate 'good morning' into Spanish.",
    "What is the boiling point of water in Celsius?",
    "Who wrote Romeo and Juliet?",
    "What is 12 times 12?",
)


@dataclass
class Step:
    hit_latency_s: list[float] = field(default_factory=list)
    miss_latency_s: list[float] = field(default_factory=list)
    failures: collections.Counter[str] = field(default_factory=collections.Counter)
    miss_failures: collections.Counter[str] = field(default_factory=collections.Counter)
    became_model_calls: int = 0
    late_hits: int = 0
    requests: int = 0

    def record(self, cached: bool, seconds: float, response: orchestrator_pb2.CompletionResponse) -> None:
        if not cached:
            self.miss_latency_s.append(seconds)
            return
        if response.cache.kind != common_pb2.CACHE_HIT_KIND_EXACT or response.cost.price_model != "cache":
            self.became_model_calls += 1
            return
        self.hit_latency_s.append(seconds)
        if any(s.stage == "cache_exact" and s.outcome == "late" for s in response.stages):
            self.late_hits += 1


def messages(prompt: str) -> list[common_pb2.Message]:
    return [common_pb2.Message(role=common_pb2.ROLE_USER, content=prompt)]


async def seed(cache: cache_pb2_grpc.CacheAsyncStub, prompts: list[str]) -> None:
    """Puts every prompt in the exact tier as the orchestrator keys it (the key's tenant, no sampling)."""
    now = int(time.time())
    for prompt in prompts:
        answer = cache_pb2.CachedAnswer(
            answer=f"(bench answer to: {prompt})",
            model="bench-load",
            tier=common_pb2.TIER_SMALL,
            finish_reason="stop",
            usage=common_pb2.TokenUsage(prompt_tokens=12, completion_tokens=8),
            cost_usd=0.00001,
            baseline_cost_usd=0.0001,
            created_unix_s=now,
        )
        key = cache_pb2.CacheKeyMaterial(tenant=TENANT, messages=messages(prompt))
        stored = await cache.Store(cache_pb2.StoreRequest(key=key, answer=answer), timeout=10)
        if not stored.stored:
            raise RuntimeError(f"could not seed {prompt!r}: {stored.reason}")


async def client(
    stub: orchestrator_pb2_grpc.OrchestratorAsyncStub,
    key: str,
    prompts: list[str],
    args: argparse.Namespace,
    offset: int,
    until: float,
    step: Step,
) -> None:
    i = offset
    every = round(1 / args.miss_share) if args.miss_share > 0 else 0
    metadata = (("authorization", f"Bearer {key}"),)
    while time.monotonic() < until:
        i += 1
        cached = not (every and i % every == 0)
        prompt = prompts[i % len(prompts)] if cached else f"{uuid.uuid4().hex[:8]}: say one word."
        request = orchestrator_pb2.CompletionRequest(messages=messages(prompt))
        started = time.perf_counter()
        step.requests += 1
        try:
            response = await stub.Complete(request, timeout=args.deadline_s, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            (step.failures if cached else step.miss_failures)[exc.code().name] += 1
            continue
        step.record(cached, time.perf_counter() - started, response)


def report(concurrency: int, seconds: float, step: Step) -> dict[str, Any]:
    return {
        "concurrency": concurrency,
        "seconds": round(seconds, 2),
        "requests": step.requests,
        "rps": round(step.requests / seconds, 1),
        "exact_hits": summarize_ms(step.hit_latency_s) if step.hit_latency_s else {"n": 0},
        "late_exact_hits": step.late_hits,
        "failures": dict(step.failures),
        "hits_became_model_calls": step.became_model_calls,
        "misses": summarize_ms(step.miss_latency_s) if step.miss_latency_s else {"n": 0},
        "miss_failures": dict(step.miss_failures),
    }


async def bench(args: argparse.Namespace) -> int:
    stack = StackSettings()
    keys = KeyStore.from_url(stack.redis_url())
    key, policy = await keys.create(TENANT)
    prompts = list(PROMPTS[: args.prompts])
    rows: list[dict[str, Any]] = []
    try:
        async with (
            client_channel(f"127.0.0.1:{stack.cache_port}", token=stack.mesh_token()) as cache_channel,
            client_channel(args.addr or f"127.0.0.1:{stack.orchestrator_port}", token="") as channel,
        ):
            cache: cache_pb2_grpc.CacheAsyncStub = cache_pb2_grpc.CacheStub(cache_channel)
            await seed(cache, prompts)
            stub: orchestrator_pb2_grpc.OrchestratorAsyncStub = orchestrator_pb2_grpc.OrchestratorStub(channel)
            for concurrency in [int(c) for c in args.concurrency.split(",")]:
                step = Step()
                started = time.monotonic()
                until = started + args.seconds
                await asyncio.gather(*(client(stub, key, prompts, args, n, until, step) for n in range(concurrency)))
                rows.append(report(concurrency, time.monotonic() - started, step))
                emit(rows[-1])
    finally:
        await keys.revoke(policy.key_id)
        await keys.close()
    emit(summary(rows, args.p99_target_ms))
    return 0


def summary(rows: list[dict[str, Any]], p99_target_ms: float) -> dict[str, object]:
    failures = sum(sum(int(n) for n in r["failures"].values()) for r in rows)
    converted = sum(int(r["hits_became_model_calls"]) for r in rows)
    p99s = [float(r["exact_hits"].get("p99_ms", 0.0)) for r in rows]
    worst = max(p99s, default=0.0)
    return {
        "summary": "load",
        "steps": len(rows),
        "failures": failures,
        "hits_became_model_calls": converted,
        "worst_exact_hit_p99_ms": worst,
        "target_met": failures == 0 and converted == 0 and worst <= p99_target_ms,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="costmesh bench load", description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", default="1,2,4,8,16", help="comma-separated client counts, one step each")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each step")
    parser.add_argument("--prompts", type=int, default=len(PROMPTS), help="cached prompts the clients cycle through")
    parser.add_argument("--miss-share", type=float, default=0.0, help="share of never-seen prompts (needs a model)")
    parser.add_argument("--deadline-s", type=float, default=2.0, help="each request's client deadline")
    parser.add_argument("--p99-target-ms", type=float, default=50.0)
    parser.add_argument("--addr", default="", help="orchestrator address (default: the stack's)")
    args = parser.parse_args(argv)
    if not 0 < args.prompts <= len(PROMPTS) or not 0 <= args.miss_share < 1:
        parser.error(f"--prompts must be 1..{len(PROMPTS)} and --miss-share in [0, 1)")
    return asyncio.run(bench(args))
