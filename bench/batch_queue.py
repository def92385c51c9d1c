"""The batch lane's throughput on each queue backend: items/min through submit, queue, consumer and job store.

The executor answers at once (or after --work-ms), so what is measured is the lane itself: publishing,
claiming, recording each result in Redis and acknowledging it (Kafka: committing the offset). Redis and,
for --backend kafka, the Kafka broker are started by the same launcher as `costmesh up` unless they run.
Each run gets a fresh stream or fresh topics and group; the summary line has the median of the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import redis.asyncio as redis

from bench.output import emit
from costmesh.v1 import batch_pb2, common_pb2, orchestrator_pb2
from launcher import stack
from launcher.settings import StackSettings
from services.batch.api import BatchApi
from services.batch.backends.base import WorkQueue
from services.batch.backends.kafka import KafkaOptions, KafkaQueue
from services.batch.backends.redis_streams import RedisStreamQueue
from services.batch.consumer import Consumer, ConsumerSettings
from services.batch.jobs import JobStore


class InstantExecutor:
    def __init__(self, work_s: float) -> None:
        self._work_s = work_s

    async def complete(self, request: orchestrator_pb2.CompletionRequest) -> orchestrator_pb2.CompletionResponse:
        if self._work_s:
            await asyncio.sleep(self._work_s)
        return orchestrator_pb2.CompletionResponse(
            request_id=request.request_id, answer="ok", cost=common_pb2.CostReport(cost_usd=0.0)
        )

    async def embed(self, request: orchestrator_pb2.EmbeddingsRequest) -> orchestrator_pb2.EmbeddingsResponse:
        return orchestrator_pb2.EmbeddingsResponse(request_id=request.request_id)

    async def close(self) -> None:
        pass


def batch_items(n: int) -> list[batch_pb2.BatchItem]:
    message = common_pb2.Message(role=common_pb2.ROLE_USER, content="q")
    return [
        batch_pb2.BatchItem(custom_id=f"i{i}", request=orchestrator_pb2.CompletionRequest(messages=[message]))
        for i in range(n)
    ]


def open_queue(backend: str, client: redis.Redis, settings: StackSettings, name: str) -> WorkQueue:
    if backend == "redis":
        return RedisStreamQueue(client, stream=f"costmesh:bench:batch:{name}")
    return KafkaQueue(KafkaOptions(f"127.0.0.1:{settings.kafka_port}", name, name))


async def one_run(
    backend: str, settings: StackSettings, n: int, consumers: int, concurrency: int, work_s: float
) -> float:
    """Items per minute from the submit to the last result recorded."""
    client = redis.Redis.from_url(settings.redis_url())
    name = f"costmesh-bench-{uuid.uuid4().hex[:12]}"
    queue = open_queue(backend, client, settings, name)
    store = JobStore(client, 600)
    api = BatchApi(store, queue)
    workers = [
        Consumer(queue, store, InstantExecutor(work_s), ConsumerSettings(f"c{i}", concurrency, 900_000, 3, 0.1, 1.0))
        for i in range(consumers)
    ]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        await queue.depth()  # connected (Kafka: topics created) before the clock starts
        started = time.perf_counter()
        status = await api.submit("bench", batch_items(n))
        for _ in range(12_000):  # 10 minutes at most
            if (await store.summary(status.batch_id, "bench")).finished_ms:
                return n / (time.perf_counter() - started) * 60
            await asyncio.sleep(0.05)
        raise TimeoutError(f"{n} items not done in 10 minutes")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for w in workers:
            await w.close()
        await queue.close()
        if backend == "redis":
            await client.delete(f"costmesh:bench:batch:{name}")
        await client.aclose()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="costmesh bench batch-queue", description=__doc__)
    parser.add_argument("--backend", choices=["redis", "kafka"], default="redis")
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--consumers", type=int, default=1, help="consumer loops (group members) in this process")
    parser.add_argument("--concurrency", type=int, default=4, help="items in flight per consumer (the default)")
    parser.add_argument("--work-ms", type=float, default=0.0, help="how long the fake executor takes an item")
    args = parser.parse_args(argv)
    settings = StackSettings(queue=args.backend)
    needed = ["redis", "kafka"] if args.backend == "kafka" else ["redis"]
    started = stack.up(settings, only=needed, say=lambda line: None)
    try:
        rates = []
        for run in range(args.runs):
            rate = asyncio.run(
                one_run(args.backend, settings, args.items, args.consumers, args.concurrency, args.work_ms / 1000)
            )
            rates.append(rate)
            emit({"backend": args.backend, "run": run + 1, "items": args.items, "items_per_min": round(rate)})
        emit(
            {
                "summary": True,
                "backend": args.backend,
                "items": args.items,
                "consumers": args.consumers,
                "concurrency": args.concurrency,
                "work_ms": args.work_ms,
                "median_items_per_min": round(statistics.median(rates)),
                "runs_items_per_min": [round(r) for r in rates],
            }
        )
    finally:
        if started:
            stack.down(settings, only=started, say=lambda line: None)
    return 0
