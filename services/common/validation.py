"""Input checks shared by the services: tenants, and the cache controls a request carries."""

from __future__ import annotations

import re

from costmesh.v1 import common_pb2
from services.common.errors import InvalidInput

# Tenants become Redis key prefixes and Weaviate tenant names, so they keep to a safe alphabet.
TENANT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def check_tenant(tenant: str) -> str:
    if not TENANT_PATTERN.match(tenant):
        raise InvalidInput(
            f"tenant {tenant!r} is invalid: use 1-64 letters, digits, '_' or '-', starting with a letter or digit"
        )
    return tenant


def check_cache_control(c: common_pb2.CacheControl, prefix: str = "") -> None:
    """Ages and TTLs >= 0, the semantic cut-offs within [0, 1] (NaN fails too)."""
    if c.max_age_s < 0 or c.ttl_s < 0:
        raise InvalidInput(f"{prefix}max_age_s and {prefix}ttl_s must be >= 0")
    for name in ("similarity_threshold", "verifier_threshold"):
        if c.HasField(name) and not 0.0 <= getattr(c, name) <= 1.0:
            raise InvalidInput(f"{prefix}{name} must be within [0, 1], got {getattr(c, name)}")
