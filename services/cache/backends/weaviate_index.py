"""Semantic tier in Weaviate: one collection with native multi-tenancy, vectors supplied by us.

Each costmesh tenant is a Weaviate tenant, so a lookup can only ever search that tenant's shard:
isolation does not depend on a filter being remembered.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import urlparse

import weaviate
from weaviate.auth import Auth
from weaviate.classes.config import Configure, DataType, Property, VectorDistances
from weaviate.classes.data import DataObject
from weaviate.classes.query import Filter, MetadataQuery, Sort
from weaviate.collections.classes.tenants import Tenant

from services.cache.backends.base import SemanticEntry
from services.cache.domain import CachedAnswer, SemanticMatch

log = logging.getLogger(__name__)
COLLECTION = "CostmeshCacheV2"  # bump with the schema: an old collection is left alone


class WeaviateSemanticIndex:
    def __init__(self, client: weaviate.WeaviateAsyncClient) -> None:
        self._client = client

    @classmethod
    async def connect(cls, url: str, grpc_port: int, api_key: str = "") -> WeaviateSemanticIndex:
        """A client for the Weaviate at ``url``; with ``api_key`` it authenticates (REST and gRPC alike)."""
        parsed = urlparse(url)
        client = weaviate.use_async_with_custom(
            http_host=parsed.hostname or "127.0.0.1",
            http_port=parsed.port or 8080,
            http_secure=parsed.scheme == "https",
            grpc_host=parsed.hostname or "127.0.0.1",
            grpc_port=grpc_port,
            grpc_secure=parsed.scheme == "https",
            skip_init_checks=True,  # the service starts degraded when Weaviate is down; health reports it
            auth_credentials=Auth.api_key(api_key) if api_key else None,
        )
        index = cls(client)
        try:
            await index._ensure_ready()
        except Exception as exc:  # fail open: the semantic tier is retried on the next health check
            log.warning("weaviate not ready at %s: %s", url, exc)
        return index

    async def _ensure_ready(self) -> None:
        if not self._client.is_connected():
            await self._client.connect()
        if await self._client.collections.exists(COLLECTION):
            return
        await self._client.collections.create(
            COLLECTION,
            multi_tenancy_config=Configure.multi_tenancy(
                enabled=True, auto_tenant_creation=True, auto_tenant_activation=True
            ),
            vector_config=Configure.Vectors.self_provided(
                vector_index_config=Configure.VectorIndex.hnsw(distance_metric=VectorDistances.COSINE)
            ),
            properties=[
                Property(name="key", data_type=DataType.TEXT),
                Property(name="context", data_type=DataType.TEXT),
                Property(name="query", data_type=DataType.TEXT),
                Property(name="payload", data_type=DataType.TEXT, skip_vectorization=True),
                Property(name="created_unix_s", data_type=DataType.INT),
                Property(name="expires_unix_s", data_type=DataType.INT),
            ],
        )

    async def nearest(
        self, tenant: str, context: str, vector: list[float], limit: int, now_unix_s: int
    ) -> list[SemanticMatch]:
        collection = self._client.collections.use(COLLECTION).with_tenant(tenant)
        try:
            result = await collection.query.near_vector(
                near_vector=vector,
                limit=limit,
                filters=Filter.by_property("context").equal(context)
                & Filter.by_property("expires_unix_s").greater_than(now_unix_s),
                return_metadata=MetadataQuery(distance=True),
            )
        except weaviate.exceptions.WeaviateQueryError as exc:
            if "tenant not found" in str(exc).lower():
                return []  # nothing stored for this tenant yet
            raise
        matches = []
        for obj in result.objects:
            distance = obj.metadata.distance if obj.metadata.distance is not None else 2.0
            matches.append(
                SemanticMatch(
                    CachedAnswer.from_json(str(obj.properties["payload"])),
                    1.0 - float(distance),  # cosine distance -> similarity
                    str(obj.properties.get("query") or ""),
                    str(obj.properties.get("key") or ""),
                )
            )
        return matches

    async def add(self, tenant: str, entry: SemanticEntry) -> None:
        await self.add_many(tenant, [entry])

    async def add_many(self, tenant: str, entries: list[SemanticEntry]) -> None:
        """Stores entries; batch inserts upsert by id, so re-storing a key overwrites its entry."""
        collection = self._client.collections.use(COLLECTION).with_tenant(tenant)
        objects = [
            DataObject(
                properties=_properties(e),
                vector=e.vector,
                uuid=weaviate.util.generate_uuid5(json.dumps([tenant, e.key])),
            )
            for e in entries
        ]
        result = await collection.data.insert_many(objects)
        if result.has_errors:
            raise RuntimeError(f"weaviate insert failed: {next(iter(result.errors.values())).message}")

    async def invalidate(self, tenant: str, key: str | None, older_than_unix_s: int | None) -> int:
        base = self._client.collections.use(COLLECTION)
        existing = await base.tenants.get_by_names([tenant])
        if tenant not in existing:
            return 0
        if key is None and older_than_unix_s is None:
            count = await self._count(tenant)
            await base.tenants.remove([Tenant(name=tenant)])
            return count
        where = (
            Filter.by_property("key").equal(key)
            if key is not None
            else Filter.by_property("created_unix_s").less_than(older_than_unix_s)
        )
        result = await base.with_tenant(tenant).data.delete_many(where=where)
        return int(result.successful)

    async def sweep(self, now_unix_s: int, max_entries_per_tenant: int) -> tuple[int, int]:
        base = self._client.collections.use(COLLECTION)
        removed = left = 0
        for tenant in await base.tenants.get():
            collection = base.with_tenant(tenant)
            expired = await collection.data.delete_many(
                where=Filter.by_property("expires_unix_s").less_or_equal(now_unix_s)
            )
            removed += int(expired.successful)
            count = await self._count(tenant)
            excess = count - max_entries_per_tenant
            if max_entries_per_tenant > 0 and excess > 0:
                # Evict the oldest: find the creation time of the excess-th oldest entry, delete up to it.
                oldest = await collection.query.fetch_objects(
                    limit=excess, sort=Sort.by_property("created_unix_s", ascending=True), return_properties=["key"]
                )
                keys = [str(o.properties["key"]) for o in oldest.objects]
                if keys:
                    evicted = await collection.data.delete_many(where=Filter.by_property("key").contains_any(keys))
                    removed += int(evicted.successful)
                    count -= int(evicted.successful)
            left += count
        return removed, left

    async def _count(self, tenant: str) -> int:
        agg = await self._client.collections.use(COLLECTION).with_tenant(tenant).aggregate.over_all(total_count=True)
        return int(agg.total_count or 0)

    async def healthy(self) -> bool:
        try:
            await self._ensure_ready()
            return bool(await self._client.is_ready())
        except Exception:
            return False

    async def close(self) -> None:
        await self._client.close()


def _properties(entry: SemanticEntry) -> dict[str, str | int]:
    return {
        "key": entry.key,
        "context": entry.context,
        "query": entry.query,
        "payload": entry.answer.to_json(),
        "created_unix_s": entry.answer.created_unix_s,
        "expires_unix_s": entry.expires_unix_s,
    }
