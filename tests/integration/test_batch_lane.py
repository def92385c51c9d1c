"""The batch lane's queue, job store and consumer against real Redis and a real Kafka broker (both started
by the launcher, as `costmesh up` does), with an in-process executor. Every test runs on both queues.

The end-to-end path through the running mesh, the real consumer process and vLLM is in
tests/e2e/test_batch.py; here the executor is a fake so crashes can be placed exactly.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

import pytest
import redis.asyncio as redis

from costmesh.v1 import batch_pb2, common_pb2, orchestrator_pb2
from launcher.settings import StackSettings
from services.batch.api import BatchApi
from services.batch.backends.base import Claimed, WorkItem, WorkQueue
from services.batch.backends.kafka import KafkaOptions, KafkaQueue
from services.batch.backends.redis_streams import RedisStreamQueue
from services.batch.consumer import Consumer, ConsumerSettings
from services.batch.executor import ItemFailed
from services.batch.jobs import JobStore, UnknownBatch
from services.common.errors import InvalidInput
from tests import stack

Lane = tuple[JobStore, WorkQueue, BatchApi]
KAFKA_SESSION_MS = 2000  # a killed consumer's partitions move after this long (broker minimum: 1000)


class FakeExecutor:
    """Answers 'answer: <question>'; can hang on a question (to crash mid-item) or fail it."""

    def __init__(self, hang_on: str = "", fail_on: str = "", busy_times: int = 0) -> None:
        self.calls: list[str] = []
        self.hang_on = hang_on
        self.fail_on = fail_on
        self.busy_times = busy_times

    async def complete(self, request: orchestrator_pb2.CompletionRequest) -> orchestrator_pb2.CompletionResponse:
        question = request.messages[-1].content
        self.calls.append(question)
        assert request.tenant == "acme"
        if question == self.hang_on:
            await asyncio.Event().wait()
        if question == self.fail_on:
            raise ItemFailed("INVALID_ARGUMENT", "the model refused this one", retryable=False)
        if self.busy_times:
            self.busy_times -= 1
            raise ItemFailed("RESOURCE_EXHAUSTED", "batch lane is over its limit", retryable=True)
        return orchestrator_pb2.CompletionResponse(
            request_id=request.request_id,
            answer=f"answer: {question}",
            cost=common_pb2.CostReport(cost_usd=0.001, baseline_cost_usd=0.01),
        )

    async def embed(self, request: orchestrator_pb2.EmbeddingsRequest) -> orchestrator_pb2.EmbeddingsResponse:
        """One vector per input, [len(text), 1.0]; priced like the completions, per input."""
        self.calls.extend(request.input)
        assert request.tenant == "acme"
        n = len(request.input)
        return orchestrator_pb2.EmbeddingsResponse(
            request_id=request.request_id,
            data=[common_pb2.Embedding(values=[float(len(t)), 1.0], model="fake") for t in request.input],
            cost=common_pb2.CostReport(cost_usd=0.001 * n, baseline_cost_usd=0.001 * n),
        )

    async def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """Only Redis (the job store, and one of the queues): the executor is a fake, so no model server."""
    settings = StackSettings()
    started = stack.start(settings, ["redis"])
    yield settings.redis_url()
    stack.stop(settings, started)


@pytest.fixture(scope="module")
def kafka_bootstrap() -> Iterator[str]:
    """The Kafka broker `costmesh up` starts with COSTMESH_STACK_QUEUE=kafka, by the same launcher."""
    settings = StackSettings(queue="kafka")
    started = stack.start(settings, ["kafka"])
    yield f"127.0.0.1:{settings.kafka_port}"
    stack.stop(settings, started)


@dataclass(frozen=True)
class QueueSpec:
    """Where one test's queue lives: its own stream (Redis) or its own topics and group (Kafka)."""

    backend: str
    redis_url: str
    name: str  # the stream key, or the topic prefix and the group
    bootstrap: str = ""

    def open(self, client: redis.Redis) -> WorkQueue:
        if self.backend == "redis":
            return RedisStreamQueue(client, stream=self.name)
        options = KafkaOptions(self.bootstrap, self.name, self.name, session_timeout_ms=KAFKA_SESSION_MS)
        return KafkaQueue(options)


@pytest.fixture(params=["redis", "kafka"])
def queue_spec(request: pytest.FixtureRequest, redis_url: str) -> QueueSpec:
    name = f"costmesh-test-batch-{uuid.uuid4().hex}"
    if request.param == "redis":
        return QueueSpec("redis", redis_url, name)
    return QueueSpec("kafka", redis_url, name, request.getfixturevalue("kafka_bootstrap"))


@pytest.fixture
async def lane(queue_spec: QueueSpec) -> AsyncIterator[Lane]:
    client = redis.Redis.from_url(queue_spec.redis_url)
    store, queue = JobStore(client, 600), queue_spec.open(client)
    yield store, queue, BatchApi(store, queue)
    if queue_spec.backend == "redis":
        await client.delete(*(f"{queue_spec.name}{suffix}" for suffix in ("", ":high", ":low")))
    else:
        await queue.close()
    await client.aclose()


# A consumer in a process of its own: claims `count` entries, says how many, and waits to be killed.
CLAIMER = """
import asyncio, json, os, sys
import redis.asyncio as redis
from tests.integration.test_batch_lane import QueueSpec

async def main() -> None:
    spec = QueueSpec(**json.loads(os.environ["QUEUE_SPEC"]))
    queue = spec.open(redis.Redis.from_url(spec.redis_url))
    claimed = []
    while len(claimed) < int(sys.argv[1]):
        claimed += await queue.claim("dead-consumer", int(sys.argv[1]) - len(claimed), block_ms=500)
    print(len(claimed), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def claim_then_die(spec: QueueSpec, count: int) -> int:
    """Another consumer process claims entries and is killed (SIGKILL) before acknowledging any."""
    env = {**os.environ, "QUEUE_SPEC": json.dumps(spec.__dict__)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLAIMER, str(count), env=env, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    return int(line or 0)


def settings(name: str = "c1", reclaim_idle_ms: int = 600_000) -> ConsumerSettings:
    return ConsumerSettings(name, 3, reclaim_idle_ms, max_attempts=5, retry_base_s=0.01, retry_max_s=0.05)


def chat_line(custom_id: str, question: str) -> str:
    body = {"model": "m", "messages": [{"role": "user", "content": question}], "max_tokens": 8}
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body})


def items(n: int) -> list[batch_pb2.BatchItem]:
    return [batch_pb2.BatchItem(openai_line=chat_line(f"q{i}", f"question {i}")) for i in range(n)]


async def wait_until(condition: Callable[[], Awaitable[bool]], timeout_s: float = 60) -> None:
    for _ in range(int(timeout_s / 0.05)):
        if await condition():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("condition not reached")


async def drain(consumer: Consumer, store: JobStore, batch_id: str) -> None:
    task = asyncio.create_task(consumer.run())

    async def finished() -> bool:
        return bool((await store.summary(batch_id, "acme")).finished_ms)

    try:
        await wait_until(finished)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await consumer.close()


async def all_results(api: BatchApi, batch_id: str) -> list[batch_pb2.BatchResult]:
    return [r async for r in api.results("acme", batch_id)]


async def test_submit_drain_and_stream_with_per_line_errors(lane: Lane) -> None:
    store, queue, api = lane
    batch = [
        *items(4),
        batch_pb2.BatchItem(openai_line="{this is not json"),
        batch_pb2.BatchItem(openai_line=chat_line("bad-role", "x").replace('"user"', '"robot"')),
    ]
    status = await api.submit("acme", batch)
    assert status.total == 6 and status.failed == 2  # bad lines fail at once, alone
    assert status.state == batch_pb2.BATCH_STATE_RUNNING
    executor = FakeExecutor(fail_on="question 3")
    await drain(Consumer(queue, store, executor, settings()), store, status.batch_id)
    final = await api.status("acme", status.batch_id)
    assert (final.succeeded, final.failed, final.cancelled) == (3, 3, 0)
    assert final.state == batch_pb2.BATCH_STATE_COMPLETED
    assert final.cost_usd == pytest.approx(0.003) and final.baseline_cost_usd == pytest.approx(0.03)
    results = {r.index: r for r in await all_results(api, status.batch_id)}
    assert sorted(results) == list(range(6))
    assert results[0].response.answer == "answer: question 0" and results[0].custom_id == "q0"
    assert results[3].error.code == "INVALID_ARGUMENT" and "refused" in results[3].error.message
    assert "not JSON" in results[4].error.message
    assert results[5].custom_id == "bad-role" and "role must be one of" in results[5].error.message
    assert await queue.depth() == 0


def embeddings_line(custom_id: str, texts: object) -> str:
    body = {"model": "text-embedding-3-small", "input": texts}
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/embeddings", "body": body})


async def test_embedding_lines_are_embedded_priced_and_a_bad_one_fails_alone(lane: Lane) -> None:
    store, queue, api = lane
    batch = [
        batch_pb2.BatchItem(openai_line=embeddings_line("e0", ["alpha", "beta gamma"])),
        batch_pb2.BatchItem(openai_line=embeddings_line("e1", "one text")),
        batch_pb2.BatchItem(openai_line=embeddings_line("empty", [])),
        batch_pb2.BatchItem(openai_line=embeddings_line("blank", ["ok", ""])),
    ]
    status = await api.submit("acme", batch, endpoint="/v1/embeddings")
    assert status.total == 4 and status.failed == 2
    executor = FakeExecutor()
    await drain(Consumer(queue, store, executor, settings()), store, status.batch_id)
    final = await api.status("acme", status.batch_id)
    assert (final.succeeded, final.failed) == (2, 2)
    assert final.cost_usd == pytest.approx(0.003)  # three inputs embedded
    results = {r.custom_id: r for r in await all_results(api, status.batch_id)}
    assert [list(e.values) for e in results["e0"].embeddings.data] == [[5.0, 1.0], [10.0, 1.0]]
    assert [list(e.values) for e in results["e1"].embeddings.data] == [[8.0, 1.0]]
    assert results["empty"].error.code == "INVALID_ARGUMENT"
    assert results["blank"].error.code == "INVALID_ARGUMENT"
    assert sorted(executor.calls) == ["alpha", "beta gamma", "one text"]


async def test_a_line_for_another_endpoint_fails_alone(lane: Lane) -> None:
    store, queue, api = lane
    batch = [
        batch_pb2.BatchItem(openai_line=embeddings_line("e0", "text")),
        batch_pb2.BatchItem(openai_line=chat_line("c0", "a question")),
    ]
    status = await api.submit("acme", batch, endpoint="/v1/embeddings")
    assert status.failed == 1
    await drain(Consumer(queue, store, FakeExecutor(), settings()), store, status.batch_id)
    results = {r.custom_id: r for r in await all_results(api, status.batch_id)}
    assert results["e0"].HasField("embeddings")
    assert "differs from the batch's endpoint" in results["c0"].error.message


async def test_consumer_killed_mid_job_restarts_and_answers_each_item_exactly_once(
    lane: Lane,
) -> None:
    store, queue, api = lane
    status = await api.submit("acme", items(6))
    crashing = FakeExecutor(hang_on="question 1")
    task = asyncio.create_task(Consumer(queue, store, crashing, settings()).run())

    async def three_done() -> bool:
        return (await store.summary(status.batch_id, "acme")).done >= 3

    await wait_until(three_done)
    task.cancel()  # the crash: item 1 is claimed, unanswered, unacknowledged
    await asyncio.gather(task, return_exceptions=True)
    # An item answered and recorded just before the crash, but never acknowledged, must not run again.
    await store.record(
        status.batch_id,
        batch_pb2.BatchResult(
            custom_id="q5", index=5, response=orchestrator_pb2.CompletionResponse(answer="answered before the crash")
        ),
    )
    restarted = FakeExecutor()
    await drain(Consumer(queue, store, restarted, settings()), store, status.batch_id)
    results = await all_results(api, status.batch_id)
    assert sorted(r.index for r in results) == list(range(6))  # every item, once
    assert "question 1" in restarted.calls  # the pending item was recovered
    assert "question 5" not in restarted.calls or "question 5" not in crashing.calls
    final = await api.status("acme", status.batch_id)
    assert final.succeeded == 6 and final.failed == 0


async def test_entries_of_a_dead_consumer_are_reclaimed_by_another(lane: Lane, queue_spec: QueueSpec) -> None:
    store, queue, api = lane
    status = await api.submit("acme", items(2))
    assert await claim_then_die(queue_spec, 2) == 2  # claimed, then the process vanished
    await asyncio.sleep(0.2)
    # Redis: c2 takes the entries over once they are idle for 100 ms. Kafka: the group drops the dead member
    # after its session timeout and c2 gets its partitions, from the offsets it never committed.
    other = FakeExecutor()
    await drain(Consumer(queue, store, other, settings("c2", reclaim_idle_ms=100)), store, status.batch_id)
    assert sorted(other.calls) == ["question 0", "question 1"]
    assert len(await all_results(api, status.batch_id)) == 2


async def test_rate_limited_items_wait_and_retry(lane: Lane) -> None:
    store, queue, api = lane
    status = await api.submit("acme", items(1))
    executor = FakeExecutor(busy_times=3)
    await drain(Consumer(queue, store, executor, settings()), store, status.batch_id)
    assert len(executor.calls) == 4
    assert (await api.status("acme", status.batch_id)).succeeded == 1


async def test_an_item_rate_limited_past_its_attempt_cap_fails_with_its_last_status(
    lane: Lane,
) -> None:
    store, queue, api = lane
    status = await api.submit("acme", items(1))
    executor = FakeExecutor(busy_times=100)
    await drain(Consumer(queue, store, executor, settings()), store, status.batch_id)
    assert len(executor.calls) == 5  # max_attempts, not without limit
    (result,) = await all_results(api, status.batch_id)
    assert result.error.code == "RESOURCE_EXHAUSTED"


async def test_cancel_marks_what_is_left_and_the_consumer_skips_it(
    lane: Lane,
) -> None:
    store, queue, api = lane
    status = await api.submit("acme", items(3))
    cancelled = await api.cancel("acme", status.batch_id)
    assert cancelled.cancelled == 3 and cancelled.state == batch_pb2.BATCH_STATE_CANCELLED
    executor = FakeExecutor()
    task = asyncio.create_task(Consumer(queue, store, executor, settings()).run())

    async def drained() -> bool:
        return await queue.depth() == 0

    await wait_until(drained)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert executor.calls == []
    assert {r.error.code for r in await all_results(api, status.batch_id)} == {"CANCELLED"}


async def test_another_tenant_cannot_see_a_batch(lane: Lane) -> None:
    _, _, api = lane
    status = await api.submit("acme", items(1))
    with pytest.raises(UnknownBatch):
        await api.status("intruder", status.batch_id)
    with pytest.raises(UnknownBatch):
        await api.status("acme", "batch_" + "0" * 32)
    # Ids that would name another Redis key (the queue, the batch's items hash) never reach one.
    for malformed in ("queue", f"{status.batch_id}:items", "", "batch_does_not_exist"):
        with pytest.raises(InvalidInput, match="not a batch id"):
            await api.status("acme", malformed)
    assert (await api.recent("acme", 1))[0].batch_id == status.batch_id  # newest first


async def test_higher_priorities_are_claimed_first(lane: Lane) -> None:
    _, queue, _ = lane
    await queue.publish([WorkItem("warm-up", 0)])  # the consumer joins (Kafka: gets its partitions) first
    warm: list[Claimed] = []
    while not warm:
        warm = await queue.claim("c1", 10, block_ms=500)
    await queue.ack(warm[0])
    waiting = [WorkItem("b", i, priority) for priority in ("low", "normal", "high") for i in range(3)]
    await queue.publish(waiting)
    await asyncio.sleep(0.5)  # every entry is there (Kafka: fetched into the consumer's buffer)
    claimed = await queue.claim("c1", 9, block_ms=500)
    assert [c.item.priority for c in claimed] == ["high"] * 3 + ["normal"] * 3 + ["low"] * 3
    assert sorted(c.item.index for c in claimed if c.item.priority == "low") == [0, 1, 2]
    for c in claimed:
        await queue.ack(c)
    assert await queue.depth() == 0


async def test_a_claim_woken_by_items_of_every_priority_returns_no_more_than_asked(lane: Lane) -> None:
    _, queue, _ = lane
    await queue.publish([WorkItem("warm-up", 0)])
    warm: list[Claimed] = []
    while not warm:
        warm = await queue.claim("c1", 10, block_ms=500)
    await queue.ack(warm[0])
    # A claim blocked on an empty queue, then one publish filling all three priorities at once (Redis: one
    # MULTI, so the blocked read wakes to entries in three streams, and COUNT is per stream).
    blocked = asyncio.create_task(queue.claim("c1", 1, block_ms=5000))
    await asyncio.sleep(0.3)
    await queue.publish([WorkItem("w", i, priority) for i, priority in enumerate(("low", "normal", "high"))])
    got = await blocked
    assert len(got) <= 1  # the consumer's concurrency is what it asked for
    for _ in range(20):
        if len(got) == 3:
            break
        more = await queue.claim("c1", 1, block_ms=500)
        assert len(more) <= 1
        got += more
    assert sorted(c.item.index for c in got) == [0, 1, 2]  # none lost, none twice
    for c in got:
        await queue.ack(c)
    assert await queue.depth() == 0


async def test_redis_a_blocking_read_over_three_streams_keeps_the_extra_for_later(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The race: entries land in all three streams after claim()'s non-blocking reads found none, so the
    # blocking read returns at once with COUNT entries from each. The empty non-blocking reads are staged.
    name = f"costmesh-test-batch-{uuid.uuid4().hex}"
    client = redis.Redis.from_url(redis_url)
    queue = RedisStreamQueue(client, stream=name)
    try:
        await queue.publish([WorkItem("w", i, p) for i, p in enumerate(("low", "normal", "high"))])

        async def nothing_yet(*_: object) -> list[Claimed]:
            return []

        with monkeypatch.context() as staged:
            staged.setattr(queue, "_read", nothing_yet)
            got = await queue.claim("c1", 1, block_ms=1000)
        assert len(got) == 1  # not three: the consumer runs what it asked for
        rest = await queue.claim("c1", 5, block_ms=100)
        assert sorted(c.item.index for c in got + rest) == [0, 1, 2]
        for c in got + rest:
            await queue.ack(c)
        assert await queue.depth() == 0
    finally:
        await client.delete(*(f"{name}{suffix}" for suffix in ("", ":high", ":low")))
        await client.aclose()
