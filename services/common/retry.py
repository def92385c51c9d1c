"""How long to wait before trying a throttled or failed call again: the server's retry-after when it sent
one, else exponential backoff, capped, with jitter so callers throttled together do not return together."""

from __future__ import annotations

import random


def retry_delay(retry_after_s: float, attempt: int, base_s: float, max_s: float) -> float:
    """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
    backoff: float = min(max_s, base_s * 2.0 ** max(0, attempt - 1))
    floor = max(retry_after_s, backoff)
    return floor * random.uniform(1.0, 1.25)  # jitter, not security
