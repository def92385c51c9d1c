"""Readiness probes: each answers "does this component serve right now?" within about a second."""

from __future__ import annotations

import socket

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc


def http_ok(url: str, timeout_s: float = 1.0) -> bool:
    try:
        return httpx.get(url, timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


def _resp(*parts: str) -> bytes:
    """One Redis command in RESP, so that no byte of an argument can end it early."""
    out = [f"*{len(parts)}\r\n".encode()]
    for part in parts:
        raw = part.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(out)


def redis_ping(port: int, password: str, timeout_s: float = 1.0) -> bool:
    """True when the Redis on ``port`` accepts ``password`` and answers PING."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
            sock.sendall(_resp("AUTH", password) + _resp("PING"))
            replies = b""
            while replies.count(b"\r\n") < 2:
                chunk = sock.recv(64)
                if not chunk:
                    break
                replies += chunk
            return replies.startswith(b"+OK\r\n+PONG\r\n")
    except OSError:
        return False


def grpc_serving(address: str, service: str = "", timeout_s: float = 1.0) -> bool:
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
