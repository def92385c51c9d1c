"""Errors in OpenAI's JSON shape, with the HTTP status OpenAI's SDKs map to their exception classes
(400 BadRequestError, 401 AuthenticationError, 403 PermissionDeniedError, 404 NotFoundError, 413, 429
RateLimitError, 503/504 InternalServerError). Never a stack trace: anything unexpected is a 500 with a
generic message, and the log has the details."""

from __future__ import annotations

from typing import Any

import grpc

from services.common.errors import RETRY_AFTER, trailer

# gRPC status -> (HTTP status, OpenAI error type)
STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: (400, "invalid_request_error"),
    grpc.StatusCode.FAILED_PRECONDITION: (400, "invalid_request_error"),
    grpc.StatusCode.OUT_OF_RANGE: (400, "invalid_request_error"),
    grpc.StatusCode.UNAUTHENTICATED: (401, "authentication_error"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "permission_error"),
    grpc.StatusCode.NOT_FOUND: (404, "not_found_error"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "rate_limit_error"),
    grpc.StatusCode.UNAVAILABLE: (503, "server_error"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "timeout_error"),
    grpc.StatusCode.CANCELLED: (499, "request_cancelled"),
}
TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error"}
TYPES |= {405: "invalid_request_error", 413: "invalid_request_error", 429: "rate_limit_error"}


class ApiError(Exception):
    """An answer to send as OpenAI's {"error": {...}} with its HTTP status (and headers, e.g. retry-after)."""

    def __init__(
        self,
        status: int,
        message: str,
        kind: str | None = None,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind or TYPES.get(status, "server_error")
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


def from_grpc(exc: grpc.aio.AioRpcError) -> ApiError:
    status, kind = STATUS.get(exc.code(), (500, "server_error"))
    message = exc.details() or exc.code().name
    if status == 500:
        message = "internal error in the mesh; see the orchestrator's log"
    headers = {}
    if retry_after := trailer(exc, RETRY_AFTER):
        headers["retry-after"] = retry_after
    elif status == 429:
        headers["retry-after"] = "1"
    code = exc.code().name.lower()
    return ApiError(status, message, kind, code=code, headers=headers)
