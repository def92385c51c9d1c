"""Builds the Inference gRPC server."""

from __future__ import annotations

from openai import AsyncOpenAI

from costmesh.v1 import inference_pb2, inference_pb2_grpc
from services.common.runtime import Service, new_service
from services.inference.backends.openai import OPENAI_URL
from services.inference.backends.registry import make_backend
from services.inference.batch_api import BatchApiCollector
from services.inference.core import InferenceCore, InferenceMetrics, TierConfig
from services.inference.domain import Tier
from services.inference.embeddings import EmbeddingCore, make_embedding_backend
from services.inference.limits import Buckets, LaneLimit, LaneLimiter, LocalBuckets
from services.inference.limits_redis import RedisBuckets
from services.inference.pricing import DEFAULT_PRICES, Price
from services.inference.servicer import InferenceServicer
from services.inference.settings import InferenceSettings

SERVICE_NAME = inference_pb2.DESCRIPTOR.services_by_name["Inference"].full_name


def price_table(settings: InferenceSettings) -> dict[str, Price]:
    return DEFAULT_PRICES | {name: Price(**row.model_dump()) for name, row in settings.prices.items()}


def build_core(settings: InferenceSettings, metrics: InferenceMetrics) -> InferenceCore:
    tiers = {}
    batch_apis = {}
    for tier, model, price_model in (
        (Tier.SMALL, settings.small_model, settings.small_price_model),
        (Tier.LARGE, settings.large_model, settings.large_price_model),
        (Tier.STUDENT, settings.student_model, settings.student_price_model),
    ):
        if tier is Tier.STUDENT and not settings.student_backends:
            continue
        backends = [
            make_backend(kind, url, model, settings.openai_api_key) for kind, url in settings.backends_for(tier.value)
        ]
        tiers[tier] = TierConfig(backends, price_model)
        if settings.openai_batch_api:
            for index, (kind, url) in enumerate(settings.backends_for(tier.value)):
                if kind == "openai":
                    batch_apis[(tier, index)] = BatchApiCollector(
                        AsyncOpenAI(base_url=url or OPENAI_URL, api_key=settings.openai_api_key),
                        model,
                        settings.openai_batch_window_s,
                        settings.openai_batch_max_items,
                        settings.openai_batch_poll_s,
                    )
    prices = price_table(settings)
    limits = {key: LaneLimit(rpm, tpm) for key, (rpm, tpm) in settings.lane_limit_table().items()}
    # Shared buckets when there is a Redis to share: N replicas then grant one quota, not N.
    buckets: Buckets = (
        RedisBuckets.from_url(settings.limits_redis_url, settings.lane_burst_s, metrics.limits_local.inc)
        if settings.limits_redis_url
        else LocalBuckets(burst_s=settings.lane_burst_s)
    )
    return InferenceCore(
        tiers,
        metrics,
        prices,
        settings.breaker_failures,
        settings.breaker_cooldown_s,
        LaneLimiter(limits, buckets=buckets),
        batch_apis,
        settings.batch_yield_s,
    )


def build_embeddings(settings: InferenceSettings, metrics: InferenceMetrics) -> EmbeddingCore | None:
    backend = make_embedding_backend(
        settings.embedding_backend, settings.embedding_threads, settings.embedding_model, settings.openai_api_key
    )
    if backend is None:
        return None
    return EmbeddingCore(backend, settings.embedding_price_model, price_table(settings), metrics)


async def build_server(
    settings: InferenceSettings, core: InferenceCore | None = None, embeddings: EmbeddingCore | None = None
) -> Service:
    service = new_service("inference", settings, [SERVICE_NAME])
    metrics = InferenceMetrics(service.registry)
    core = core or build_core(settings, metrics)
    embeddings = embeddings or (build_embeddings(settings, metrics) if settings.embedding_backend else None)
    servicer = InferenceServicer(core, settings.timeout_s, settings.default_max_tokens, embeddings)
    inference_pb2_grpc.add_InferenceServicer_to_server(servicer, service.server)
    service.checks["models"] = core.health
    service.closers.append(core.close)
    if embeddings is not None:
        service.closers.append(embeddings.close)
    return service
