"""The batch consumer: drains the queue, runs each item, records its result once, then acknowledges.

Crash safety: an entry is acknowledged only after its result is recorded, so a consumer killed mid-item
leaves it pending. On restart the consumer first re-reads its own pending entries; entries of a consumer
that never comes back are reclaimed by another after `reclaim_idle_ms` (on Kafka both come back through
claim(), from the group's committed offsets). An item that already has a result
(recorded just before a crash) is acknowledged without running again, and the job store keeps only the
first result, so every item is answered exactly once in the results.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass

from costmesh.v1 import batch_pb2
from services.batch.api import error_result
from services.batch.backends.base import Claimed, WorkQueue
from services.batch.executor import Executor, ItemFailed
from services.batch.jobs import JobStore
from services.common.retry import retry_delay

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConsumerSettings:
    name: str
    concurrency: int
    reclaim_idle_ms: int
    max_attempts: int  # runs of one item, rate-limited ones included; then it fails with its last status
    retry_base_s: float
    retry_max_s: float


class Consumer:
    def __init__(self, queue: WorkQueue, store: JobStore, executor: Executor, settings: ConsumerSettings) -> None:
        self._queue = queue
        self._store = store
        self._executor = executor
        self._settings = settings
        self._running: dict[str, asyncio.Task[None]] = {}
        self._failing = False
        self.processed = 0  # results this consumer wrote (for tests and metrics)

    def consuming(self) -> bool:
        """False while the queue cannot be read (Redis down, say): the service's health is NOT_SERVING then."""
        return not self._failing

    async def run(self) -> None:
        recovered = False
        while True:
            try:
                if not recovered:
                    await self._start(await self._queue.recover(self._settings.name, 10_000))
                    recovered = True
                await self._step()
                self._failing = False
            except asyncio.CancelledError:
                raise
            except Exception:
                self._failing = True
                log.exception("batch queue unreachable; retrying in 1s")
                await asyncio.sleep(1.0)

    async def _step(self) -> None:
        s = self._settings
        free = s.concurrency - len(self._running)
        if free <= 0:
            await asyncio.wait(self._running.values(), return_when=asyncio.FIRST_COMPLETED)
            return
        reclaimed = [
            c for c in await self._queue.reclaim(s.name, s.reclaim_idle_ms, free) if c.receipt not in self._running
        ]
        await self._start(reclaimed or await self._queue.claim(s.name, free, block_ms=1000))

    async def _start(self, claimed: list[Claimed]) -> None:
        for c in claimed:
            if c.receipt in self._running:
                continue  # delivered again while it runs here (a Kafka rebalance): its run acknowledges it
            task = asyncio.create_task(self._handle(c))
            self._running[c.receipt] = task
            task.add_done_callback(functools.partial(self._finished, c.receipt))

    def _finished(self, receipt: str, _: asyncio.Task[None]) -> None:
        self._running.pop(receipt, None)

    async def _handle(self, claimed: Claimed) -> None:
        batch_id, index = claimed.item.batch_id, claimed.item.index
        try:
            result = await self._result_for(batch_id, index)
            if result is not None and await self._store.record(batch_id, result):
                self.processed += 1
            await self._queue.ack(claimed)
        except asyncio.CancelledError:
            raise  # shutdown: the entry stays pending and is recovered on restart
        except Exception:
            # Redis unreachable, say: leave the entry pending; recovery or reclaim retries it.
            log.exception("batch %s item %d: not recorded; left pending", batch_id, index)

    async def _result_for(self, batch_id: str, index: int) -> batch_pb2.BatchResult | None:
        """None when there is nothing to run: the batch is gone, or the item already has its result."""
        if await self._store.has_result(batch_id, index):
            return None
        item = await self._store.item(batch_id, index)
        if item is None:
            return None  # expired or deleted batch
        if await self._store.cancel_requested(batch_id):
            return error_result(index, item.custom_id, "CANCELLED", "batch cancelled")
        return await self._run(batch_id, index, item)

    async def _run(self, batch_id: str, index: int, item: batch_pb2.BatchItem) -> batch_pb2.BatchResult:
        """The item's answer or error, retrying what is worth retrying; stops early if the batch is cancelled."""
        s = self._settings
        attempt = 0
        wasted = 0.0  # what failed attempts spent on model calls: in the result, so in the job's cost
        while True:
            attempt += 1
            try:
                return await self._attempt(index, item, wasted)
            except ItemFailed as e:
                wasted += e.spent_usd
                # Every attempt counts, rate limits included: after max_attempts the item fails with its last
                # status instead of retrying without end.
                if not e.retryable or attempt >= s.max_attempts:
                    result = error_result(index, item.custom_id, e.code, e.message)
                    result.failed_attempts_cost_usd = wasted
                    return result
                # A rate-limited item waits until its lane's token bucket has room (retry-after), not 0.5 s.
                delay = retry_delay(e.retry_after_s, attempt, s.retry_base_s, s.retry_max_s)
                log.debug("batch %s item %d: %s; retrying in %.1fs", batch_id, index, e.code, delay)
                await asyncio.sleep(delay)
                if await self._store.cancel_requested(batch_id):
                    return error_result(index, item.custom_id, "CANCELLED", "batch cancelled")

    async def _attempt(self, index: int, item: batch_pb2.BatchItem, wasted: float) -> batch_pb2.BatchResult:
        result = batch_pb2.BatchResult(custom_id=item.custom_id, index=index, failed_attempts_cost_usd=wasted)
        if item.WhichOneof("body") == "embeddings":
            result.embeddings.CopyFrom(await self._executor.embed(item.embeddings))
        else:
            result.response.CopyFrom(await self._executor.complete(item.request))
        return result

    async def close(self) -> None:
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
