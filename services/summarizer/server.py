"""Builds the Summarizer gRPC server."""

from __future__ import annotations

from costmesh.v1 import inference_pb2_grpc, summarizer_pb2, summarizer_pb2_grpc
from services.common.health import serving
from services.common.interceptors import client_channel
from services.common.runtime import Service, new_service
from services.common.tokens import encoding
from services.summarizer.backends.base import SummaryStore
from services.summarizer.backends.memory import MemorySummaryStore
from services.summarizer.backends.redis_store import RedisSummaryStore
from services.summarizer.core import PruneLimits
from services.summarizer.servicer import SummarizerServicer
from services.summarizer.settings import SummarizerSettings

SERVICE_NAME = summarizer_pb2.DESCRIPTOR.services_by_name["Summarizer"].full_name


async def build_server(settings: SummarizerSettings) -> Service:
    service = new_service("summarizer", settings, [SERVICE_NAME])
    encoding()  # load the tokenizer at start-up, not on the first request
    channel = client_channel(settings.inference_addr)
    limits = PruneLimits(
        settings.max_tokens, settings.keep_last, settings.summary_tokens, settings.summary_ttl_s, settings.window_tokens
    )
    store: SummaryStore = (
        RedisSummaryStore(settings.redis_url, settings.store_timeout_s) if settings.redis_url else MemorySummaryStore()
    )
    servicer = SummarizerServicer(inference_pb2_grpc.InferenceStub(channel), limits, settings.summary_timeout_s, store)
    summarizer_pb2_grpc.add_SummarizerServicer_to_server(servicer, service.server)
    service.checks["inference"] = lambda: serving(channel, "costmesh.v1.Inference")
    service.closers.append(lambda: channel.close(None))
    service.closers.append(store.close)
    return service
