"""Real-time latency with and without a batch flood, through the running mesh (`costmesh up`).

Phase 1 sends `--requests` real-time requests one after another (small tier forced, cache off) and
records their latency. Phase 2 submits a batch of `--batch-items` requests of the same kind to the batch
lane and, while the consumer drains it, sends the same real-time requests again. The batch lane draws
on its own rate limits (the inference service's COSTMESH_INFERENCE_LANE_LIMITS) and, with real time first
(COSTMESH_INFERENCE_BATCH_YIELD_S), waits while real-time requests use the tier. Phase 3 leaves the batch
alone for `--idle-s` to show it then takes the idle capacity.

`--kind embeddings` floods the batch lane with embedding items instead (an index refresh: `--texts-per-item`
texts each, embedded by the stack's embedding model, which shares the cores with the small tier), and the
real-time requests are the same chat completions.

Questions are banking77 test queries (bench/data), so nothing repeats inside a phase.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

from bench.output import emit
from bench.stats import summarize_ms
from costmesh.v1 import batch_pb2, batch_pb2_grpc, common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from launcher.settings import StackSettings
from services.common.interceptors import blocking_channel
from workloads import datasets


def request(tenant: str, question: str, max_tokens: int) -> orchestrator_pb2.CompletionRequest:
    return orchestrator_pb2.CompletionRequest(
        tenant=tenant,
        messages=[common_pb2.Message(role=common_pb2.ROLE_USER, content=question)],
        sampling=common_pb2.SamplingParams(max_tokens=max_tokens),
        cache=common_pb2.CacheControl(no_cache=True, no_store=True),
        tier=common_pb2.TIER_SMALL,
    )


def batch_items(kind: str, tenant: str, texts: list[str], max_tokens: int, per_item: int) -> list[batch_pb2.BatchItem]:
    if kind == "completions":
        return [
            batch_pb2.BatchItem(custom_id=f"b{i}", request=request(tenant, q, max_tokens)) for i, q in enumerate(texts)
        ]
    chunks = [texts[i : i + per_item] for i in range(0, len(texts), per_item)]
    return [
        batch_pb2.BatchItem(
            custom_id=f"e{i}", embeddings=orchestrator_pb2.EmbeddingsRequest(tenant=tenant, input=chunk)
        )
        for i, chunk in enumerate(chunks)
    ]


def realtime(
    stub: orchestrator_pb2_grpc.OrchestratorStub, tenant: str, questions: list[str], max_tokens: int
) -> list[float]:
    latencies = []
    for question in questions:
        started = time.perf_counter()
        stub.Complete(request(tenant, question, max_tokens), timeout=300)
        latencies.append(time.perf_counter() - started)
    return latencies


def batch_progress(stub: batch_pb2_grpc.BatchStub, tenant: str, batch_id: str) -> int:
    status = stub.GetBatch(batch_pb2.BatchRef(tenant=tenant, batch_id=batch_id), timeout=30)
    return int(status.succeeded + status.failed + status.cancelled)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="costmesh bench lanes", description=__doc__)
    parser.add_argument("--requests", type=int, default=20, help="real-time requests per phase")
    parser.add_argument("--batch-items", type=int, default=200)
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--idle-s", type=float, default=30.0, help="batch alone after the real-time phase")
    parser.add_argument("--kind", choices=["completions", "embeddings"], default="completions", help="batch items")
    parser.add_argument("--texts-per-item", type=int, default=16, help="texts per embeddings item")
    args = parser.parse_args(argv)
    per_item = args.texts_per_item if args.kind == "embeddings" else 1
    stack = StackSettings()
    # The mesh token: the orchestrator admits it in place of an API key, for whichever tenant the bench names.
    channel = blocking_channel(f"127.0.0.1:{stack.orchestrator_port}", stack.mesh_token())
    stub = orchestrator_pb2_grpc.OrchestratorStub(channel)
    batches = batch_pb2_grpc.BatchStub(blocking_channel(f"127.0.0.1:{stack.batch_port}", stack.mesh_token()))
    tenant = f"bench-lanes-{uuid.uuid4().hex[:8]}"
    wanted = 2 * args.requests + args.batch_items * per_item
    queries = [text for text, _ in datasets.sample(datasets.banking77("test"), wanted, 3)]
    quiet, busy, flood = (
        queries[: args.requests],
        queries[args.requests : 2 * args.requests],
        queries[2 * args.requests :],
    )

    realtime(stub, tenant, quiet[:2], args.max_tokens)  # warm-up: connections, first-request costs
    alone = realtime(stub, tenant, quiet, args.max_tokens)
    emit({"bench": "lanes", "phase": "real time alone", **summarize_ms(alone)})

    items = batch_items(args.kind, tenant, flood, args.max_tokens, per_item)
    submitted = batches.SubmitBatch(batch_pb2.SubmitBatchRequest(tenant=tenant, items=items), timeout=120)
    started = time.perf_counter()
    during = realtime(stub, tenant, busy, args.max_tokens)
    window_s = time.perf_counter() - started
    done = batch_progress(batches, tenant, submitted.batch_id)
    emit(
        {
            "bench": "lanes",
            "phase": f"real time during a batch flood of {args.kind}",
            **summarize_ms(during),
            "batch_items_done_meanwhile": done,
            "batch_items_per_minute": round(60 * done / window_s, 1),
        }
    )
    # With real time quiet, the batch lane takes the idle capacity.
    time.sleep(args.idle_s)
    done_idle = batch_progress(batches, tenant, submitted.batch_id) - done
    emit(
        {
            "bench": "lanes",
            "phase": "batch alone afterwards",
            "seconds": args.idle_s,
            "batch_items_done": done_idle,
            "batch_items_per_minute": round(60 * done_idle / args.idle_s, 1),
        }
    )
    batches.CancelBatch(batch_pb2.BatchRef(tenant=tenant, batch_id=submitted.batch_id), timeout=120)
    emit(
        {
            "bench": "lanes",
            "summary": True,
            "batch_kind": args.kind,
            "texts_per_item": per_item,
            "realtime_p50_ms_alone": round(1000 * statistics.median(alone), 1),
            "realtime_p50_ms_with_flood": round(1000 * statistics.median(during), 1),
            "realtime_p99_ms_alone": summarize_ms(alone)["p99_ms"],
            "realtime_p99_ms_with_flood": summarize_ms(during)["p99_ms"],
            "p99_ratio": round(summarize_ms(during)["p99_ms"] / summarize_ms(alone)["p99_ms"], 2),
            "batch_items_submitted": len(items),
            "batch_items_done_during_window": done,
            "batch_items_per_minute_when_idle": round(60 * done_idle / args.idle_s, 1),
        }
    )
    return 0
