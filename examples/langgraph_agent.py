"""A LangGraph agent on costmesh: the model is ChatOpenAI pointed at the gateway, and a pruning node has
the summarizer keep the conversation under a token limit.

    costmesh up
    KEY=$(costmesh keys create --tenant demo | python -c 'import json,sys; print(json.load(sys.stdin)["key"])')
    python examples/langgraph_agent.py --api-key "$KEY" --max-tokens 600

Each turn prints the answer, the tokens of the window the model was sent, and (after a pruning) the
summary's cost and trace id: `costmesh` traces show the summary's cheap-tier call under it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from langchain_core.messages import AnyMessage, HumanMessage, SystemMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph

from costmesh.integrations.langgraph import METADATA_KEY, SummarizerPruner, gateway_chat_model, is_summary, turn
from launcher.settings import StackSettings
from services.common.tokens import count_messages

QUESTIONS = [
    "I am planning four days in Lisbon in May. Which neighbourhoods should I stay in?",
    "I prefer quiet streets and I will not rent a car. Does that change your answer?",
    "How do I get from the airport to Alfama?",
    "What should I eat on the first evening?",
    "Is tram 28 worth it, or is it too crowded?",
    "Plan a day trip to Sintra for me.",
    "What is a fair budget per day for food?",
    "Which viewpoints are best at sunset?",
    "Can I cross the river by ferry? What is on the other side?",
    "Which museum would you pick if I only have two hours?",
    "What did I say about cars, and where am I staying?",
    "Summarize my plan in five bullet points.",
]


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def build(api_key: str, tenant: str, max_tokens: int, keep: int, stack: StackSettings) -> Any:
    model = gateway_chat_model(api_key, model="costmesh-auto", port=stack.gateway_port, max_tokens=200)
    pruner = SummarizerPruner(
        tenant=tenant,
        max_tokens=max_tokens,
        keep_exchanges=keep,
        address=f"127.0.0.1:{stack.summarizer_port}",
        token=stack.mesh_token(),  # the summarizer is a stage service: it takes the stack's mesh token
    )

    async def agent(state: MessagesState) -> dict[str, list[AnyMessage]]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("prune", pruner)
    builder.add_node("agent", agent)
    builder.add_edge(START, "prune")
    builder.add_edge("prune", "agent")
    builder.add_edge("agent", END)
    return builder.compile(checkpointer=InMemorySaver())


async def run(args: argparse.Namespace) -> None:
    stack = StackSettings()
    graph = build(args.api_key, args.tenant, args.max_tokens, args.keep, stack)
    config = {"configurable": {"thread_id": "lisbon"}}
    first: list[AnyMessage] = [SystemMessage("You are a concise travel assistant.")]
    for i, question in enumerate(QUESTIONS[: args.turns]):
        state = await graph.ainvoke({"messages": [*(first if i == 0 else []), HumanMessage(question)]}, config)
        messages = state["messages"]
        window = count_messages([turn(m) for m in messages[:-1]])  # what the model was sent this turn
        say(f"\n[{i + 1}] {question}\n{messages[-1].text}\n  window: {window} tokens")
        for summary in (m for m in messages if is_summary(m)):
            meta = summary.response_metadata[METADATA_KEY]
            say(f"  summary ({meta['summary_source']}, ${meta['cost_usd']:.6f}): trace {meta['trace_id']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api-key", required=True, help="a costmesh key: costmesh keys create --tenant T")
    parser.add_argument("--tenant", default="demo", help="the key's tenant (the summarizer charges it)")
    parser.add_argument("--max-tokens", type=int, default=600, help="the state's token limit")
    parser.add_argument("--keep", type=int, default=2, help="exchanges kept verbatim")
    parser.add_argument("--turns", type=int, default=len(QUESTIONS))
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
