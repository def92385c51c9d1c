"""Per-key budgets and request rates, enforced in Redis before any model call. No grpc here.

A request first *reserves* its worst-case cost (what it would cost if every call it may make used every
token it may use); one Lua script checks the key's requests this minute and dollars today and adds the
reservation, atomically, so concurrent requests cannot all pass on the same stale total (the LiteLLM
budget bugs this design answers: spend past max_budget, counters read then written). After the request,
its reservation is *settled* to the actual cost. Because every admitted request holds its worst case,
the day's spend stays under the budget; it can pass it only by what a request's real token counts
exceed the estimate (RESERVE_MARGIN covers tokenizers that split text finer than o200k).

  costmesh:spend:<key_id>:<yyyymmdd>   float  dollars spent or reserved that UTC day (kept 2 days)
  costmesh:rpm:<key_id>:<epoch minute> int    requests admitted that minute (kept 2 minutes)
"""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass

import redis.asyncio as redis

from services.common.apikeys import KeyPolicy
from services.common.errors import RateLimited

# The tiers' own tokenizers (SmolLM2's, Qwen's) split text into more tokens than o200k, which the
# estimate counts with; prompts are reserved at this multiple so the estimate stays a bound.
RESERVE_MARGIN = 1.5
DAY_S = 86_400
_SPEND = "costmesh:spend:"
_RPM = "costmesh:rpm:"

# KEYS: spend counter, rpm counter. ARGV: amount, budget (<= 0: none), rpm (<= 0: none), spend ttl, rpm ttl.
# Returns {outcome, value}: ("ok", spend after), ("rpm", requests this minute), ("budget", spend before).
_RESERVE = """
local amount = tonumber(ARGV[1])
local budget = tonumber(ARGV[2])
local rpm = tonumber(ARGV[3])
if rpm > 0 then
  local used = tonumber(redis.call('GET', KEYS[2]) or '0')
  if used >= rpm then return {'rpm', tostring(used)} end
end
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
if budget > 0 and spent + amount > budget then return {'budget', tostring(spent)} end
if rpm > 0 then
  redis.call('INCR', KEYS[2])
  redis.call('EXPIRE', KEYS[2], ARGV[5])
end
local now = redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return {'ok', now}
"""


@dataclass
class ModelSpend:
    """What one request's model calls have cost so far. The servicer starts one per request; the stage
    clients add each answered call's cost (stage tasks copy the context, so they share this object). Used
    when the request fails: it settles to what was spent, not to its whole reservation or to nothing."""

    usd: float = 0.0
    # A model call was cut off (cancelled, or past its deadline) while it may have been generating: what
    # it cost is unknown, so the request keeps its whole reservation.
    uncertain: bool = False


_SPEND_OF_REQUEST: contextvars.ContextVar[ModelSpend | None] = contextvars.ContextVar("model_spend", default=None)


def track_model_spend() -> ModelSpend:
    spend = ModelSpend()
    _SPEND_OF_REQUEST.set(spend)
    return spend


def model_spend() -> ModelSpend | None:
    """The current request's tracker; None outside a request (warm-up, spot-checks after the answer)."""
    return _SPEND_OF_REQUEST.get()


@dataclass(frozen=True)
class Reservation:
    key_id: str
    counter: str  # the spend counter of the day the reservation was made (settled there, even after midnight)
    usd: float


def _day(now: float) -> str:
    return time.strftime("%Y%m%d", time.gmtime(now))


class SpendLedger:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._reserve = client.register_script(_RESERVE)

    async def reserve(self, policy: KeyPolicy, usd: float, now: float | None = None) -> Reservation:
        """Holds `usd` against the key's daily budget and counts the request against its rate, or raises
        RateLimited naming the limit, with the seconds until it resets."""
        now = time.time() if now is None else now
        counter = f"{_SPEND}{policy.key_id}:{_day(now)}"
        window = f"{_RPM}{policy.key_id}:{int(now // 60)}"
        outcome, value = await self._reserve(
            keys=[counter, window],
            args=[repr(usd), repr(policy.budget_usd_per_day), policy.rpm, 2 * DAY_S, 120],
        )
        outcome = outcome.decode() if isinstance(outcome, bytes) else str(outcome)
        value = float(value.decode() if isinstance(value, bytes) else value)
        if outcome == "rpm":
            raise RateLimited(
                f"key {policy.key_id} is over its rate limit of {policy.rpm} requests per minute",
                retry_after_s=max(1.0, 60 - now % 60),
                limit="rpm",
            )
        if outcome == "budget":
            raise RateLimited(
                f"key {policy.key_id} is over its budget of ${policy.budget_usd_per_day:g} per day: "
                f"${value:.6f} spent or reserved today, and this request may cost up to ${usd:.6f}",
                retry_after_s=max(1.0, DAY_S - now % DAY_S),
                limit="budget",
            )
        return Reservation(policy.key_id, counter, usd)

    async def settle(self, reservation: Reservation, actual_usd: float) -> None:
        """Replaces the reservation by what the request cost (0 for a request that made no model call)."""
        delta = actual_usd - reservation.usd
        if delta:
            await self._redis.incrbyfloat(reservation.counter, delta)

    async def spent_today(self, key_id: str, now: float | None = None) -> float:
        now = time.time() if now is None else now
        value = await self._redis.get(f"{_SPEND}{key_id}:{_day(now)}")
        return float(value) if value else 0.0

    async def close(self) -> None:
        await self._redis.aclose()
