"""Deadline arithmetic: every downstream call gets min(stage budget, time the caller has left)."""

from __future__ import annotations

from typing import Any

import grpc

from services.common.errors import BudgetExceeded


def remaining_s(context: grpc.aio.ServicerContext[Any, Any], default_s: float) -> float:
    """Seconds the caller still grants us; ``default_s`` when it set no deadline."""
    left = context.time_remaining()
    return default_s if left is None else min(default_s, left)


def stage_timeout(budget_s: float, remaining: float) -> float:
    """The timeout for one stage; raises when the request has no time left at all."""
    if remaining <= 0:
        raise BudgetExceeded("the request's deadline has passed")
    return min(budget_s, remaining)
