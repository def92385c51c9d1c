"""Who calls the batch lane's RPCs, and for which tenant. No grpc here.

- An application with an API key (`authorization: Bearer <key>`) that allows the batch lane
  (`keys create --allow-batch`): the tenant is the key's, never the request's, and the key id is stamped on
  every item so the consumer's calls pay that key's budget.
- A component of the mesh with the mesh token and no key (offline tools, benches): trusted with the tenant
  it names; its items pay no key.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.apikeys import KeyStore, Metadata, key_or_mesh, own_tenant
from services.common.errors import Forbidden


@dataclass(frozen=True)
class BatchCaller:
    tenant: str
    key_id: str  # "" for the mesh: no key's budget applies


class BatchGate:
    def __init__(self, keys: KeyStore | None) -> None:
        self._keys = keys  # None: API keys are off and only the mesh may call

    async def caller(self, metadata: Metadata, tenant: str) -> BatchCaller:
        """A key, when one is sent, decides (the gateway forwards its caller's key); else the mesh token."""
        policy = await key_or_mesh(self._keys, metadata)
        if policy is None:
            return BatchCaller(tenant, "")
        if not policy.allow_batch:
            raise Forbidden(f"API key {policy.key_id} may not use the batch lane (keys create --allow-batch)")
        return BatchCaller(own_tenant(policy, tenant), policy.key_id)

    async def close(self) -> None:
        if self._keys is not None:
            await self._keys.close()
