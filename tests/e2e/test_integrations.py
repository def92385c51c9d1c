"""costmesh.integrations against the stack `costmesh up` starts: a LangGraph agent whose model is
ChatOpenAI on the gateway and whose history the summarizer prunes, and a LlamaIndex query whose
embeddings and answer go through the gateway and whose retrieved nodes go through the compressor."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AnyMessage, HumanMessage, SystemMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from llama_index.core import SimpleDirectoryReader, VectorStoreIndex
from llama_index.core.node_parser import SentenceSplitter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from costmesh.integrations.langgraph import METADATA_KEY, SummarizerPruner, gateway_chat_model, is_summary, turn
from costmesh.integrations.llamaindex import CompressorPostprocessor, GatewayEmbedding, gateway_llm
from services.common.tokens import count_messages, count_text
from tests.e2e.conftest import RunningStack
from tests.helpers import ROOT, api_key

pytestmark = pytest.mark.e2e

LIMIT = 500
PADDING = " I am asking because I want to plan every hour of the trip carefully, with my family of four." * 3


def tenant() -> str:
    return f"int{uuid.uuid4().hex[:8]}"


async def wait_for_spans(stack: RunningStack, trace_id: str, wanted: set[tuple[str, str]]) -> set[tuple[str, str]]:
    seen: set[tuple[str, str]] = set()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not wanted <= seen:
        seen = set(stack.receiver.in_trace(trace_id))
        await asyncio.sleep(0.3)
    return seen


async def test_a_langgraph_agent_on_the_gateway_stays_under_the_limit_with_the_summarizers_summary(
    running_stack: RunningStack, spans: InMemorySpanExporter
) -> None:
    settings = running_stack.settings
    who = tenant()
    model = gateway_chat_model(api_key(who), model="costmesh-small", port=settings.gateway_port, max_tokens=24)
    pruner = SummarizerPruner(
        tenant=who,
        max_tokens=LIMIT,
        keep_exchanges=1,
        address=f"127.0.0.1:{settings.summarizer_port}",
        token=settings.mesh_token(),
        timeout_s=300,
    )
    windows: list[int] = []

    async def agent(state: MessagesState) -> dict[str, list[AnyMessage]]:
        windows.append(count_messages([turn(m) for m in state["messages"]]))
        return {"messages": [await model.ainvoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("prune", pruner)
    builder.add_node("agent", agent)
    builder.add_edge(START, "prune")
    builder.add_edge("prune", "agent")
    builder.add_edge("agent", END)
    graph = builder.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": who}}
    places = ["Lisbon", "Porto", "Sintra", "Faro", "Coimbra", "Evora"]
    state: dict[str, Any] = {}
    for i, place in enumerate(places):
        first = [SystemMessage("You are a brief travel assistant.")] if i == 0 else []
        question = HumanMessage(f"What is one thing to see in {place}?{PADDING}")
        state = await graph.ainvoke({"messages": [*first, question]}, config)

    assert max(windows) <= LIMIT, windows
    summaries = [m for m in state["messages"] if is_summary(m)]
    assert len(summaries) == 1, "the history passed the limit, so one running summary stands in for it"
    metadata = summaries[0].response_metadata[METADATA_KEY]
    assert metadata["messages_summarized"] > 0 and metadata["summary_source"] in ("full", "folded", "cached")
    # The summary is a mesh call: priced on the cheap tier and traced through the summarizer to inference.
    assert metadata["cost_usd"] >= 0 and metadata["price_model"]
    trace_id = metadata["trace_id"]
    node_spans = [s for s in spans.get_finished_spans() if s.name == "costmesh.langgraph.prune"]
    assert trace_id in {str((s.attributes or {})["costmesh.trace_id"]) for s in node_spans}
    wanted = {("costmesh-summarizer", "/costmesh.v1.Summarizer/Prune")}
    seen = await wait_for_spans(running_stack, trace_id, wanted)
    assert wanted <= seen, f"trace {trace_id} has {sorted(seen)}"
    if metadata["summary_source"] != "cached":
        assert any(service == "costmesh-inference" for service, _ in seen), sorted(seen)


def test_a_llamaindex_query_gets_compressed_nodes_that_keep_their_sources(
    running_stack: RunningStack, spans: InMemorySpanExporter
) -> None:
    settings = running_stack.settings
    who = tenant()
    key = api_key(who)
    embed = GatewayEmbedding(api_key=key, port=settings.gateway_port)
    documents = SimpleDirectoryReader(str(Path(ROOT) / "examples" / "docs")).load_data()
    splitter = SentenceSplitter(chunk_size=128, chunk_overlap=32)
    index = VectorStoreIndex.from_documents(documents, embed_model=embed, transformations=[splitter])
    question = "How much is the toll for a car on the 25 de Abril bridge?"
    retrieved = index.as_retriever(similarity_top_k=4, embed_model=embed).retrieve(question)
    assert "2.15" in " ".join(n.node.get_content() for n in retrieved)
    compressor = CompressorPostprocessor(
        tenant=who, address=f"127.0.0.1:{settings.compressor_port}", token=settings.mesh_token(), timeout_s=300
    )
    engine = index.as_query_engine(
        llm=gateway_llm(key, model="costmesh-small", port=settings.gateway_port, max_tokens=32),
        embed_model=embed,
        similarity_top_k=4,
        node_postprocessors=[compressor],
    )
    response = engine.query(question)

    assert str(response).strip()
    [client] = [s for s in spans.get_finished_spans() if s.name == "costmesh.llamaindex.compress"]
    attributes = client.attributes or {}
    assert attributes.get("costmesh.compress.degraded") is False, "the stack's compressor answered"
    before = {n.node.node_id: n for n in retrieved}
    nodes = response.source_nodes
    assert nodes and all(n.node.node_id in before and n.score == before[n.node.node_id].score for n in nodes)
    assert all(n.node.metadata == before[n.node.node_id].node.metadata for n in nodes)
    tokens_after = sum(count_text(n.node.get_content()) for n in nodes)
    # Never longer; shorter where LLMLingua kept every number of a node. A node whose compression lost or
    # changed a number goes on whole (deploy/llmlingua/server.py): every passage here has prices or years,
    # so with this model most come back unchanged rather than with a wrong figure.
    assert tokens_after <= sum(count_text(n.node.get_content()) for n in retrieved)
    number = r"\d+(?:[.,:/-]\d+)*%?"
    for n in nodes:
        assert re.findall(number, n.node.get_content()) == re.findall(number, before[n.node.node_id].node.get_content())
    # The passage's answer survives, figure and all.
    assert "2.15" in " ".join(n.node.get_content() for n in nodes)
