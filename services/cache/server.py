"""Builds the Cache gRPC server."""

from __future__ import annotations

import time

from costmesh.v1 import cache_pb2, cache_pb2_grpc
from services.cache.backends.redis_store import RedisExactStore
from services.cache.backends.weaviate_index import WeaviateSemanticIndex
from services.cache.core import CacheCore, CacheMetrics, TenantPolicy
from services.cache.servicer import CacheServicer
from services.cache.settings import CacheSettings
from services.cache.verifier import load_verifier
from services.common.runtime import Service, new_service

SERVICE_NAME = cache_pb2.DESCRIPTOR.services_by_name["Cache"].full_name


async def build_core(settings: CacheSettings, metrics: CacheMetrics) -> CacheCore:
    exact = RedisExactStore(settings.redis_url, settings.backend_timeout_s)
    semantic = (
        await WeaviateSemanticIndex.connect(
            settings.weaviate_url, settings.weaviate_grpc_port, settings.weaviate_api_key
        )
        if settings.weaviate_url
        else None
    )
    tenants = {
        name: TenantPolicy(p.ttl_s, p.similarity_threshold, p.verifier_threshold)
        for name, p in settings.tenant_policies.items()
    }
    verifier = load_verifier(settings.verifier_kind, settings.verifier_model_dir, settings.verifier_threads)
    threshold = settings.similarity_threshold if verifier else settings.similarity_threshold_without_verifier
    return CacheCore(
        exact,
        semantic,
        metrics,
        settings.default_ttl_s,
        threshold,
        tenants=tenants,
        max_entries_per_tenant=settings.max_entries_per_tenant,
        verifier=verifier,
        default_verifier_threshold=settings.verifier_threshold,
        verify_timeout_s=settings.backend_timeout_s,
    )


async def build_server(settings: CacheSettings, core: CacheCore | None = None) -> Service:
    service = new_service("cache", settings, [SERVICE_NAME])
    core = core or await build_core(settings, CacheMetrics(service.registry, settings.metrics_tenants))
    servicer = CacheServicer(core, time.time, settings.embedding_dim)
    cache_pb2_grpc.add_CacheServicer_to_server(servicer, service.server)
    service.checks["redis"] = core.exact_healthy
    service.checks["weaviate"] = core.semantic_healthy
    service.closers.append(core.close)
    service.periodic.append(("cache sweep", settings.sweep_interval_s, core.sweep))
    return service
