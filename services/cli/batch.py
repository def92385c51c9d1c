"""`costmesh batch submit|status|results|cancel`: the batch lane from the command line.

Input files are OpenAI batch input JSONL (one /v1/chat/completions request per line); results are written
in OpenAI's batch output format, one line per item, so existing tooling reads them unchanged.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import grpc

from costmesh.v1 import orchestrator_pb2, orchestrator_pb2_grpc


def stub(address: str) -> orchestrator_pb2_grpc.OrchestratorStub:
    return orchestrator_pb2_grpc.OrchestratorStub(grpc.insecure_channel(address))


def submit(address: str, tenant: str, path: Path, timeout_s: float) -> orchestrator_pb2.BatchStatus:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    items = [orchestrator_pb2.BatchItem(openai_line=line) for line in lines]
    status: orchestrator_pb2.BatchStatus = stub(address).SubmitBatch(
        orchestrator_pb2.SubmitBatchRequest(tenant=tenant, items=items), timeout=timeout_s
    )
    return status


def progress_line(status: orchestrator_pb2.BatchStatus, width: int = 30) -> str:
    done = status.succeeded + status.failed + status.cancelled
    filled = width * done // max(1, status.total)
    state = orchestrator_pb2.BatchState.Name(status.state).removeprefix("BATCH_STATE_").lower()
    return (
        f"{status.batch_id} [{'#' * filled}{'.' * (width - filled)}] {done}/{status.total} {state}"
        f" · ok {status.succeeded} · failed {status.failed} · cancelled {status.cancelled}"
        f" · ${status.cost_usd:.6f} (baseline ${status.baseline_cost_usd:.6f})"
    )


def watch(
    address: str, tenant: str, batch_id: str, follow: bool, interval_s: float = 1.0
) -> orchestrator_pb2.BatchStatus:
    client = stub(address)
    while True:
        status: orchestrator_pb2.BatchStatus = client.GetBatch(
            orchestrator_pb2.BatchRef(tenant=tenant, batch_id=batch_id), timeout=30
        )
        finished = status.finished_unix_ms > 0
        end = "\n" if finished or not follow else "\r"
        print(progress_line(status), end=end, file=sys.stderr if follow else sys.stdout, flush=True)
        if finished or not follow:
            return status
        time.sleep(interval_s)


def output_line(result: orchestrator_pb2.BatchResult) -> dict[str, Any]:
    """One line of OpenAI's batch output format, with costmesh's decisions beside the body."""
    if result.HasField("error"):
        return {
            "id": f"costmesh_req_{result.index}",
            "custom_id": result.custom_id,
            "response": None,
            "error": {"code": result.error.code, "message": result.error.message},
        }
    r = result.response
    return {
        "id": f"costmesh_req_{result.index}",
        "custom_id": result.custom_id,
        "response": {
            "status_code": 200,
            "request_id": r.request_id,
            "body": {
                "id": r.request_id,
                "object": "chat.completion",
                "model": r.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": r.answer},
                        "finish_reason": r.finish_reason,
                    }
                ],
                "usage": {
                    "prompt_tokens": r.usage.prompt_tokens,
                    "completion_tokens": r.usage.completion_tokens,
                    "total_tokens": r.usage.prompt_tokens + r.usage.completion_tokens,
                },
            },
            "costmesh": {
                "cost_usd": r.cost.cost_usd,
                "baseline_cost_usd": r.cost.baseline_cost_usd,
                "savings_by_intervention": dict(r.cost.savings_by_intervention),
                "tier": r.route.tier,
                "cache_hit": r.cache.kind,
            },
        },
        "error": None,
    }


def results(address: str, tenant: str, batch_id: str) -> int:
    """Prints every result as it completes (JSON lines on stdout); returns how many."""
    count = 0
    for result in stub(address).StreamBatchResults(orchestrator_pb2.BatchRef(tenant=tenant, batch_id=batch_id)):
        print(json.dumps(output_line(result)), flush=True)
        count += 1
    return count


def cancel(address: str, tenant: str, batch_id: str) -> orchestrator_pb2.BatchStatus:
    status: orchestrator_pb2.BatchStatus = stub(address).CancelBatch(
        orchestrator_pb2.BatchRef(tenant=tenant, batch_id=batch_id), timeout=60
    )
    return status
