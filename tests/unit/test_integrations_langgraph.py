"""The pruning node's pure parts: what the summarizer is sent, where the verbatim window starts, and the
state update LangGraph's add_messages reducer applies."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.graph.message import add_messages

from costmesh.integrations.langgraph import METADATA_KEY, PruneLimits, recent_start, replacement, turn
from costmesh.v1 import common_pb2, summarizer_pb2
from services.common.tokens import count_messages
from services.summarizer.core import SUMMARY_OVERHEAD_TOKENS, SUMMARY_PREFIX

WORDS = "lorem ipsum dolor sit amet " * 8  # ~40 tokens


def test_an_earlier_summary_is_sent_as_a_turn_and_tool_calls_are_spelled_out() -> None:
    summary = SystemMessage(SUMMARY_PREFIX + "x", response_metadata={METADATA_KEY: {}})
    call = AIMessage("", tool_calls=[{"name": "weather", "args": {"city": "Lisbon"}, "id": "c1"}])
    assert turn(SystemMessage("Be brief.")) == ("system", "Be brief.")
    assert turn(summary) == ("user", SUMMARY_PREFIX + "x")  # else it would count as instructions
    assert turn(call) == ("assistant", '[called weather({"city": "Lisbon"})]')
    assert turn(ToolMessage("sunny", tool_call_id="c1")) == ("tool", "sunny")


def test_the_window_keeps_the_last_exchanges_and_shrinks_to_fit() -> None:
    messages = [SystemMessage("Be brief.")]
    for i in range(6):
        messages += [HumanMessage(f"q{i} {WORDS}"), AIMessage(f"a{i} {WORDS}")]
    turns = [turn(m) for m in messages]
    assert recent_start(messages, turns, PruneLimits(max_tokens=2000, keep_exchanges=2)) == 9  # q4 onwards
    # 2 exchanges (~180 tokens) do not fit beside a 200-token summary under 400: the window gives up its
    # oldest messages until it does.
    limits = PruneLimits(max_tokens=400, keep_exchanges=2)
    start = recent_start(messages, turns, limits)
    room = limits.max_tokens - limits.summary_tokens - SUMMARY_OVERHEAD_TOKENS
    window = [turns[0], ("system", SUMMARY_PREFIX)]
    assert 9 < start < 12
    assert count_messages(window + turns[start:]) <= room < count_messages(window + turns[start - 1 :])


def test_the_window_never_starts_on_a_tool_result() -> None:
    call = AIMessage("", tool_calls=[{"name": "weather", "args": {}, "id": "c1"}])
    messages = [HumanMessage(f"q {WORDS}"), AIMessage(WORDS), HumanMessage(WORDS), call]
    messages += [ToolMessage(WORDS * 2, tool_call_id="c1"), AIMessage("sunny")]
    turns = [turn(m) for m in messages]
    start = recent_start(messages, turns, PruneLimits(max_tokens=400, keep_exchanges=1))
    assert not isinstance(messages[start], ToolMessage)


def test_the_update_puts_the_summary_in_place_and_removes_the_rest() -> None:
    state = add_messages([], [SystemMessage("Be brief."), *(HumanMessage(f"m{i}") for i in range(5))])
    response = summarizer_pb2.PruneResponse(
        messages=[
            common_pb2.Message(role=common_pb2.ROLE_SYSTEM, content="Be brief."),
            common_pb2.Message(role=common_pb2.ROLE_SYSTEM, content=SUMMARY_PREFIX + "s"),
            common_pb2.Message(role=common_pb2.ROLE_USER, content="m4"),
        ],
        report=common_pb2.PruningReport(applied=True, messages_summarized=4),
    )
    after = add_messages(state, replacement(state, 1, response, "ab" * 16))
    assert [m.content for m in after] == ["Be brief.", SUMMARY_PREFIX + "s", "m4"]
    assert after[1].response_metadata[METADATA_KEY]["trace_id"] == "ab" * 16
    with pytest.raises(RuntimeError):  # an answer that does not match what was sent changes nothing
        replacement(state[:3], 1, response, "")
