"""Latency a gateway adds: costmesh and the LiteLLM proxy in front of the same upstream, side by side.

The upstream is bench/upstream.py, an OpenAI-compatible server that answers after a fixed delay, so the
model's own variance does not hide the gateways'. Three targets are driven open-loop (requests sent on a
fixed schedule, not after the previous answer) at each rate, interleaved: the upstream directly, the
LiteLLM proxy (`litellm[proxy]` in .venv-litellm, scripts/setup-litellm-env.sh) routing to it, and a
second costmesh mesh (the six services, started on ports 51050-51055 with both tiers pointing at the
upstream) called through the orchestrator with caches off, twice: `costmesh` with the tier fixed by the
request, so the router is not asked, no document is sent and no compression runs (the hops measured are
the orchestrator, the summarizer and inference, plus the exact-cache call it still makes), and
`costmesh_routed` with the tier left to the mesh: the request is embedded, routed by the quality
estimator and, on the cheap tier, its answer assessed (and escalated when the estimator says so, which
calls the upstream twice). Redis and Weaviate are the running stack's (`costmesh up` first).

The HTTP front door is measured on exact cache hits, where nothing else hides it: `costmesh_exact` is
Orchestrator.Complete over gRPC with an API key, `gateway_exact` the same request as an OpenAI
chat-completions POST to the gateway (services/gateway, on port 51080), which authenticates the key,
translates and calls that same RPC. `gateway_added_*` is the gateway's latency over the gRPC call.

Per rate and target: p50/p99 latency, errors and the rate achieved; "added" is a target's latency minus
the direct upstream's. A rate is sustained when nothing failed and at least 95 % of the offered rate was
answered.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from bench.output import emit
from bench.stats import summarize_ms
from costmesh.v1 import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from launcher import stack
from launcher.components import SERVICES
from launcher.settings import ROOT, StackSettings
from services.common.apikeys import KeyStore
from services.common.interceptors import client_channel

UPSTREAM_PORT = 8199
LITELLM_PORT = 4010
MODEL = "smollm2-135m-instruct"  # the name the overhead mesh's small tier sends; the upstream echoes it
LITELLM_CONFIG = """model_list:
  - model_name: {model}
    litellm_params:
      model: openai/{model}
      api_base: http://127.0.0.1:{port}/v1
      api_key: none
litellm_settings:
  telemetry: false
"""

Call = Callable[[], Awaitable[None]]


def wait_http(url: str, timeout_s: float, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2, headers=headers).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not come up in {timeout_s:.0f}s")


def overhead_mesh(run_dir: Path) -> StackSettings:
    """The six services on their own ports, both tiers on the fixed-latency upstream."""
    return StackSettings(
        run_dir=run_dir,
        orchestrator_port=51050,
        router_port=51051,
        cache_port=51052,
        compressor_port=51053,
        summarizer_port=51054,
        inference_port=51055,
        batch_port=51056,
        gateway_port=51080,
        metrics_base_port=9560,
        small_model_port=UPSTREAM_PORT,
        large_model_port=UPSTREAM_PORT,
    )


async def drive(call: Call, rate: float, duration_s: float, timeout_s: float) -> dict[str, object]:
    """Sends rate x duration calls on a fixed schedule; latency and errors of each."""
    latencies: list[float] = []
    errors = 0
    kinds: collections.Counter[str] = collections.Counter()  # what failed, so a report can say why

    async def one() -> None:
        nonlocal errors
        started = time.perf_counter()
        try:
            await asyncio.wait_for(call(), timeout_s)
        except Exception as exc:
            errors += 1
            kinds[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
            return
        latencies.append(time.perf_counter() - started)

    n = int(rate * duration_s)
    begin = time.perf_counter()
    tasks = []
    for i in range(n):
        delay = begin + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - begin
    stats: dict[str, object] = {**summarize_ms(latencies)} if latencies else {"n": 0}
    achieved = round(len(latencies) / elapsed, 1)
    return {**stats, "errors": errors, "error_kinds": dict(kinds), "offered_rps": rate, "achieved_rps": achieved}


def sustained(row: dict[str, object]) -> bool:
    return row["errors"] == 0 and float(str(row["achieved_rps"])) >= 0.95 * float(str(row["offered_rps"]))


async def bench_key(mesh: StackSettings) -> str:
    store = KeyStore.from_url(mesh.redis_url())
    try:
        key, _ = await store.create("bench-overhead")
    finally:
        await store.close()
    return key


async def measure(args: argparse.Namespace, litellm_key: str, mesh: StackSettings) -> list[dict[str, object]]:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Say OK."}], "max_tokens": 8}
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    key = await bench_key(mesh)
    auth = (("authorization", f"Bearer {key}"),)
    cached_body = {"model": "costmesh-small", "messages": [{"role": "user", "content": "Say OK, cached."}]}
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{UPSTREAM_PORT}", limits=limits) as direct,
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{LITELLM_PORT}",
            headers={"Authorization": f"Bearer {litellm_key}"},
            limits=limits,
        ) as proxy,
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{mesh.gateway_port}", headers={"Authorization": f"Bearer {key}"}, limits=limits
        ) as gateway,
        # The mesh token admits the fixed- and routed-tier targets for any tenant; the exact-hit target sends
        # its API key, which then decides, as the gateway's forwarded calls do.
        client_channel(f"127.0.0.1:{mesh.orchestrator_port}", token=mesh.mesh_token()) as channel,
    ):
        orchestrator: orchestrator_pb2_grpc.OrchestratorAsyncStub = orchestrator_pb2_grpc.OrchestratorStub(channel)
        request = orchestrator_pb2.CompletionRequest(
            tenant="bench-overhead",
            messages=[common_pb2.Message(role=common_pb2.ROLE_USER, content="Say OK.")],
            sampling=common_pb2.SamplingParams(max_tokens=8),
            cache=common_pb2.CacheControl(no_cache=True, no_store=True),
            tier=common_pb2.TIER_SMALL,
        )
        routed = orchestrator_pb2.CompletionRequest()
        routed.CopyFrom(request)
        routed.tier = common_pb2.TIER_UNSPECIFIED
        cached = orchestrator_pb2.CompletionRequest(
            messages=[common_pb2.Message(role=common_pb2.ROLE_USER, content="Say OK, cached.")],
            tier=common_pb2.TIER_SMALL,
        )

        async def call_direct() -> None:
            (await direct.post("/v1/chat/completions", json=body)).raise_for_status()

        async def call_litellm() -> None:
            (await proxy.post("/v1/chat/completions", json=body)).raise_for_status()

        async def call_costmesh() -> None:
            await orchestrator.Complete(request, timeout=args.timeout_s)

        async def call_routed() -> None:
            await orchestrator.Complete(routed, timeout=args.timeout_s)

        async def call_exact() -> None:
            response = await orchestrator.Complete(cached, timeout=args.timeout_s, metadata=auth)
            if response.cache.kind != common_pb2.CACHE_HIT_KIND_EXACT:
                raise RuntimeError("not an exact hit")

        async def call_gateway() -> None:
            response = await gateway.post("/v1/chat/completions", json=cached_body)
            response.raise_for_status()
            if response.headers["x-costmesh-cache"] != "exact":
                raise RuntimeError("not an exact hit")

        targets: dict[str, Call] = {
            "upstream": call_direct,
            "litellm": call_litellm,
            "costmesh": call_costmesh,
            "costmesh_routed": call_routed,
            "costmesh_exact": call_exact,
            "gateway_exact": call_gateway,
        }
        await orchestrator.Complete(cached, timeout=args.timeout_s, metadata=auth)  # fills the exact cache
        chosen = {name: call for name, call in targets.items() if name == "upstream" or name in args.targets}
        return await run_rates(chosen, args)


async def run_rates(targets: dict[str, Call], args: argparse.Namespace) -> list[dict[str, object]]:
    """Every target at every rate, interleaved; "added" latency is against the direct upstream's."""
    for call in targets.values():  # warm-up: connections, first-request costs
        for _ in range(5):
            await call()
    rows = []
    for rate in args.rates:
        by_target = {}
        for name, call in targets.items():
            row = {"bench": "overhead", "target": name, **await drive(call, rate, args.seconds, args.timeout_s)}
            by_target[name] = row
        base = by_target["upstream"]
        for name in ("litellm", "costmesh", "costmesh_routed"):
            row = by_target.get(name, {})
            if row.get("n"):
                for q in ("p50_ms", "p99_ms"):
                    row[f"added_{q}"] = round(float(str(row[q])) - float(str(base[q])), 3)
        grpc_exact, http_exact = by_target.get("costmesh_exact", {}), by_target.get("gateway_exact", {})
        if grpc_exact.get("n") and http_exact.get("n"):
            for q in ("p50_ms", "p99_ms"):
                http_exact[f"gateway_added_{q}"] = round(float(str(http_exact[q])) - float(str(grpc_exact[q])), 3)
        for row in by_target.values():
            emit(row)
            rows.append(row)
    return rows


def summary(rows: list[dict[str, object]], rates: list[float]) -> dict[str, object]:
    def best(target: str) -> float:
        ok = [float(str(r["offered_rps"])) for r in rows if r["target"] == target and sustained(r)]
        return max(ok, default=0.0)

    ratios = {}
    for rate in rates:
        at = {str(r["target"]): r for r in rows if r["offered_rps"] == rate}
        ours, theirs = at.get("costmesh", {}).get("added_p50_ms"), at.get("litellm", {}).get("added_p50_ms")
        if ours is not None and theirs:
            ratios[str(rate)] = round(float(str(ours)) / float(str(theirs)), 2)
    gateway_added = {
        str(r["offered_rps"]): {q: r.get(f"gateway_added_{q}") for q in ("p50_ms", "p99_ms")}
        for r in rows
        if r["target"] == "gateway_exact"
    }
    targets = ("upstream", "litellm", "costmesh", "costmesh_routed", "costmesh_exact", "gateway_exact")
    return {
        "bench": "overhead",
        "summary": True,
        "added_p50_ratio_costmesh_over_litellm_by_rate": ratios,
        "gateway_added_over_grpc_exact_by_rate": gateway_added,
        "max_sustained_rps": {t: best(t) for t in targets},
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="costmesh bench overhead", description=__doc__)
    parser.add_argument("--rates", type=lambda s: [float(r) for r in s.split(",")], default=[10.0, 25.0, 50.0, 100.0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per rate and target")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="the upstream's fixed latency")
    parser.add_argument("--timeout-s", type=float, default=5.0)
    parser.add_argument(
        "--targets",
        type=lambda s: s.split(","),
        default=["litellm", "costmesh", "costmesh_routed", "costmesh_exact", "gateway_exact"],
        help="which to drive besides the direct upstream",
    )
    args = parser.parse_args(argv)
    litellm_bin = ROOT / ".venv-litellm" / "bin" / "litellm"
    if not litellm_bin.exists():
        print("no LiteLLM environment: run scripts/setup-litellm-env.sh (make setup does)", file=sys.stderr)
        return 2
    key = f"sk-bench-{secrets.token_hex(16)}"
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="costmesh-overhead-") as tmp:
        config = Path(tmp) / "litellm.yaml"
        config.write_text(LITELLM_CONFIG.format(model=MODEL, port=UPSTREAM_PORT))
        mesh = overhead_mesh(Path(tmp) / "run")
        log = (Path(tmp) / "litellm.log").open("wb")
        try:
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "bench.upstream",
                        "--port",
                        str(UPSTREAM_PORT),
                        "--delay-ms",
                        str(args.delay_ms),
                    ],
                    cwd=ROOT,
                )
            )
            procs.append(
                subprocess.Popen(
                    [str(litellm_bin), "--config", str(config), "--host", "127.0.0.1", "--port", str(LITELLM_PORT)],
                    env={**os.environ, "LITELLM_MASTER_KEY": key, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            wait_http(f"http://127.0.0.1:{UPSTREAM_PORT}/v1/models", 30)
            stack.up(mesh, only=[s for s in SERVICES if s != "batch"], say=lambda line: print(line, file=sys.stderr))
            wait_http(f"http://127.0.0.1:{LITELLM_PORT}/health/liveliness", 180)
            rows = asyncio.run(measure(args, key, mesh))
            emit(summary(rows, args.rates))
        finally:
            stack.down(mesh, say=lambda _: None)
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=30)
            log.close()
    return 0
