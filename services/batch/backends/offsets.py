"""Which offset a Kafka consumer may commit when items finish out of order. Pure: no broker, no client.

A committed offset says "everything before this is done": after a crash or a rebalance the group resumes
there. With several items in flight a later one often finishes first, so a partition's commit point is
its lowest offset still in flight; when none is, the offset after the highest one claimed. Offsets that
are done above a gap wait until the gap closes, and are redelivered if the consumer dies first (the job
store's first-result-wins recording makes that harmless).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

P = TypeVar("P", bound=Hashable)  # a partition (aiokafka's TopicPartition; anything hashable in tests)


def commit_point(in_flight: set[int], claimed_up_to: int) -> int:
    """The offset to commit: the lowest still in flight, else the one after the highest claimed."""
    return min(in_flight) if in_flight else claimed_up_to


@dataclass
class _Partition:
    in_flight: set[int] = field(default_factory=set)
    claimed_up_to: int = 0  # the highest offset claimed + 1
    committed: int = 0  # the last commit point handed out


@dataclass
class OffsetBook(Generic[P]):
    """In-flight offsets per assigned partition. A partition is forgotten when it is revoked, so an item
    of a partition this consumer no longer owns never moves the group's offset."""

    _parts: dict[P, _Partition] = field(default_factory=dict)

    def claimed(self, partition: P, offset: int) -> bool:
        """Records a fetched offset; False if it is already in flight here (fetched again after a seek)."""
        # The first offset claimed is where the group resumed: committing it again would be no progress.
        part = self._parts.setdefault(partition, _Partition(committed=offset))
        if offset in part.in_flight:
            return False
        part.in_flight.add(offset)
        part.claimed_up_to = max(part.claimed_up_to, offset + 1)
        return True

    def done(self, partition: P, offset: int) -> int | None:
        """Marks an offset done; the partition's new commit point if it moved forward, else None."""
        part = self._parts.get(partition)
        if part is None or offset not in part.in_flight:
            return None  # revoked meanwhile, or acknowledged twice
        part.in_flight.discard(offset)
        point = commit_point(part.in_flight, part.claimed_up_to)
        if point <= part.committed:
            return None
        part.committed = point
        return point

    def commit_points(self) -> dict[P, int]:
        """Every partition's commit point (what to commit before giving partitions up)."""
        return {p: commit_point(part.in_flight, part.claimed_up_to) for p, part in self._parts.items()}

    def forget(self, partitions: set[P]) -> None:
        for partition in partitions:
            self._parts.pop(partition, None)
