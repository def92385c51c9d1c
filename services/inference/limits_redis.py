"""The lane buckets in Redis: every inference replica draws on one quota.

One Lua script refills and takes from a lane's request and token buckets at once, on Redis's clock
(TIME), so replicas whose clocks differ still agree and two replicas can never both spend the last
token. Both keys carry the same hash tag, so the script also runs on a Redis Cluster.

If Redis cannot be reached or refuses the script (OOM, READONLY after a failover), the replica falls back
to its own in-process buckets (logged once per outage, every such check counted) rather than refusing
every request: a quota that is briefly per replica is safer than an outage of the real-time lane. Redis is
asked again RETRY_S later, so a black-holed Redis does not add its timeout to every call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis.asyncio as redis
from redis.exceptions import RedisError

from services.inference.limits import LaneLimit, LocalBuckets

log = logging.getLogger(__name__)
PREFIX = "costmesh:limits:"
RETRY_S = 1.0  # after a failure, the local buckets decide this long before Redis is asked again

# KEYS: request bucket, token bucket. ARGV: requests/s, request capacity, tokens/s, token capacity, tokens.
# Each bucket is a hash {level, at}; a missing one is full. Returns the wait in seconds as a string (a Lua
# number would come back truncated to an integer), "0" when it took.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function level(key, rate, cap)
  local v = redis.call('HMGET', key, 'level', 'at')
  if not v[1] then return cap end
  return math.min(cap, tonumber(v[1]) + math.max(0, now - tonumber(v[2])) * rate)
end
local rr, rc, tr, tc = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local want = math.min(tonumber(ARGV[5]), tc)
local lr, lt = level(KEYS[1], rr, rc), level(KEYS[2], tr, tc)
local wait = math.max(0, (1 - lr) / rr, (want - lt) / tr)
if wait > 0 then return tostring(wait) end
redis.call('HSET', KEYS[1], 'level', tostring(lr - 1), 'at', tostring(now))
redis.call('HSET', KEYS[2], 'level', tostring(lt - want), 'at', tostring(now))
-- an untouched bucket refills to full within cap / rate seconds; after that the key is not needed
redis.call('PEXPIRE', KEYS[1], math.ceil(rc / rr * 1000) + 1000)
redis.call('PEXPIRE', KEYS[2], math.ceil(tc / tr * 1000) + 1000)
return '0'
"""


class RedisBuckets:
    def __init__(self, client: redis.Redis, burst_s: float, on_fallback: Callable[[], None] = lambda: None) -> None:
        self._redis = client
        self._burst_s = burst_s
        self._take = client.register_script(_TAKE)
        self._fallback = LocalBuckets(burst_s=burst_s)
        self._on_fallback = on_fallback  # counts the checks the in-process buckets decided (a metric)
        self._retry_at = 0.0  # monotonic time before which Redis is not asked again (0: it answered last)

    @classmethod
    def from_url(
        cls, url: str, burst_s: float, on_fallback: Callable[[], None] = lambda: None, timeout_s: float = 0.25
    ) -> RedisBuckets:
        # A short timeout: a slow Redis must not hold a request longer than the local fallback would.
        client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        return cls(client, burst_s, on_fallback)

    async def try_take(self, lane: str, tier: str, limit: LaneLimit, tokens: float) -> float:
        rate_r, rate_t = limit.requests_per_minute / 60.0, limit.tokens_per_minute / 60.0
        # The same capacities as TokenBucket's: burst_s seconds' worth, at least one.
        cap_r, cap_t = max(1.0, rate_r * self._burst_s), max(1.0, rate_t * self._burst_s)
        tag = f"{{{lane}:{tier}}}"
        keys = [f"{PREFIX}{tag}:requests", f"{PREFIX}{tag}:tokens"]
        if time.monotonic() < self._retry_at:  # Redis failed just now: do not add its timeout to every call
            self._on_fallback()
            return self._fallback.take_now(lane, tier, limit, tokens)
        try:
            reply = await self._take(keys=keys, args=[rate_r, cap_r, rate_t, cap_t, tokens])
        except (RedisError, OSError) as e:
            # Unreachable, or refusing (OOM, READONLY after a failover, BUSY): either way this replica's own
            # buckets decide for RETRY_S, and the warning is logged once per outage, not once per call.
            self._on_fallback()
            if not self._retry_at:
                log.warning("lane limits: Redis failed (%s); this replica's own buckets decide", e)
            self._retry_at = time.monotonic() + RETRY_S
            return self._fallback.take_now(lane, tier, limit, tokens)
        if self._retry_at:
            log.info("lane limits: Redis answers again; the shared buckets decide")
            self._retry_at = 0.0
        return float(reply)

    async def close(self) -> None:
        await self._redis.aclose()
