"""`costmesh batch submit|status|results|cancel`: the batch lane from the command line.

Input files are OpenAI batch input JSONL (one /v1/chat/completions request per line); results are written
in OpenAI's batch output format, one line per item, so existing tooling reads them unchanged.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import grpc

from costmesh.v1 import batch_pb2, batch_pb2_grpc
from services.cli.ask import auth_metadata
from services.common.openai_batch import batch_output_line


class Client:
    """The batch service's RPCs, each sent with the caller's API key."""

    def __init__(self, address: str, key: str) -> None:
        self.stub = batch_pb2_grpc.BatchStub(grpc.insecure_channel(address))
        self.metadata = auth_metadata(key)


PRIORITIES = {
    "high": batch_pb2.BATCH_PRIORITY_HIGH,
    "normal": batch_pb2.BATCH_PRIORITY_NORMAL,
    "low": batch_pb2.BATCH_PRIORITY_LOW,
}


def submit(
    client: Client, tenant: str, path: Path, timeout_s: float, priority: str = "normal"
) -> batch_pb2.BatchStatus:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    items = [batch_pb2.BatchItem(openai_line=line) for line in lines]
    request = batch_pb2.SubmitBatchRequest(tenant=tenant, items=items, priority=PRIORITIES[priority])
    status: batch_pb2.BatchStatus = client.stub.SubmitBatch(request, timeout=timeout_s, metadata=client.metadata)
    return status


def progress_line(status: batch_pb2.BatchStatus, width: int = 30) -> str:
    done = status.succeeded + status.failed + status.cancelled
    filled = width * done // max(1, status.total)
    state = batch_pb2.BatchState.Name(status.state).removeprefix("BATCH_STATE_").lower()
    return (
        f"{status.batch_id} [{'#' * filled}{'.' * (width - filled)}] {done}/{status.total} {state}"
        f" · ok {status.succeeded} · failed {status.failed} · cancelled {status.cancelled}"
        f" · ${status.cost_usd:.6f} (baseline ${status.baseline_cost_usd:.6f})"
    )


def watch(client: Client, tenant: str, batch_id: str, follow: bool, interval_s: float = 1.0) -> batch_pb2.BatchStatus:
    while True:
        status: batch_pb2.BatchStatus = client.stub.GetBatch(
            batch_pb2.BatchRef(tenant=tenant, batch_id=batch_id), timeout=30, metadata=client.metadata
        )
        finished = status.finished_unix_ms > 0
        end = "\n" if finished or not follow else "\r"
        print(progress_line(status), end=end, file=sys.stderr if follow else sys.stdout, flush=True)
        if finished or not follow:
            return status
        time.sleep(interval_s)


def results(client: Client, tenant: str, batch_id: str) -> int:
    """Prints every result as it completes (JSON lines on stdout); returns how many."""
    count = 0
    ref = batch_pb2.BatchRef(tenant=tenant, batch_id=batch_id)
    for result in client.stub.StreamBatchResults(ref, metadata=client.metadata):
        print(json.dumps(batch_output_line(result)), flush=True)
        count += 1
    return count


def cancel(client: Client, tenant: str, batch_id: str) -> batch_pb2.BatchStatus:
    status: batch_pb2.BatchStatus = client.stub.CancelBatch(
        batch_pb2.BatchRef(tenant=tenant, batch_id=batch_id), timeout=60, metadata=client.metadata
    )
    return status
