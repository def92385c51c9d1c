"""LangGraph: a pruning node for `MessagesState` that has costmesh's summarizer write the summary, and the
recipe that points LangChain's `ChatOpenAI` at the gateway.

The node keeps the graph's state under a token limit. Once the messages pass `max_tokens`, it sends them
to the summarizer service (costmesh.v1.Summarizer/Prune) with room for the last `keep_exchanges` exchanges
(a human message and the replies and tool results after it): the turns before them become one system
message "Summary of the earlier conversation: ...". That summary is a mesh call like any other: written
by the cheap tier, cached by the hash chain of the turns it covers, priced (PruneResponse.cost) and traced.
In the state the summary takes the first pruned message's id, and the other pruned messages are removed
with RemoveMessage, so the order stays system prompt, summary, recent exchanges.

The summary's trace id is on the node's span (`costmesh.trace_id`) and in the summary message's
`response_metadata["costmesh"]`, with its cost and how it was made.

    builder = StateGraph(MessagesState)
    builder.add_node("prune", SummarizerPruner(tenant="acme", max_tokens=3000, token=StackSettings().mesh_token()))
    builder.add_node("agent", call_model)
    builder.add_edge(START, "prune"); builder.add_edge("prune", "agent"); builder.add_edge("agent", END)
    graph = builder.compile()
    await graph.ainvoke({"messages": [...]})
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from costmesh.v1 import common_pb2, summarizer_pb2, summarizer_pb2_grpc
from services.common.openai_wire import ROLES as WIRE_ROLES
from services.common.tokens import count_messages
from services.summarizer.core import SUMMARY_OVERHEAD_TOKENS, SUMMARY_PREFIX

from .client import async_channel, gateway_base_url, traced

METADATA_KEY = "costmesh"  # the summary message's response_metadata entry
ROLES = {**WIRE_ROLES, "tool": common_pb2.ROLE_TOOL}


@dataclass(frozen=True)
class PruneLimits:
    max_tokens: int = 3500  # the state's limit (gpt-4o's tokenizer, as the summarizer counts)
    keep_exchanges: int = 3  # exchanges kept verbatim
    summary_tokens: int = 200  # room left for the summary: the summarizer's SUMMARY_TOKENS

    def __post_init__(self) -> None:
        if self.max_tokens <= self.summary_tokens + SUMMARY_OVERHEAD_TOKENS or self.keep_exchanges < 1:
            raise ValueError("max_tokens must leave room beyond summary_tokens, and keep_exchanges be >= 1")


def gateway_chat_model(api_key: str, model: str = "costmesh-auto", port: int = 8080, **options: Any) -> ChatOpenAI:
    """LangChain's ChatOpenAI against costmesh's gateway: every call is cached, routed, priced and traced.

    `api_key` is a costmesh key (`costmesh keys create --tenant T`); `model` is costmesh-auto (the router
    decides), costmesh-small or costmesh-large. Other options go to ChatOpenAI as they are.
    """
    return ChatOpenAI(base_url=gateway_base_url(port), api_key=SecretStr(api_key), model=model, **options)


def is_summary(message: AnyMessage) -> bool:
    return isinstance(message, SystemMessage) and METADATA_KEY in message.response_metadata


def turn(message: AnyMessage) -> tuple[str, str]:
    """(role, content) as the summarizer reads it. An earlier summary is sent as a user turn: as a leading
    system message it would count as instructions, which are never summarized, and summaries would pile up."""
    text = str(message.text)
    if isinstance(message, AIMessage) and message.tool_calls:
        calls = ", ".join(f"{c['name']}({json.dumps(c['args'], sort_keys=True)})" for c in message.tool_calls)
        text = f"{text}\n[called {calls}]".strip()
    if is_summary(message) or isinstance(message, HumanMessage):
        return "user", text
    if isinstance(message, SystemMessage):
        return "system", text
    if isinstance(message, ToolMessage):
        return "tool", text
    return "assistant", text


def leading_system(turns: Sequence[tuple[str, str]]) -> int:
    head = 0
    while head < len(turns) and turns[head][0] == "system":
        head += 1
    return head


def recent_start(messages: Sequence[AnyMessage], turns: list[tuple[str, str]], limits: PruneLimits) -> int:
    """Where the verbatim window starts: the last `keep_exchanges` exchanges, fewer when they would not fit
    beside the system prompt and the summary under max_tokens (always the last message). Never a tool
    result cut from the call that asked for it, unless only that message fits."""
    head = leading_system(turns)
    system = [*turns[:head], ("system", SUMMARY_PREFIX)]
    room = limits.max_tokens - limits.summary_tokens - SUMMARY_OVERHEAD_TOKENS
    starts = [i for i in range(head, len(messages)) if isinstance(messages[i], HumanMessage)]
    start = starts[-limits.keep_exchanges] if len(starts) >= limits.keep_exchanges else head
    start = max(start, head)
    while start < len(messages) - 1 and count_messages(system + turns[start:]) > room:
        start += 1
        while start < len(messages) - 1 and isinstance(messages[start], ToolMessage):
            start += 1
    return start


class SummarizerPruner:
    """A LangGraph node for MessagesState: {} under the limit, else the summary and RemoveMessages.

    It is async: run the graph with ainvoke / astream (a sync invoke refuses async nodes)."""

    def __init__(
        self,
        tenant: str,
        max_tokens: int = 3500,
        keep_exchanges: int = 3,
        summary_tokens: int = 200,
        address: str = "127.0.0.1:50054",
        token: str | None = None,  # the stack's mesh token; None: COSTMESH_MESH_TOKEN
        conversation_id: str = "",
        timeout_s: float = 60.0,
    ) -> None:
        self.limits = PruneLimits(max_tokens, keep_exchanges, summary_tokens)
        self._tenant = tenant
        self._address = address
        self._token = token
        self._conversation_id = conversation_id
        self._timeout_s = timeout_s

    async def __call__(self, state: dict[str, Any]) -> dict[str, list[BaseMessage]]:
        messages: list[AnyMessage] = list(state["messages"])
        turns = [turn(m) for m in messages]
        if count_messages(turns) <= self.limits.max_tokens:
            return {}
        head, start = leading_system(turns), recent_start(messages, turns, self.limits)
        if start <= head:
            return {}  # nothing older than the window to summarize
        request = summarizer_pb2.PruneRequest(
            tenant=self._tenant,
            conversation_id=self._conversation_id,
            messages=[common_pb2.Message(role=ROLES[role], content=content) for role, content in turns],
            max_tokens=self.limits.max_tokens,
            keep_last=len(messages) - start,
        )
        with traced("costmesh.langgraph.prune") as (span, trace_id):
            async with async_channel(self._address, self._token) as channel:
                stub = summarizer_pb2_grpc.SummarizerStub(channel)
                response: summarizer_pb2.PruneResponse = await stub.Prune(request, timeout=self._timeout_s)
            report = response.report
            span.set_attribute("costmesh.prune.tokens_before", report.tokens_before)
            span.set_attribute("costmesh.prune.tokens_after", report.tokens_after)
            span.set_attribute("costmesh.prune.messages_summarized", report.messages_summarized)
            span.set_attribute("costmesh.prune.summary_source", report.summary_source)
            span.set_attribute("costmesh.prune.cost_usd", response.cost.cost_usd)
        if not report.applied:
            return {}
        return {"messages": replacement(messages, head, response, trace_id)}


def replacement(
    messages: list[AnyMessage], head: int, response: summarizer_pb2.PruneResponse, trace_id: str
) -> list[BaseMessage]:
    """The state update: the summary in the first pruned message's place, the other pruned ones removed."""
    summary = response.messages[head]
    kept = len(response.messages) - head - 1
    pruned = messages[head : len(messages) - kept]
    if not summary.content.startswith(SUMMARY_PREFIX) or len(pruned) != response.report.messages_summarized:
        raise RuntimeError("the summarizer's answer does not match the messages sent")
    metadata = {
        "trace_id": trace_id,
        "cost_usd": response.cost.cost_usd,
        "price_model": response.cost.price_model,
        "summary_source": response.report.summary_source,
        "messages_summarized": response.report.messages_summarized,
    }
    message = SystemMessage(summary.content, id=pruned[0].id, response_metadata={METADATA_KEY: metadata})
    return [message, *(RemoveMessage(id=str(m.id)) for m in pruned[1:])]
