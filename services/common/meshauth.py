"""The mesh's shared secret: only callers that carry it may call a stage service.

`costmesh up` generates the token once (launcher/secrets.py) and hands it to every component in
COSTMESH_MESH_TOKEN. Services check it in the common server interceptor; the orchestrator's public RPCs
accept an API key instead (services/orchestrator/auth.py). Health and reflection stay open.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable

MESH_TOKEN_KEY = "x-costmesh-mesh-token"  # gRPC metadata key (lower case, as gRPC requires)
MESH_TOKEN_ENV = "COSTMESH_MESH_TOKEN"
# The CompletionRequest.metadata entry naming the API key a batch item runs for: SubmitBatch sets it, the
# batch consumer carries it back with the mesh token, and the orchestrator applies that key's tiers and
# budget. A key's own requests cannot set it.
KEY_ID_ENTRY = "costmesh.key_id"


def mesh_token() -> str:
    """The token this process presents and expects; empty when the environment has none."""
    return os.environ.get(MESH_TOKEN_ENV, "")


def presented_token(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    for key, value in metadata or ():
        if key == MESH_TOKEN_KEY and isinstance(value, str):
            return value
    return ""


def is_mesh_call(metadata: Iterable[tuple[str, str | bytes]] | None, expected: str | None = None) -> bool:
    """True when the call carries the mesh token. No token configured means no call is trusted."""
    expected = mesh_token() if expected is None else expected
    if not expected:
        return False
    return hmac.compare_digest(presented_token(metadata).encode(), expected.encode())
