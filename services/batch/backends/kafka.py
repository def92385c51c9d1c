"""The batch queue on Apache Kafka (aiokafka): one topic per priority, one consumer group.

Each consumer name is one group member (its own AIOKafkaConsumer), subscribed to the three priority topics;
claim() drains the high topic's assigned partitions first, then normal, then low. Offsets are committed
by hand, only after the item's result is recorded (ack), and per partition only up to the lowest offset
still in flight (offsets.py): items finish out of order with several in flight.

recover() and reclaim() return nothing, unlike Redis's pending lists, because Kafka redelivers by position:
- A restarted consumer starts where the group's committed offsets are, so whatever it had claimed and not
  acknowledged comes again through claim(). recover() makes the same true of a member that lives on in this
  process: it forgets what it had in flight and seeks back to the committed offsets.
- A consumer that died stops heartbeating; after the session timeout the group rebalances and its partitions
  go to the live members, which resume from the committed offsets. The dead consumer's items come again
  through claim() there, with no idle scan.
A member that loses a partition commits what it finished before giving it up and never commits it after, so
an item still running from a revoked partition can be run twice; the job store keeps the first result.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from services.batch.backends.base import PRIORITIES, Claimed, Priority, WorkItem
from services.batch.backends.offsets import OffsetBook
from services.common.errors import BackendUnavailable

TOPIC_PREFIX = "costmesh.batch"
GROUP = "batch-consumers"
TOPIC_EXISTS = 36  # the protocol's TOPIC_ALREADY_EXISTS error code
POLL_S = 0.02  # how often an empty claim() looks at the fetched buffer again
T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KafkaOptions:
    bootstrap: str
    topic_prefix: str = TOPIC_PREFIX
    group: str = GROUP
    partitions: int = 4  # per topic: how many consumers one priority can keep busy
    # A dead consumer's partitions move to a live one after this long without its heartbeat.
    session_timeout_ms: int = 10_000
    # A member that does not ask for more work this long is taken out of the group; an item may run for the
    # batch lane's whole request timeout while the consumer waits on it.
    max_poll_interval_ms: int = 1_800_000


async def _retried(call: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    """A call retried while Kafka says to try again: a fresh broker has no group coordinator for a few
    seconds (it creates its offsets topic on the first request for one)."""
    for _ in range(100):
        try:
            return await call(*args, **kwargs)
        except KafkaError as e:
            if not e.retriable:
                raise
            await asyncio.sleep(0.1)
    return await call(*args, **kwargs)


def receipt(tp: TopicPartition, offset: int) -> str:
    return f"{tp.topic}/{tp.partition}/{offset}"


def parse_receipt(value: str) -> tuple[TopicPartition, int]:
    topic, partition, offset = value.rsplit("/", 2)
    return TopicPartition(topic, int(partition)), int(offset)


class _Revocations(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka ships no type hints
    def __init__(self, member: _Member) -> None:
        self._member = member

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._member.give_up(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("batch consumer %s: assigned %s", self._member.name, sorted(assigned))


@dataclass
class _Member:
    name: str
    consumer: AIOKafkaConsumer
    book: OffsetBook[TopicPartition] = field(default_factory=OffsetBook)
    commit_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        """Commits, one commit at a time so an older point never lands after a newer one."""
        async with self.commit_lock:
            owned = {tp: o for tp, o in offsets.items() if tp in self.consumer.assignment()}
            if not owned:
                return
            try:
                await self.consumer.commit(owned)
            except (CommitFailedError, IllegalStateError) as e:
                # Rebalanced meanwhile: the partition's new owner resumes before this point and the job store
                # answers the redelivered items from their recorded results.
                log.warning("batch consumer %s: commit of %s not taken (%s)", self.name, owned, e)

    async def give_up(self, revoked: set[TopicPartition]) -> None:
        points = {tp: p for tp, p in self.book.commit_points().items() if tp in revoked}
        if points:
            await self.commit(points)
        self.book.forget(revoked)


class KafkaQueue:
    def __init__(self, options: KafkaOptions) -> None:
        self._options = options
        self._topics: dict[Priority, str] = {p: f"{options.topic_prefix}.{p}" for p in PRIORITIES}
        self._priority_of = {topic: p for p, topic in self._topics.items()}
        self._producer: AIOKafkaProducer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._probe: AIOKafkaConsumer | None = None  # no group: reads end offsets for depth()
        self._members: dict[str, _Member] = {}
        self._partitions: dict[str, int] = {}
        self._start_lock = asyncio.Lock()

    async def _started(self) -> AIOKafkaProducer:
        """Connects and creates the topics on first use (no client at construction: settings only). A start
        that fails closes what it opened, so the next call (the consumer loop retries every second) does
        not leave another set of clients behind; the broker not being there is UNAVAILABLE."""
        async with self._start_lock:
            if self._producer is not None:
                return self._producer
            opened: list[AIOKafkaAdminClient | AIOKafkaConsumer | AIOKafkaProducer] = []
            try:
                admin = AIOKafkaAdminClient(bootstrap_servers=self._options.bootstrap)
                opened.append(admin)
                await admin.start()
                partitions = await self._create_topics(admin)
                probe = AIOKafkaConsumer(bootstrap_servers=self._options.bootstrap, enable_auto_commit=False)
                opened.append(probe)
                await probe.start()
                producer = AIOKafkaProducer(bootstrap_servers=self._options.bootstrap, acks="all", linger_ms=5)
                opened.append(producer)
                await producer.start()
            except (KafkaError, OSError) as e:
                await _close_all(opened)
                raise BackendUnavailable(f"Kafka at {self._options.bootstrap}: {e.__class__.__name__}: {e}") from e
            except BaseException:
                await _close_all(opened)
                raise
            self._admin, self._probe, self._producer, self._partitions = admin, probe, producer, partitions
            return producer

    async def _create_topics(self, admin: AIOKafkaAdminClient) -> dict[str, int]:
        """Topic -> partitions, once every partition of the three topics has a leader."""
        wanted = [NewTopic(t, self._options.partitions, 1) for t in self._topics.values()]
        reply = await admin.create_topics(wanted)
        for topic, code, *_ in reply.topic_errors:
            if code not in (0, TOPIC_EXISTS):
                raise KafkaError(f"creating topic {topic}: error code {code}")
        # A partition just created has no leader for a moment; sends before then are refused and retried.
        # A fresh broker may describe a topic it just created with no partitions yet: not ready either.
        for _ in range(100):
            described = await admin.describe_topics(list(self._topics.values()))
            if all(t["partitions"] and all(p["leader"] >= 0 for p in t["partitions"]) for t in described):
                return {t["topic"]: len(t["partitions"]) for t in described}
            await asyncio.sleep(0.1)
        raise KafkaError("the batch topics have no partition leaders yet")

    async def _member(self, name: str) -> _Member:
        await self._started()
        member = self._members.get(name)
        if member is None:
            o = self._options
            consumer = AIOKafkaConsumer(
                bootstrap_servers=o.bootstrap,
                group_id=o.group,
                client_id=name,
                enable_auto_commit=False,
                auto_offset_reset="earliest",  # a new group starts at the first item ever queued
                session_timeout_ms=o.session_timeout_ms,
                heartbeat_interval_ms=max(o.session_timeout_ms // 3, 100),
                max_poll_interval_ms=o.max_poll_interval_ms,
            )
            member = _Member(name, consumer)
            consumer.subscribe(list(self._topics.values()), listener=_Revocations(member))
            await consumer.start()
            self._members[name] = member
        return member

    async def publish(self, items: list[WorkItem]) -> None:
        producer = await self._started()
        sent = []
        for item in items:
            topic = self._topics[item.priority]
            value = json.dumps({"batch": item.batch_id, "index": item.index}).encode()
            partition = item.index % self._partitions[topic]  # a batch spreads over every consumer
            sent.append(await producer.send(topic, value, partition=partition))
        await asyncio.gather(*sent)  # acknowledged by the broker before the submit returns

    async def claim(self, consumer: str, count: int, block_ms: int) -> list[Claimed]:
        member = await self._member(consumer)
        deadline = asyncio.get_running_loop().time() + block_ms / 1000
        while True:
            # The consumer fetches in the background; what it has buffered is served high, normal, low. A
            # blocking getmany() over every partition would hand out whatever priority arrived first.
            out: list[Claimed] = []
            assigned = member.consumer.assignment()
            for topic in self._topics.values():
                partitions = [tp for tp in assigned if tp.topic == topic]
                if partitions and len(out) < count:
                    got = await member.consumer.getmany(*partitions, timeout_ms=0, max_records=count - len(out))
                    out += self._claimed(member, got)
            if out or asyncio.get_running_loop().time() >= deadline:
                return out
            await asyncio.sleep(POLL_S)

    def _claimed(self, member: _Member, fetched: dict[TopicPartition, list[object]]) -> list[Claimed]:
        out = []
        for tp, records in sorted(fetched.items(), key=lambda kv: PRIORITIES.index(self._priority_of[kv[0].topic])):
            for record in records:
                offset: int = record.offset  # type: ignore[attr-defined]  # aiokafka's ConsumerRecord
                if not member.book.claimed(tp, offset):
                    continue  # fetched again after a seek while it still runs here
                fields = json.loads(record.value)  # type: ignore[attr-defined]
                item = WorkItem(fields["batch"], int(fields["index"]), self._priority_of[tp.topic])
                out.append(Claimed(receipt(tp, offset), item))
        return out

    async def recover(self, consumer: str, count: int) -> list[Claimed]:
        member = await self._member(consumer)
        assigned = set(member.consumer.assignment())
        member.book.forget(assigned)
        for tp in assigned:  # not seek_to_committed(): it leaves a partition with nothing committed alone
            offset = await member.consumer.committed(tp)
            if offset is None:
                await member.consumer.seek_to_beginning(tp)
            else:
                member.consumer.seek(tp, offset)
        return []  # the unacknowledged items come again through claim()

    async def reclaim(self, consumer: str, min_idle_ms: int, count: int) -> list[Claimed]:
        return []  # the group's rebalance hands a dead consumer's partitions over (module docstring)

    async def ack(self, claimed: Claimed) -> None:
        tp, offset = parse_receipt(claimed.receipt)
        for member in self._members.values():
            point = member.book.done(tp, offset)
            if point is not None:
                await member.commit({tp: point})

    async def depth(self) -> int:
        """Items queued and not yet committed by the group: end offsets minus committed offsets."""
        await self._started()
        assert self._admin is not None and self._probe is not None
        partitions = [TopicPartition(t, i) for t, n in self._partitions.items() for i in range(n)]
        committed = await _retried(self._admin.list_consumer_group_offsets, self._options.group, partitions=partitions)
        ends = await self._probe.end_offsets(partitions)
        starts = await self._probe.beginning_offsets(partitions)
        total = 0
        for tp in partitions:
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else starts[tp]
            total += max(ends[tp] - done, 0)
        return total

    async def close(self) -> None:
        for member in self._members.values():
            await member.consumer.stop()  # leaves the group: its partitions move at once
        self._members.clear()
        await _close_all([c for c in (self._producer, self._probe, self._admin) if c is not None])
        self._producer = self._probe = self._admin = None


async def _close_all(clients: list[AIOKafkaAdminClient | AIOKafkaConsumer | AIOKafkaProducer]) -> None:
    for client in reversed(clients):
        try:
            await (client.close() if isinstance(client, AIOKafkaAdminClient) else client.stop())
        except Exception as e:  # closing what failed to start: nothing more to do
            log.debug("closing %s: %s", client.__class__.__name__, e)
