"""Who is calling and what they may do: API key or mesh token -> tenant, tiers, lane, budget. No grpc here.

Two kinds of caller reach the orchestrator:
- an application with an API key (`authorization: Bearer <key>`): the tenant is the key's, never the
  request's; the key decides the tiers it may use, and its budget and rate are reserved before the model
  call (spend.py); whether it may submit batches is the batch service's check (services/batch/callers.py);
- a component of the mesh with the mesh token (the batch consumer, the gateway's internal calls, offline
  benches): trusted with the tenant it names. The batch consumer names the key that submitted the batch
  in the request's metadata (KEY_ID_ENTRY), so the batch lane pays that key's budget under its tiers.
"""

from __future__ import annotations

from collections.abc import Awaitable

from costmesh.v1 import common_pb2, orchestrator_pb2
from services.common.apikeys import KeyPolicy, KeyStore, Metadata, key_or_mesh, own_tenant
from services.common.contracts import TIER_NAMES
from services.common.errors import CostmeshError, Forbidden, Unauthenticated
from services.common.meshauth import KEY_ID_ENTRY
from services.orchestrator.quote import PriceBook
from services.orchestrator.spend import Reservation, SpendLedger

Admissible = orchestrator_pb2.CompletionRequest | orchestrator_pb2.EmbeddingsRequest


def restrict_tier(policy: KeyPolicy, request: orchestrator_pb2.CompletionRequest) -> None:
    """A tier set by the request must be one the key may use; a key with one tier gets that tier."""
    if request.tier in TIER_NAMES:
        if TIER_NAMES[request.tier] not in policy.tiers:
            raise Forbidden(f"API key {policy.key_id} may not use the {TIER_NAMES[request.tier]} tier")
        return
    if policy.tiers == {"small"}:
        request.tier = common_pb2.TIER_SMALL  # routed without the large tier: no route to it, no escalation
    elif policy.tiers == {"large"}:
        request.tier = common_pb2.TIER_LARGE


class Gatekeeper:
    def __init__(self, keys: KeyStore | None, ledger: SpendLedger | None, prices: PriceBook) -> None:
        self._keys = keys  # None: API keys are off and only the mesh may call
        self._ledger = ledger
        self._prices = prices

    async def admit(
        self, metadata: Metadata, request: orchestrator_pb2.CompletionRequest
    ) -> tuple[orchestrator_pb2.CompletionRequest, Reservation | None]:
        """The request as the caller may run it, and what it holds of the key's budget."""
        admitted = orchestrator_pb2.CompletionRequest()
        admitted.CopyFrom(request)
        policy = await self._caller(metadata, admitted)
        if policy is None:
            return admitted, None
        admitted.tenant = own_tenant(policy, admitted.tenant)
        restrict_tier(policy, admitted)
        return admitted, await self.reserve(policy, admitted)

    async def admit_embeddings(
        self, metadata: Metadata, request: orchestrator_pb2.EmbeddingsRequest
    ) -> tuple[orchestrator_pb2.EmbeddingsRequest, Reservation | None]:
        """As admit(): the key's tenant, and the worst case of the embedding call held against its budget."""
        admitted = orchestrator_pb2.EmbeddingsRequest()
        admitted.CopyFrom(request)
        policy = await self._caller(metadata, admitted)
        if policy is None:
            return admitted, None
        admitted.tenant = own_tenant(policy, admitted.tenant)
        if self._ledger is None:
            return admitted, None
        usd = await self._priced(policy, self._prices.worst_case_embedding_usd(admitted))
        return admitted, await self._ledger.reserve(policy, usd)

    async def _caller(self, metadata: Metadata, request: Admissible) -> KeyPolicy | None:
        """The caller's key policy (None: the mesh, acting for no key). An API key's caller may not claim the
        batch lane or name another key; the mesh's batch items pay the key that submitted them."""
        policy = await key_or_mesh(self._keys, metadata)
        if policy is None:
            return await self._batch_key(request)
        request.metadata.pop(KEY_ID_ENTRY, None)
        if request.lane == common_pb2.LANE_BATCH:
            raise Forbidden("LANE_BATCH is the batch lane's own; submit a batch to use it")
        return policy

    async def _batch_key(self, request: Admissible) -> KeyPolicy | None:
        key_id = request.metadata.get(KEY_ID_ENTRY, "")
        if not key_id:
            return None
        if self._keys is None:
            raise Unauthenticated("the batch names an API key, but API keys are not configured here")
        policy = await self._keys.by_id(key_id)
        if policy is None or policy.revoked:
            raise Unauthenticated(f"API key {key_id} that submitted the batch is revoked")
        return policy

    async def reserve(self, policy: KeyPolicy, request: orchestrator_pb2.CompletionRequest) -> Reservation | None:
        """Every key's requests are reserved and settled, so `costmesh keys list` shows each key's spend."""
        if self._ledger is None:
            return None
        return await self._ledger.reserve(policy, await self._priced(policy, self._prices.worst_case_usd(request)))

    async def _priced(self, policy: KeyPolicy, quote: Awaitable[float]) -> float:
        try:
            return await quote
        except CostmeshError:
            if policy.budget_usd_per_day:
                raise  # a budget cannot be checked without prices: refuse (UNAVAILABLE), never overspend
            return 0.0  # no budget to protect: an exact cache hit is still served while inference is down

    async def settle(self, reservation: Reservation | None, actual_usd: float) -> None:
        if reservation is not None and self._ledger is not None:
            await self._ledger.settle(reservation, actual_usd)

    async def close(self) -> None:
        if self._keys is not None:
            await self._keys.close()  # the ledger shares the keys' client
