from services.inference.breaker import CircuitBreaker, State


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_only() -> None:
    b = CircuitBreaker(failures=3, cooldown_s=30, clock=Clock())
    b.failed()
    b.failed()
    b.succeeded()  # a success resets the count
    b.failed()
    b.failed()
    assert b.allows() and b.state is State.CLOSED
    b.failed()
    assert b.state is State.OPEN
    assert not b.allows()


def test_one_trial_after_cooldown_then_closes_or_reopens() -> None:
    clock = Clock()
    b = CircuitBreaker(failures=1, cooldown_s=30, clock=clock)
    b.failed()
    clock.now = 29.9
    assert not b.allows()
    clock.now = 30
    assert b.allows()  # the trial
    assert b.state is State.HALF_OPEN
    assert not b.allows()  # only one trial at a time
    b.failed()
    assert b.state is State.OPEN
    clock.now = 59
    assert not b.allows()  # the cool-down restarted at the failed trial
    clock.now = 60
    assert b.allows()
    b.succeeded()
    assert b.state is State.CLOSED
    assert b.allows() and b.allows()


def test_a_trial_that_never_reports_back_is_written_off() -> None:
    clock = Clock()
    b = CircuitBreaker(failures=1, cooldown_s=30, clock=clock)
    b.failed()
    clock.now = 30
    assert b.allows()  # its caller is cancelled and never reports
    clock.now = 59
    assert not b.allows()
    clock.now = 60
    assert b.allows()
