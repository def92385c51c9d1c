"""Input checks shared by every service that takes a tenant."""

from __future__ import annotations

import re

from services.common.errors import InvalidInput

# Tenants become Redis key prefixes and Weaviate tenant names, so they keep to a safe alphabet.
TENANT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def check_tenant(tenant: str) -> str:
    if not TENANT_PATTERN.match(tenant):
        raise InvalidInput(
            f"tenant {tenant!r} is invalid: use 1-64 letters, digits, '_' or '-', starting with a letter or digit"
        )
    return tenant
