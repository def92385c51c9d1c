"""Domain errors and the one table that maps them to gRPC status codes.

Core code raises these; the error interceptor (interceptors.py) turns them into statuses, so servicers
never call ``set_code`` by hand. A store that cannot be reached (Redis, a socket) is UNAVAILABLE; anything
else becomes INTERNAL with a generic message.
"""

from __future__ import annotations

from typing import Any

import grpc
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# Trailing metadata a refused call carries (the interceptor sends them, the mesh's clients read them).
RETRY_AFTER = "retry-after"  # seconds until a rate limit has room again
LIMIT = "x-costmesh-limit"  # which limit refused the call: "budget", "rpm"; absent for refilling quotas
SPENT_USD = "x-costmesh-spent-usd"  # what a failed request's answered model calls cost


class CostmeshError(Exception):
    """Base of every error a costmesh service reports to its caller on purpose."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL


class InvalidInput(CostmeshError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(CostmeshError):
    code = grpc.StatusCode.NOT_FOUND


class MissingConfig(CostmeshError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class BackendUnavailable(CostmeshError):
    code = grpc.StatusCode.UNAVAILABLE


class Unauthenticated(CostmeshError):
    code = grpc.StatusCode.UNAUTHENTICATED


class Forbidden(CostmeshError):
    code = grpc.StatusCode.PERMISSION_DENIED


class RateLimited(CostmeshError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str, retry_after_s: float = 0.0, limit: str = "") -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s  # sent as `retry-after` trailing metadata when > 0
        self.limit = limit  # which limit ("budget", "rpm"), sent as `x-costmesh-limit`; "" for quotas that refill


class BudgetExceeded(CostmeshError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


INTERNAL_MESSAGE = "internal error; see the service log"


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The gRPC status and message a caller sees for ``exc``."""
    if isinstance(exc, CostmeshError):
        return exc.code, str(exc) or exc.__class__.__name__
    if isinstance(exc, TimeoutError):
        return grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded"
    if isinstance(exc, ConnectionError | RedisConnectionError | RedisTimeoutError):
        # A store the service needs (Redis, most often) is not reachable: worth a retry, not a bug here.
        return grpc.StatusCode.UNAVAILABLE, f"a store this service needs is unreachable: {exc.__class__.__name__}"
    return grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE


def trailer(exc: grpc.aio.AioRpcError, key: str) -> str:
    """A trailing-metadata value the peer sent with its status ("" when it sent none)."""
    sent: Any = exc.trailing_metadata() or ()
    for name, value in sent:
        if name == key and isinstance(value, str):
            return value
    return ""


def trailer_number(exc: grpc.aio.AioRpcError, key: str) -> float:
    """A non-negative number sent as a trailer (retry-after seconds, dollars spent); 0 when absent or garbled."""
    try:
        return max(0.0, float(trailer(exc, key) or 0))
    except ValueError:
        return 0.0
