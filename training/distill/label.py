"""Teacher labels through the batch lane: one batch item per unlabelled input, at batch prices.

The items are ordinary CompletionRequests on the teacher's tier, so they are queued, rate-limited and
priced like any batch work and never compete with real-time traffic. The cache is bypassed both ways: a
semantic hit would hand one input another input's label, and labels must not be served to anyone.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import grpc
from tqdm import tqdm

from costmesh.v1 import batch_pb2, batch_pb2_grpc, common_pb2, orchestrator_pb2
from services.common.contracts import TIERS_BY_NAME
from services.common.tasks import Task
from training.distill.data import Row

LABEL_MAX_TOKENS = 24  # a label, or a short extraction; longer answers are cut and reported as failed
SUBMIT_CHUNK = 2000  # items per SubmitBatch (one message stays far under gRPC's 4 MiB cap)


@dataclass(frozen=True)
class Labelled:
    rows: list[Row]
    failed: int
    cost_usd: float
    batch_ids: list[str]


def teacher_request(task: Task, text: str) -> orchestrator_pb2.CompletionRequest:
    messages = [common_pb2.Message(role=common_pb2.ROLE_USER, content=text)]
    if task.teacher_prompt:
        messages.insert(0, common_pb2.Message(role=common_pb2.ROLE_SYSTEM, content=task.teacher_prompt))
    return orchestrator_pb2.CompletionRequest(
        messages=messages,
        tier=TIERS_BY_NAME.get(task.teacher_tier, common_pb2.TIER_LARGE),
        sampling=common_pb2.SamplingParams(temperature=0.0, max_tokens=LABEL_MAX_TOKENS),
        cache=common_pb2.CacheControl(no_cache=True, no_store=True),
        metadata={"costmesh.purpose": f"distill-label:{task.name}"},
    )


def label(
    stub: batch_pb2_grpc.BatchStub,
    metadata: tuple[tuple[str, str], ...],
    tenant: str,
    task: Task,
    rows: list[Row],
    timeout_s: float = 24 * 3600,
) -> Labelled:
    """Submits, follows with a progress bar, and returns the rows with their teacher answers."""
    labelled: list[Row] = []
    failed, cost, batch_ids = 0, 0.0, []
    for start in range(0, len(rows), SUBMIT_CHUNK):
        chunk = rows[start : start + SUBMIT_CHUNK]
        items = [
            batch_pb2.BatchItem(custom_id=str(start + i), request=teacher_request(task, row.text))
            for i, row in enumerate(chunk)
        ]
        status = stub.SubmitBatch(
            batch_pb2.SubmitBatchRequest(tenant=tenant, items=items), timeout=120, metadata=metadata
        )
        batch_ids.append(status.batch_id)
        answers = _results(stub, metadata, tenant, status.batch_id, len(chunk), timeout_s)
        final = stub.GetBatch(
            batch_pb2.BatchRef(tenant=tenant, batch_id=status.batch_id), timeout=30, metadata=metadata
        )
        cost += final.cost_usd
        for i, row in enumerate(chunk):
            answer = answers.get(str(start + i))
            if answer is None:
                failed += 1
                continue
            labelled.append(Row(row.text, row.gold, answer, row.split))
    return Labelled(labelled, failed, cost, batch_ids)


def _results(
    stub: batch_pb2_grpc.BatchStub,
    metadata: tuple[tuple[str, str], ...],
    tenant: str,
    batch_id: str,
    total: int,
    timeout_s: float,
) -> dict[str, str]:
    """custom_id -> the teacher's answer, for the items that succeeded and were not cut short."""
    answers: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    ref = batch_pb2.BatchRef(tenant=tenant, batch_id=batch_id)
    with tqdm(total=total, desc=f"labelling {batch_id}", unit="item", file=sys.stderr) as bar:
        while time.monotonic() < deadline:
            try:
                for result in stub.StreamBatchResults(ref, metadata=metadata, timeout=deadline - time.monotonic()):
                    bar.update(1)
                    if result.HasField("response") and result.response.finish_reason != "length":
                        answers[result.custom_id] = result.response.answer.strip()
                return answers  # the stream ends when the batch is finished
            except grpc.RpcError as exc:
                if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise
                bar.reset(total)  # the stream replays every result from the start when reopened
                answers.clear()
                time.sleep(1.0)
    raise TimeoutError(f"batch {batch_id} did not finish within {timeout_s:.0f} s")
