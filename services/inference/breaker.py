"""A small circuit breaker, so a dead backend costs one failed call per cool-down, not one per request."""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class State(StrEnum):
    CLOSED = "closed"  # calls go through
    OPEN = "open"  # calls skip the backend until the cool-down ends
    HALF_OPEN = "half_open"  # one trial call is out; its outcome closes or re-opens the circuit


class CircuitBreaker:
    def __init__(self, failures: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._threshold = failures
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_out = False
        self._trial_at = 0.0

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return State.CLOSED
        return State.HALF_OPEN if self._trial_out else State.OPEN

    def allows(self) -> bool:
        """Whether to call the backend now. After the cool-down, lets one trial call through; a trial whose
        outcome never came back (its caller was cancelled) is written off after another cool-down."""
        if self._opened_at is None:
            return True
        now = self._clock()
        waiting_since = self._trial_at if self._trial_out else self._opened_at
        if now - waiting_since < self._cooldown_s:
            return False
        self._trial_out, self._trial_at = True, now
        return True

    def succeeded(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_out = False

    def failed(self) -> None:
        self._failures += 1
        if self._trial_out or self._failures >= self._threshold:
            self._opened_at = self._clock()
        self._trial_out = False
