"""Builds the Compressor gRPC server."""

from __future__ import annotations

from costmesh.v1 import compressor_pb2, compressor_pb2_grpc
from services.common.embedding import load_minilm
from services.common.runtime import Service, new_service
from services.common.tokens import encoding
from services.compressor.backends.registry import make_compressor
from services.compressor.core import CompressorCore
from services.compressor.nearest import ExampleIndex
from services.compressor.servicer import CompressorServicer
from services.compressor.settings import CompressorSettings

SERVICE_NAME = compressor_pb2.DESCRIPTOR.services_by_name["Compressor"].full_name


async def build_server(settings: CompressorSettings) -> Service:
    service = new_service("compressor", settings, [SERVICE_NAME])
    encoding()  # load the tokenizer at start-up, not on the first request
    nearest = None
    if settings.examples == "nearest":
        nearest = ExampleIndex(load_minilm(settings.embedding_model_dir, settings.embedding_threads))
    core = CompressorCore(
        make_compressor(settings),
        settings.target_ratio,
        settings.min_tokens,
        settings.cache_entries,
        settings.examples,
        nearest,
        settings.examples_static_share,
    )
    compressor_pb2_grpc.add_CompressorServicer_to_server(CompressorServicer(core), service.server)
    service.closers.append(core.close)
    return service
