"""costmesh.integrations.langgraph in a real LangGraph graph, against the real summarizer and inference
servicers in-process (the cheap tier a scripted fake)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from costmesh.integrations.langgraph import METADATA_KEY, SummarizerPruner, is_summary, turn
from services.common.tokens import count_messages
from services.inference.server import build_server as build_inference
from services.inference.settings import InferenceSettings
from services.summarizer.core import SUMMARY_PREFIX
from services.summarizer.server import build_server as build_summarizer
from services.summarizer.settings import SummarizerSettings
from services.summarizer.summarize import INSTRUCTION
from tests.service.fakes import EchoBackend, ScriptedBackend
from tests.service.mesh import Mesh, inference_core

SUMMARY = "The user plans a week in Lisbon in May on 900 euros and wants quiet places."
LIMIT = 400
KEEP = 2
TURNS = 17


@pytest.fixture
async def summarizer() -> AsyncIterator[tuple[Mesh, ScriptedBackend]]:
    cheap = ScriptedBackend("small", SUMMARY)
    mesh = Mesh()
    try:
        core = inference_core([cheap], [EchoBackend("large")])
        await mesh.start("inference", await build_inference(InferenceSettings(port=0, embedding_backend=""), core))
        settings = SummarizerSettings(port=0, inference_addr=mesh.address("inference"), redis_url="")
        await mesh.start("summarizer", await build_summarizer(settings))
        yield mesh, cheap
    finally:
        await mesh.stop()


def reply(question: str) -> str:
    return f"About {question}: " + "the old town has steep streets, trams and small bakeries. " * 6


def agent_graph(pruner: SummarizerPruner, seen: list[list[AnyMessage]]) -> Any:
    async def agent(state: MessagesState) -> dict[str, list[AnyMessage]]:
        seen.append(list(state["messages"]))  # what the model would be sent
        return {"messages": [AIMessage(reply(str(state["messages"][-1].text)))]}

    builder = StateGraph(MessagesState)
    builder.add_node("prune", pruner)
    builder.add_node("agent", agent)
    builder.add_edge(START, "prune")
    builder.add_edge("prune", "agent")
    builder.add_edge("agent", END)
    return builder.compile(checkpointer=InMemorySaver())


async def test_seventeen_turns_stay_under_the_limit_with_the_summarizers_summary(
    summarizer: tuple[Mesh, ScriptedBackend], spans: InMemorySpanExporter
) -> None:
    mesh, cheap = summarizer
    pruner = SummarizerPruner(tenant="acme", max_tokens=LIMIT, keep_exchanges=KEEP, address=mesh.address("summarizer"))
    seen: list[list[AnyMessage]] = []
    graph = agent_graph(pruner, seen)
    config = {"configurable": {"thread_id": "trip"}}
    system = SystemMessage("You are a travel assistant.")
    questions = [f"question {i}: what about district {i} of Lisbon?" for i in range(TURNS)]
    for i, question in enumerate(questions):
        sent = [system, HumanMessage(question)] if i == 0 else [HumanMessage(question)]
        await graph.ainvoke({"messages": sent}, config)

    # Past the limit within a few turns, then 12+ turns more: every window the model was sent fits.
    full = [system, *(m for q in questions for m in (HumanMessage(q), AIMessage(reply(q))))]
    passed = next(i for i in range(TURNS) if count_messages([turn(m) for m in full[: 2 * i + 2]]) > LIMIT)
    assert TURNS - passed >= 12
    assert all(count_messages([turn(m) for m in window]) <= LIMIT for window in seen)
    last = seen[-1]
    assert last[0] == system
    assert isinstance(last[1], SystemMessage) and last[1].content == SUMMARY_PREFIX + SUMMARY
    humans = [m.text for m in last if isinstance(m, HumanMessage)]
    assert humans[-KEEP:] == questions[-KEEP:]  # the last exchanges verbatim
    assert [m.text for m in last if isinstance(m, AIMessage)][-1] == reply(questions[-2])
    state = (await graph.aget_state(config)).values["messages"]
    assert sum(is_summary(m) for m in state) == 1  # one running summary, not one per pruning

    # The summary is the summarizer's: written by the cheap tier with the summarizer's instruction, priced.
    assert cheap.prompts and all(p.messages[0].content.startswith(INSTRUCTION[:30]) for p in cheap.prompts)
    metadata = last[1].response_metadata[METADATA_KEY]
    assert metadata["cost_usd"] > 0 and metadata["price_model"] == "gpt-4o-mini"
    # ... and traced: the node's span names the trace the summarizer's server span is in.
    finished = spans.get_finished_spans()
    nodes = [s for s in finished if s.name == "costmesh.langgraph.prune"]
    assert len(nodes) >= 5  # pruned again and again as the talk went on
    served = {format(s.context.trace_id, "032x") for s in finished if s.name == "/costmesh.v1.Summarizer/Prune"}
    assert nodes and {str((s.attributes or {})["costmesh.trace_id"]) for s in nodes} <= served
    assert metadata["trace_id"] in served


async def test_under_the_limit_the_node_changes_nothing_and_calls_no_service(
    summarizer: tuple[Mesh, ScriptedBackend], spans: InMemorySpanExporter
) -> None:
    mesh, cheap = summarizer
    pruner = SummarizerPruner(tenant="acme", max_tokens=LIMIT, address=mesh.address("summarizer"))
    state = {"messages": [SystemMessage("Be brief.", id="s"), HumanMessage("hi", id="h")]}
    assert await pruner(state) == {}
    assert not cheap.prompts and not spans.get_finished_spans()
