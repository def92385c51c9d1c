"""costmesh.integrations.llamaindex in a real LlamaIndex query over a folder of documents, against the real
compressor servicer in-process (its model-free `dedupe` method: overlapping chunks share sentences)."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from llama_index.core import Settings, SimpleDirectoryReader, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import NodeWithScore
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from costmesh.integrations.llamaindex import CompressorPostprocessor
from services.compressor.server import build_server as build_compressor
from services.compressor.settings import CompressorSettings
from tests.service.mesh import Mesh

FACT = "The toll on the Tagus bridge is 2.15 euros for a car."
QUESTION = "What is the toll on the Tagus bridge?"
FILLER = [
    "Lisbon sits on seven hills above the river.",
    "Trams climb the old streets of Alfama every few minutes.",
    "The bridge was opened in 1966 and painted red.",
    "Ferries cross the river to Cacilhas all day.",
    "Drivers pay only when they enter the city from the south.",
    "The bridge carries trains on a lower deck.",
]


class HashingEmbedding(BaseEmbedding):
    """Bag of words hashed into 64 dimensions: enough for a retriever to find the bridge, no model."""

    def _vector(self, text: str) -> list[float]:
        vector = [0.0] * 64
        for word in re.findall(r"[a-z0-9.]+", text.lower()):
            vector[hashlib.sha256(word.encode()).digest()[0] % 64] += 1.0
        return vector

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._vector(text)

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)


@pytest.fixture
async def compressor() -> AsyncIterator[Mesh]:
    mesh = Mesh()
    try:
        settings = CompressorSettings(port=0, method="dedupe", examples="select", min_tokens=0)
        await mesh.start("compressor", await build_compressor(settings))
        yield mesh
    finally:
        await mesh.stop()


@pytest.fixture
def index(tmp_path: Path) -> VectorStoreIndex:
    (tmp_path / "bridge.txt").write_text(" ".join([*FILLER[:3], FACT, *FILLER[3:]]))
    (tmp_path / "food.txt").write_text("Custard tarts come from Belem. " * 3 + "Sardines are grilled in June.")
    # Short metadata of the same length wherever pytest's tmp_path is: the splitter counts it in each chunk.
    documents = SimpleDirectoryReader(str(tmp_path), file_metadata=lambda p: {"file_name": Path(p).name}).load_data()
    # Chunks that overlap by half: neighbours retrieved together repeat each other's sentences.
    splitter = SentenceSplitter(chunk_size=48, chunk_overlap=24)
    return VectorStoreIndex.from_documents(documents, embed_model=HashingEmbedding(), transformations=[splitter])


def text_of(nodes: list[NodeWithScore]) -> str:
    return " ".join(n.node.get_content() for n in nodes)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_query_gets_shorter_nodes_that_keep_the_fact_their_scores_and_sources(
    compressor: Mesh, index: VectorStoreIndex, spans: InMemorySpanExporter, mode: str
) -> None:
    retrieved = index.as_retriever(similarity_top_k=4).retrieve(QUESTION)
    assert FACT in text_of(retrieved) and len(retrieved) == 4
    postprocessor = CompressorPostprocessor(tenant="acme", address=compressor.address("compressor"))
    engine = index.as_query_engine(
        llm=MockLLM(), similarity_top_k=4, node_postprocessors=[postprocessor], embed_model=HashingEmbedding()
    )
    if mode == "sync":  # the blocking client, off the loop that serves the in-process compressor
        response = await asyncio.to_thread(engine.query, QUESTION)
    else:
        response = await engine.aquery(QUESTION)

    nodes = response.source_nodes
    assert len(text_of(nodes)) < len(text_of(retrieved))
    assert FACT in text_of(nodes) and FACT in str(response)  # MockLLM answers with its prompt: the context
    before = {n.node.node_id: n for n in retrieved}
    assert nodes and all(n.node.node_id in before for n in nodes)
    for n in nodes:
        original = before[n.node.node_id]
        assert n.score == original.score
        assert n.node.metadata == original.node.metadata and n.node.ref_doc_id == original.node.ref_doc_id
        assert len(n.node.get_content()) <= len(original.node.get_content())

    finished = spans.get_finished_spans()
    [client] = [s for s in finished if s.name == "costmesh.llamaindex.compress"]
    attributes = client.attributes or {}
    assert attributes["costmesh.compress.method"] == "dedupe"
    tokens = {k: int(str(attributes[f"costmesh.compress.tokens_{k}"])) for k in ("before", "after")}
    assert tokens["after"] < tokens["before"]
    served = [s for s in finished if s.name == "/costmesh.v1.Compressor/Compress"]
    assert [s.context.trace_id for s in served] == [client.context.trace_id]


async def test_an_unreachable_compressor_passes_the_nodes_through(index: VectorStoreIndex) -> None:
    Settings.embed_model = HashingEmbedding()
    retrieved = index.as_retriever(similarity_top_k=3).retrieve(QUESTION)
    postprocessor = CompressorPostprocessor(tenant="acme", address="127.0.0.1:1", timeout_s=2)
    out = await postprocessor.apostprocess_nodes(retrieved, query_str=QUESTION)
    assert out == retrieved
