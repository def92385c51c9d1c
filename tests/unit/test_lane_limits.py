import pytest

from services.common.errors import RateLimited
from services.inference.limits import LaneLimit, LaneLimiter, TokenBucket
from services.inference.settings import InferenceSettings


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bucket_refills_continuously_up_to_a_minutes_worth() -> None:
    clock = Clock()
    bucket = TokenBucket(60, clock)  # one per second
    bucket.take(60)
    assert bucket.wait_s(1) == pytest.approx(1.0)
    clock.now = 30
    assert bucket.wait_s(30) == 0
    clock.now = 1000
    assert bucket.wait_s(61) == 0  # capped at capacity: a huge request waits for a full bucket, not forever


async def test_batch_flood_never_spends_the_realtime_quota() -> None:
    clock = Clock()
    limiter = LaneLimiter(
        {("batch", "large"): LaneLimit(2, 10_000), ("realtime", "large"): LaneLimit(100, 100_000)}, clock
    )
    await limiter.acquire("batch", "large", 100)
    await limiter.acquire("batch", "large", 100)
    with pytest.raises(RateLimited, match=r"batch lane is over its large-tier rate limit; retry in 30\.0s"):
        await limiter.acquire("batch", "large", 100)
    for _ in range(50):  # real time is untouched by the exhausted batch lane
        await limiter.acquire("realtime", "large", 1000)
    await limiter.acquire("batch", "small", 10**9)  # no row: not limited


async def test_token_limit_applies_too_and_a_refusal_takes_nothing() -> None:
    clock = Clock()
    limiter = LaneLimiter({("batch", "small"): LaneLimit(100, 600)}, clock)
    await limiter.acquire("batch", "small", 500)
    with pytest.raises(RateLimited):
        await limiter.acquire("batch", "small", 200)
    await limiter.acquire("batch", "small", 100)  # the refused request consumed nothing


def test_lane_limits_from_settings() -> None:
    settings = InferenceSettings(lane_limits={"batch": {"large": {"requests_per_minute": 5, "tokens_per_minute": 50}}})
    assert settings.lane_limit_table() == {("batch", "large"): (5, 50)}
    assert ("batch", "small") in InferenceSettings().lane_limit_table()  # the default batch quota
    with pytest.raises(ValueError, match="unknown lane"):
        InferenceSettings(lane_limits={"bulk": {}}).lane_limit_table()


async def test_burst_is_bounded_by_burst_seconds() -> None:
    clock = Clock()
    limiter = LaneLimiter({("batch", "small"): LaneLimit(60, 10**6)}, clock, burst_s=5)
    for _ in range(5):  # five seconds' worth at one a second
        await limiter.acquire("batch", "small", 1)
    with pytest.raises(RateLimited):
        await limiter.acquire("batch", "small", 1)
    clock.now = 1.0
    await limiter.acquire("batch", "small", 1)
