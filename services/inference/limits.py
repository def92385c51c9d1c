"""Per-lane, per-tier token buckets: requests and tokens per minute.

Real-time and batch traffic draw on separate buckets, so however much batch work is queued it can only
spend the batch lane's quota, never the real-time lane's. A request over its lane's limit is refused at
once with RESOURCE_EXHAUSTED and a retry-after hint; the batch consumer waits and retries.

Where the buckets live is a backend (`Buckets`): in this process (one replica), or in Redis
(limits_redis.py), so N inference replicas share one quota instead of each granting the full limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from services.common.errors import RateLimited

LANES = ("realtime", "batch")


@dataclass(frozen=True)
class LaneLimit:
    requests_per_minute: float
    tokens_per_minute: float


class TokenBucket:
    """Refills continuously at per_minute / 60 a second and holds up to `burst_s` seconds' worth: a lane
    that was idle can catch up by that much at once, no more."""

    def __init__(self, per_minute: float, clock: Callable[[], float], burst_s: float = 60.0) -> None:
        self._rate_per_s = per_minute / 60.0
        self.capacity = max(1.0, self._rate_per_s * burst_s)
        self._level = self.capacity
        self._clock = clock
        self._at = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._level = min(self.capacity, self._level + (now - self._at) * self._rate_per_s)
        self._at = now

    def wait_s(self, amount: float) -> float:
        """Seconds until `amount` is available (0: now). Amounts above capacity wait for a full bucket."""
        self._refill()
        needed = min(amount, self.capacity) - self._level
        return max(0.0, needed / self._rate_per_s)

    def take(self, amount: float) -> None:
        self._level -= min(amount, self.capacity)


class Buckets(Protocol):
    async def try_take(self, lane: str, tier: str, limit: LaneLimit, tokens: float) -> float:
        """Takes one request and `tokens` from the lane's buckets and returns 0, or takes nothing and returns
        the seconds until both would have room."""
        ...

    async def close(self) -> None: ...


class LocalBuckets:
    """The buckets in this process: right for one replica; N replicas would each grant the full limit."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, burst_s: float = 60.0) -> None:
        self._clock = clock
        self._burst_s = burst_s
        self._buckets: dict[tuple[str, str], tuple[TokenBucket, TokenBucket]] = {}

    async def try_take(self, lane: str, tier: str, limit: LaneLimit, tokens: float) -> float:
        return self.take_now(lane, tier, limit, tokens)

    def take_now(self, lane: str, tier: str, limit: LaneLimit, tokens: float) -> float:
        buckets = self._buckets.get((lane, tier))
        if buckets is None:
            buckets = (
                TokenBucket(limit.requests_per_minute, self._clock, self._burst_s),
                TokenBucket(limit.tokens_per_minute, self._clock, self._burst_s),
            )
            self._buckets[(lane, tier)] = buckets
        requests, token_bucket = buckets
        wait = max(requests.wait_s(1), token_bucket.wait_s(tokens))
        if wait == 0:
            requests.take(1)
            token_bucket.take(tokens)
        return wait

    async def close(self) -> None:
        pass


class LaneLimiter:
    def __init__(
        self,
        limits: dict[tuple[str, str], LaneLimit],
        clock: Callable[[], float] = time.monotonic,
        burst_s: float = 60.0,
        buckets: Buckets | None = None,
    ) -> None:
        self._limits = limits
        self._buckets = buckets or LocalBuckets(clock, burst_s)

    def limits(self, lane: str, tier: str) -> bool:
        return (lane, tier) in self._limits

    async def acquire(self, lane: str, tier: str, tokens: int) -> None:
        """Takes one request and `tokens` from the lane's buckets, or raises RateLimited taking nothing."""
        limit = self._limits.get((lane, tier))
        if limit is None:
            return  # no limit configured for this lane and tier
        wait = await self._buckets.try_take(lane, tier, limit, tokens)
        if wait > 0:
            message = f"{lane} lane is over its {tier}-tier rate limit; retry in {wait:.1f}s"
            raise RateLimited(message, retry_after_s=wait)  # sent as the `retry-after` trailer

    async def close(self) -> None:
        await self._buckets.close()
