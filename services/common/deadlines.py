"""How long the caller still grants us; stages then take min(stage budget, that)."""

from __future__ import annotations

from typing import Any

import grpc


def remaining_s(context: grpc.aio.ServicerContext[Any, Any], default_s: float) -> float:
    """Seconds the caller still grants us; ``default_s`` when it set no deadline."""
    left = context.time_remaining()
    return default_s if left is None else min(default_s, left)
