"""The work queue behind the batch lane: a small Protocol, so a Kafka backend can drop in later.

Delivery is at least once: an entry stays pending until acknowledged, and entries whose consumer died
are reclaimed by another. Exactly-once *results* come from the job store (jobs.py), which records the
first result for an item and ignores any later one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class WorkItem:
    batch_id: str
    index: int


@dataclass(frozen=True)
class Claimed:
    receipt: str  # what ack() takes: a stream entry id (Redis), an offset (Kafka)
    item: WorkItem


class WorkQueue(Protocol):
    async def publish(self, items: list[WorkItem]) -> None: ...

    async def claim(self, consumer: str, count: int, block_ms: int) -> list[Claimed]:
        """New entries, waiting up to block_ms for some."""
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
