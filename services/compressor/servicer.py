"""Proto <-> domain adapter for the Compressor service."""

from __future__ import annotations

from typing import Any

import grpc

from costmesh.v1 import common_pb2, compressor_pb2, compressor_pb2_grpc
from services.common.validation import check_documents, check_finite, check_tenant
from services.compressor.core import CompressorCore, Doc

_KINDS = {
    common_pb2.DOCUMENT_KIND_CONTEXT: "context",
    common_pb2.DOCUMENT_KIND_EXAMPLE: "example",
    common_pb2.DOCUMENT_KIND_FIXED: "fixed",
    common_pb2.DOCUMENT_KIND_UNSPECIFIED: "context",  # unlabelled documents are treated as retrieved context
}
_KINDS_BY_NAME = {
    "context": common_pb2.DOCUMENT_KIND_CONTEXT,
    "example": common_pb2.DOCUMENT_KIND_EXAMPLE,
    "fixed": common_pb2.DOCUMENT_KIND_FIXED,
}


class CompressorServicer(compressor_pb2_grpc.CompressorServicer):
    def __init__(self, core: CompressorCore) -> None:
        self._core = core

    async def Compress(
        self, request: compressor_pb2.CompressRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> compressor_pb2.CompressResponse:
        check_tenant(request.tenant)
        check_documents(request.documents)
        check_finite(request.target_ratio, "target_ratio", 0.0)  # 0: the default; NaN passed `ratio < 1`
        docs = [Doc(d.id, d.text, _KINDS[d.kind]) for d in request.documents]
        result = await self._core.compress(docs, request.question, request.target_ratio)
        return compressor_pb2.CompressResponse(
            documents=[
                common_pb2.Document(id=d.id, text=d.text, kind=_KINDS_BY_NAME[d.kind]) for d in result.documents
            ],
            report=common_pb2.CompressionReport(
                applied=result.applied,
                tokens_before=result.tokens_before,
                tokens_after=result.tokens_after,
                method=result.method,
            ),
        )
