"""LlamaIndex: a node postprocessor that has costmesh's compressor shorten retrieved nodes, an embedding
model and the OpenAILike recipe that both go through the gateway.

`CompressorPostprocessor` sends the retrieved nodes' text to the compressor service
(costmesh.v1.Compressor/Compress) as retrieved context, with the query as the question: compressed with the
question in view (LLMLingua-1 in the stack) and cached per block, so the same retrieval costs one
compression. It returns the same nodes, in the same order, with the same scores, node ids, metadata and
relationships (the source document), only shorter; a node whose text compresses to nothing (a repeat of
an earlier one) is dropped. If the compressor is unreachable or out of time the nodes pass through
unchanged (the mesh's fail-open policy) and the span says `costmesh.compress.degraded`.

    engine = index.as_query_engine(
        llm=gateway_llm(api_key), node_postprocessors=[CompressorPostprocessor(tenant="acme", token=...)]
    )
"""

from __future__ import annotations

import logging
from typing import Any

import grpc
import openai
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import Field
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode
from llama_index.llms.openai_like import OpenAILike

from costmesh.v1 import common_pb2, compressor_pb2, compressor_pb2_grpc

from .client import async_channel, gateway_base_url, sync_channel, trace_metadata, traced

log = logging.getLogger(__name__)
# Statuses that mean "no compression this time", not a mistake to surface: the request goes on uncompressed.
FAIL_OPEN = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED)
EMBEDDING_MODEL = "costmesh-embedding"


def gateway_llm(
    api_key: str, model: str = "costmesh-auto", port: int = 8080, context_window: int = 8192, **options: Any
) -> OpenAILike:
    """LlamaIndex's OpenAILike against costmesh's gateway (chat completions), greedy so answers are cached.

    `api_key` is a costmesh key (`costmesh keys create --tenant T`); `model` costmesh-auto, -small or -large.
    """
    settings: dict[str, Any] = {"temperature": 0.0, "max_retries": 0, **options}
    return OpenAILike(
        model=model,
        api_base=gateway_base_url(port),
        api_key=api_key,
        is_chat_model=True,
        context_window=context_window,
        **settings,
    )


class GatewayEmbedding(BaseEmbedding):
    """Embeddings from the gateway's POST /v1/embeddings (the stack's local MiniLM, priced and traced):
    nothing is downloaded, and an index built with it needs only the running stack."""

    api_key: str = Field(exclude=True, repr=False)  # a costmesh key
    port: int = 8080
    timeout_s: float = 60.0
    model_name: str = EMBEDDING_MODEL

    @classmethod
    def class_name(cls) -> str:
        return "CostmeshGatewayEmbedding"

    def _sync(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=gateway_base_url(self.port), api_key=self.api_key, timeout=self.timeout_s)

    def _async(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=gateway_base_url(self.port), api_key=self.api_key, timeout=self.timeout_s)

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        with self._sync() as client:
            reply = client.embeddings.create(model=EMBEDDING_MODEL, input=texts)
        return [item.embedding for item in reply.data]

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        async with self._async() as client:
            reply = await client.embeddings.create(model=EMBEDDING_MODEL, input=texts)
        return [item.embedding for item in reply.data]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return (await self._aget_text_embeddings([text]))[0]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._get_text_embedding(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await self._aget_text_embedding(query)


class CompressorPostprocessor(BaseNodePostprocessor):
    """Retrieved nodes shortened by costmesh's compressor, with the query as the question."""

    tenant: str
    address: str = "127.0.0.1:50053"
    token: str | None = Field(default=None, exclude=True, repr=False)  # the stack's mesh token; None: the env's
    target_ratio: float = 0.0  # tokens before / after to aim for; 0: the service's (2.0)
    timeout_s: float = 30.0

    @classmethod
    def class_name(cls) -> str:
        return "CostmeshCompressorPostprocessor"

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        request, texts = self._request(nodes, query_bundle)
        if not texts:
            return nodes
        with traced("costmesh.llamaindex.compress") as (span, _):
            channel = sync_channel(self.address, self.token)
            try:
                stub = compressor_pb2_grpc.CompressorStub(channel)
                response = stub.Compress(request, timeout=self.timeout_s, metadata=trace_metadata())
            except grpc.RpcError as exc:
                return passed_through(nodes, exc, span)
            finally:
                channel.close()
            return compressed(nodes, texts, response, span)

    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        request, texts = self._request(nodes, query_bundle)
        if not texts:
            return nodes
        with traced("costmesh.llamaindex.compress") as (span, _):
            async with async_channel(self.address, self.token) as channel:
                stub = compressor_pb2_grpc.CompressorStub(channel)
                try:
                    response = await stub.Compress(request, timeout=self.timeout_s)
                except grpc.aio.AioRpcError as exc:
                    return passed_through(nodes, exc, span)
            return compressed(nodes, texts, response, span)

    def _request(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None
    ) -> tuple[compressor_pb2.CompressRequest, dict[str, int]]:
        """The request, and which node each document id stands for (text nodes only: others pass as they are)."""
        texts = {str(i): i for i, n in enumerate(nodes) if isinstance(n.node, TextNode) and n.node.text.strip()}
        documents = [
            common_pb2.Document(
                id=doc_id, text=nodes[i].node.get_content(MetadataMode.NONE), kind=common_pb2.DOCUMENT_KIND_CONTEXT
            )
            for doc_id, i in texts.items()
        ]
        question = query_bundle.query_str if query_bundle is not None else ""
        request = compressor_pb2.CompressRequest(
            tenant=self.tenant, documents=documents, target_ratio=self.target_ratio, question=question
        )
        return request, texts


def compressed(
    nodes: list[NodeWithScore], texts: dict[str, int], response: compressor_pb2.CompressResponse, span: Any
) -> list[NodeWithScore]:
    report = response.report
    span.set_attribute("costmesh.compress.method", report.method)
    span.set_attribute("costmesh.compress.tokens_before", report.tokens_before)
    span.set_attribute("costmesh.compress.tokens_after", report.tokens_after)
    span.set_attribute("costmesh.compress.degraded", report.degraded)
    shorter = {texts[d.id]: d.text for d in response.documents if d.id in texts}
    out = []
    for i, scored in enumerate(nodes):
        if i not in shorter:
            out.append(scored)
        elif shorter[i].strip():
            node = scored.node.model_copy(deep=True)  # same id, metadata and relationships
            node.set_content(shorter[i])
            out.append(NodeWithScore(node=node, score=scored.score))
    return out


def passed_through(nodes: list[NodeWithScore], exc: grpc.RpcError, span: Any) -> list[NodeWithScore]:
    status = getattr(exc, "code", None)  # grpc.Call's (blocking) and AioRpcError's alike
    code = status() if callable(status) else grpc.StatusCode.UNKNOWN
    if code not in FAIL_OPEN:
        raise exc
    log.warning("compressor unavailable (%s): the nodes go on uncompressed", code.name)
    span.set_attribute("costmesh.compress.degraded", True)
    return nodes
