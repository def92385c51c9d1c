"""The work queue behind the batch lane: a small Protocol, with Redis Streams and Kafka behind it
(registry.py picks one by COSTMESH_BATCH_QUEUE).

Delivery is at least once: an entry stays pending until acknowledged, and entries whose consumer died
are reclaimed by another (Kafka: redelivered from the group's committed offsets; kafka.py says how).
Items carry a priority; claim() serves higher ones first. Exactly-once *results* come from the job store
(jobs.py), which records the first result for an item and ignores any later one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Priority = Literal["high", "normal", "low"]
PRIORITIES: tuple[Priority, ...] = ("high", "normal", "low")  # the order claim() serves them in


@dataclass(frozen=True)
class WorkItem:
    batch_id: str
    index: int
    priority: Priority = "normal"


@dataclass(frozen=True)
class Claimed:
    receipt: str  # what ack() takes, unique per entry: a stream entry id (Redis), topic/partition/offset (Kafka)
    item: WorkItem


class WorkQueue(Protocol):
    async def publish(self, items: list[WorkItem]) -> None: ...

    async def claim(self, consumer: str, count: int, block_ms: int) -> list[Claimed]:
        """New entries, higher priorities first, waiting up to block_ms for some."""
        ...

    async def recover(self, consumer: str, count: int) -> list[Claimed]:
        """Entries this consumer claimed before and never acknowledged: read once, after a restart."""
        ...

    async def reclaim(self, consumer: str, min_idle_ms: int, count: int) -> list[Claimed]:
        """Entries other consumers claimed and left unacknowledged for min_idle_ms (they died)."""
        ...

    async def ack(self, claimed: Claimed) -> None: ...

    async def depth(self) -> int:
        """Entries published and not yet acknowledged."""
        ...

    async def close(self) -> None: ...
