"""CPU each service spends per request, so a deployment can be sized: requests/s per core, per service.

The services run as in `costmesh bench overhead`: their own ports, both tiers on bench/upstream.py (a
fixed-latency OpenAI-compatible server), so a model's own cost is not counted as the mesh's. Redis and
Weaviate are the running stack's (`costmesh up`, or at least redis and weaviate). Three request kinds
are driven open-loop at a rate the machine sustains:

- `exact_hit_gateway`: an OpenAI POST to the gateway answered from the exact cache (gateway,
  orchestrator, cache, Redis);
- `miss_fixed_tier`: Orchestrator.Complete with the tier fixed and the cache off (orchestrator,
  summarizer, inference and the upstream call);
- `miss_routed`: a different real question each time (banking77 test set), tier left to the mesh, cache on:
  the exact and semantic lookups (embedding, Weaviate, the guard), the router, inference, the assessment
  and the cache store.

Each component's CPU time (user + system of its whole process group, from /proc) is read before and
after; an idle window of the same length is measured first and subtracted, so periodic work (health,
metric refreshes) is not charged to requests. `rps_per_core` is 1 / (CPU seconds per request): what
one fully used core of that service serves, before queueing. Redis and Weaviate are shared with whatever
else runs on the machine; their figures include it.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import httpx

from bench.output import emit
from bench.overhead import UPSTREAM_PORT, bench_key, drive, overhead_mesh, wait_http
from costmesh.v1 import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from launcher import stack
from launcher.components import SERVICES
from launcher.process import ProcessTable
from launcher.settings import ROOT, StackSettings
from services.common.interceptors import client_channel

TICKS = os.sysconf("SC_CLK_TCK")
MESH = [s for s in SERVICES if s != "batch"]
SHARED = ("redis", "weaviate")  # the running stack's


def group_cpu_s(pgid: int) -> float:
    """User + system CPU seconds of every live process in a process group (threads included)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        # After the command's ")": state ppid pgrp ... utime (12th) stime (13th), counting from state = 1.
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


def cpu_snapshot(pids: dict[str, int]) -> dict[str, float]:
    return {name: group_cpu_s(pid) for name, pid in pids.items()}


def questions(n: int) -> list[str]:
    with (ROOT / "bench" / "data" / "banking77" / "test.csv").open() as f:
        rows = [row["text"] for row in csv.DictReader(f)]
    return [rows[i % len(rows)] + ("" if i < len(rows) else f" (#{i})") for i in range(n)]


Calls = dict[str, Callable[[], Awaitable[None]]]


async def scenarios(
    mesh: StackSettings, timeout_s: float, n_questions: int, channel: grpc.aio.Channel, gateway: httpx.AsyncClient
) -> Calls:
    orchestrator: orchestrator_pb2_grpc.OrchestratorAsyncStub = orchestrator_pb2_grpc.OrchestratorStub(channel)
    cached = {"model": "costmesh-small", "messages": [{"role": "user", "content": "Say OK, cached."}]}
    (await gateway.post("/v1/chat/completions", json=cached)).raise_for_status()  # fills the exact tier
    fixed = orchestrator_pb2.CompletionRequest(
        tenant="bench-capacity",
        messages=[common_pb2.Message(role=common_pb2.ROLE_USER, content="Say OK.")],
        sampling=common_pb2.SamplingParams(max_tokens=8),
        cache=common_pb2.CacheControl(no_cache=True, no_store=True),
        tier=common_pb2.TIER_SMALL,
    )
    pending = iter(questions(n_questions))

    async def exact_hit_gateway() -> None:
        response = await gateway.post("/v1/chat/completions", json=cached)
        response.raise_for_status()
        if response.headers["x-costmesh-cache"] != "exact":
            raise RuntimeError("not an exact hit")

    async def miss_fixed_tier() -> None:
        await orchestrator.Complete(fixed, timeout=timeout_s)

    async def miss_routed() -> None:
        request = orchestrator_pb2.CompletionRequest(
            tenant=f"bench-capacity-{os.getpid()}",  # a tenant of this run's own: earlier runs' entries miss
            messages=[common_pb2.Message(role=common_pb2.ROLE_USER, content=next(pending))],
            sampling=common_pb2.SamplingParams(max_tokens=8),
        )
        await orchestrator.Complete(request, timeout=timeout_s)

    return {"exact_hit_gateway": exact_hit_gateway, "miss_fixed_tier": miss_fixed_tier, "miss_routed": miss_routed}


def per_request(
    before: dict[str, float], after: dict[str, float], idle: dict[str, float], answered: int
) -> dict[str, dict[str, float | None]]:
    """CPU ms per request and requests/s per core, per component, net of the idle window's CPU."""
    out: dict[str, dict[str, float | None]] = {}
    for name, cpu_before in before.items():
        spent = max(0.0, after[name] - cpu_before - idle.get(name, 0.0))
        cpu_ms = 1000 * spent / max(1, answered)
        # None: too little CPU to measure at this rate (below the clock tick's resolution)
        out[name] = {"cpu_ms": round(cpu_ms, 2), "rps_per_core": round(1000 / cpu_ms, 1) if cpu_ms else None}
    return out


async def measure(args: argparse.Namespace, mesh: StackSettings, pids: dict[str, int]) -> None:
    key = await bench_key(mesh)
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        client_channel(f"127.0.0.1:{mesh.orchestrator_port}", token=mesh.mesh_token()) as channel,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{mesh.gateway_port}", headers=headers) as gateway,
    ):
        n = int(args.rate * args.seconds * args.rounds) + 10
        await rounds(args, pids, await scenarios(mesh, args.timeout_s, n, channel, gateway))


async def rounds(args: argparse.Namespace, pids: dict[str, int], calls: Calls) -> None:
    start = cpu_snapshot(pids)
    await asyncio.sleep(args.seconds)
    idle = {name: cpu - start[name] for name, cpu in cpu_snapshot(pids).items()}
    emit({"idle_cpu_s": {k: round(v, 3) for k, v in idle.items()}, "seconds": args.seconds})
    for name in args.scenarios:
        for round_no in range(args.rounds):
            before = cpu_snapshot(pids)
            started = time.monotonic()
            row = await drive(calls[name], args.rate, args.seconds, args.timeout_s)
            elapsed = time.monotonic() - started
            after = cpu_snapshot(pids)
            # The idle CPU of the window this round actually took (drive waits for the last answers).
            scaled = {k: v * elapsed / args.seconds for k, v in idle.items()}
            answered = int(str(row.get("n", 0)))
            emit(
                {
                    "scenario": name,
                    "round": round_no,
                    "offered_rps": args.rate,
                    "achieved_rps": row["achieved_rps"],
                    "errors": row["errors"],
                    "p50_ms": row.get("p50_ms"),
                    "p99_ms": row.get("p99_ms"),
                    "per_component": per_request(before, after, scaled, answered),
                }
            )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="costmesh bench capacity", description=__doc__)
    parser.add_argument("--rate", type=float, default=10.0, help="requests/s offered in every scenario")
    parser.add_argument("--seconds", type=float, default=15.0, help="per round (and the idle window)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout-s", type=float, default=5.0)
    parser.add_argument(
        "--scenarios",
        type=lambda s: s.split(","),
        default=["exact_hit_gateway", "miss_fixed_tier", "miss_routed"],
    )
    args = parser.parse_args(argv)
    running = StackSettings()
    shared_table = ProcessTable(running.run_dir)
    with tempfile.TemporaryDirectory(prefix="costmesh-capacity-") as tmp:
        mesh = overhead_mesh(Path(tmp) / "run")
        upstream = subprocess.Popen(
            [sys.executable, "-m", "bench.upstream", "--port", str(UPSTREAM_PORT), "--delay-ms", "20"], cwd=ROOT
        )
        try:
            wait_http(f"http://127.0.0.1:{UPSTREAM_PORT}/v1/models", 30)
            stack.up(mesh, only=MESH, say=lambda line: print(line, file=sys.stderr))
            table = ProcessTable(mesh.run_dir)
            pids = {name: pid for name in MESH if (pid := table.pid(name)) is not None}
            pids |= {name: pid for name in SHARED if (pid := shared_table.pid(name)) is not None}
            asyncio.run(measure(args, mesh, pids))
        finally:
            stack.down(mesh, say=lambda _: None)
            upstream.terminate()
            upstream.wait(timeout=30)
    return 0
