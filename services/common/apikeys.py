"""API keys: which tenant a caller is, and what that caller may spend and use. No grpc here.

A key is shown once, at creation, and stored only as its SHA-256 (the key carries 256 random bits, so a
fast hash is enough: there is nothing to brute-force). Redis layout:

  costmesh:apikey:<sha256>   hash  key_id, tenant, budget_usd_per_day, rpm, tiers, allow_batch, created_ms,
                                   revoked
  costmesh:apikey-ids        hash  key_id -> sha256 (listing, revoking and the batch lane's lookups by id)

Both the gateway and the orchestrator read keys on every request, so a revoked key stops at once.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis

from services.common.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from services.common.meshauth import is_mesh_call
from services.common.validation import check_tenant

Metadata = Iterable[tuple[str, str | bytes]]  # gRPC invocation metadata
KEY_PREFIX = "cmk-"
TIER_NAMES = ("small", "large")
_BY_HASH = "costmesh:apikey:"
_IDS = "costmesh:apikey-ids"


@dataclass(frozen=True)
class KeyPolicy:
    key_id: str  # public: safe to log and show; the secret part never leaves creation
    tenant: str
    budget_usd_per_day: float  # 0: no budget
    rpm: int  # requests per minute; 0: unlimited
    tiers: frozenset[str]  # of TIER_NAMES
    allow_batch: bool
    created_ms: int
    revoked: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "tenant": self.tenant,
            "budget_usd_per_day": self.budget_usd_per_day,
            "rpm": self.rpm,
            "tiers": sorted(self.tiers),
            "allow_batch": self.allow_batch,
            "created_ms": self.created_ms,
            "revoked": self.revoked,
        }


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def bearer(header: str) -> str:
    """The key from an `Authorization: Bearer <key>` value (the scheme is case-insensitive)."""
    scheme, _, token = header.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def authorization(metadata: Metadata) -> str:
    """The key in a call's `authorization: Bearer <key>` metadata; "" when none is sent."""
    for key, value in metadata:
        if key == "authorization" and isinstance(value, str):
            return bearer(value)
    return ""


async def key_or_mesh(keys: KeyStore | None, metadata: Metadata) -> KeyPolicy | None:
    """Who calls a public RPC (the orchestrator's, the batch lane's): the key's policy, or None for a mesh
    component that sent the mesh token and no key. A key, when sent, decides: the gateway forwards its
    caller's key over a mesh channel, and that call must be the key's, not the mesh's."""
    items = list(metadata)
    key = authorization(items)
    if not key and is_mesh_call(items):
        return None
    if keys is None:
        raise Unauthenticated("API keys are not configured here; only the mesh may call")
    return await keys.authenticate(key)


def own_tenant(policy: KeyPolicy | None, tenant: str) -> str:
    """The tenant a call acts for: the key's. A different tenant in the request is refused, not ignored;
    the mesh (no policy) names its own."""
    if policy is None:
        return tenant
    if tenant and tenant != policy.tenant:
        raise Forbidden(f"tenant {tenant!r} in the request differs from the API key's tenant")
    return policy.tenant


def parse_tiers(text: str) -> frozenset[str]:
    tiers = frozenset(t.strip() for t in text.split(",") if t.strip())
    unknown = sorted(tiers - set(TIER_NAMES))
    if unknown or not tiers:
        raise InvalidInput(f"tiers must be a non-empty subset of {','.join(TIER_NAMES)}; got {text!r}")
    return tiers


def _policy(fields: dict[bytes, bytes]) -> KeyPolicy:
    f = {k.decode(): v.decode() for k, v in fields.items()}
    return KeyPolicy(
        key_id=f["key_id"],
        tenant=f["tenant"],
        budget_usd_per_day=float(f["budget_usd_per_day"]),
        rpm=int(f["rpm"]),
        tiers=frozenset(t for t in f["tiers"].split(",") if t),
        allow_batch=f["allow_batch"] == "1",
        created_ms=int(f["created_ms"]),
        revoked=f.get("revoked") == "1",
    )


class KeyStore:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    @classmethod
    def from_url(cls, url: str) -> KeyStore:
        return cls(redis.Redis.from_url(url))

    @property
    def client(self) -> redis.Redis:
        return self._redis

    async def create(
        self,
        tenant: str,
        budget_usd_per_day: float = 0.0,
        rpm: int = 0,
        tiers: frozenset[str] = frozenset(TIER_NAMES),
        allow_batch: bool = False,
    ) -> tuple[str, KeyPolicy]:
        """A new key for the tenant: (the key, shown once; its policy)."""
        check_tenant(tenant)
        if not budget_usd_per_day >= 0:  # also refuses NaN
            raise InvalidInput("budget_usd_per_day must be >= 0 (0: no budget)")
        if rpm < 0:
            raise InvalidInput("rpm must be >= 0 (0: unlimited)")
        parse_tiers(",".join(tiers))
        key_id = secrets.token_hex(6)
        key = f"{KEY_PREFIX}{key_id}-{secrets.token_urlsafe(32)}"
        policy = KeyPolicy(key_id, tenant, budget_usd_per_day, rpm, tiers, allow_batch, int(time.time() * 1000))
        fields = {
            "key_id": key_id,
            "tenant": tenant,
            "budget_usd_per_day": repr(budget_usd_per_day),
            "rpm": str(rpm),
            "tiers": ",".join(sorted(tiers)),
            "allow_batch": "1" if allow_batch else "0",
            "created_ms": str(policy.created_ms),
            "revoked": "0",
        }
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(_BY_HASH + digest(key), mapping=fields)
            pipe.hset(_IDS, key_id, digest(key))
            await pipe.execute()
        return key, policy

    async def lookup(self, key: str) -> KeyPolicy | None:
        """The key's policy; None for an unknown or revoked key."""
        if not key.startswith(KEY_PREFIX):
            return None  # not ours: no Redis round trip for garbage
        fields = await self._redis.hgetall(_BY_HASH + digest(key))  # type: ignore[misc]
        if not fields:
            return None
        policy = _policy(fields)
        return None if policy.revoked else policy

    async def authenticate(self, key: str) -> KeyPolicy:
        if not key:
            raise Unauthenticated("missing API key: send `Authorization: Bearer <key>` (costmesh keys create)")
        policy = await self.lookup(key)
        if policy is None:
            raise Unauthenticated("invalid or revoked API key")
        return policy

    async def by_id(self, key_id: str) -> KeyPolicy | None:
        hashed = await self._redis.hget(_IDS, key_id)  # type: ignore[misc]
        if hashed is None:
            return None
        fields = await self._redis.hgetall(_BY_HASH + hashed.decode())  # type: ignore[misc]
        return _policy(fields) if fields else None

    async def list(self) -> list[KeyPolicy]:
        ids = await self._redis.hgetall(_IDS)  # type: ignore[misc]
        policies = []
        for hashed in ids.values():
            fields = await self._redis.hgetall(_BY_HASH + hashed.decode())  # type: ignore[misc]
            if fields:
                policies.append(_policy(fields))
        return sorted(policies, key=lambda p: p.created_ms)

    async def revoke(self, key_id: str) -> KeyPolicy:
        hashed = await self._redis.hget(_IDS, key_id)  # type: ignore[misc]
        if hashed is None:
            raise NotFound(f"no key {key_id!r}")
        await self._redis.hset(_BY_HASH + hashed.decode(), "revoked", "1")  # type: ignore[misc]
        policy = await self.by_id(key_id)
        assert policy is not None
        return policy

    async def close(self) -> None:
        await self._redis.aclose()
