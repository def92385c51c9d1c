import pytest

from services.common.tokens import count_messages
from services.summarizer.backends.memory import MemorySummaryStore
from services.summarizer.core import SUMMARY_PREFIX, PruneLimits, prune


class RecordingSummarizer:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def __call__(self, text: str, budget_tokens: int) -> str:
        self.calls.append(text)
        return "The user asked about orders 1-20; the assistant answered each."


def conversation(turns: int) -> list[tuple[str, str]]:
    out = [("system", "You are a helpful assistant.")]
    for i in range(turns):
        out.append(("user", f"Question {i}: " + "please tell me about my order status and delivery " * 20))
        out.append(("assistant", f"Answer {i}: " + "your order is on its way and will arrive soon " * 20))
    return out


async def test_short_history_is_untouched() -> None:
    summarize = RecordingSummarizer()
    msgs = conversation(2)
    result = await prune(msgs, PruneLimits(), summarize)
    assert result.messages == msgs
    assert not result.applied
    assert summarize.calls == []


async def test_long_history_keeps_last_six_verbatim_and_summarizes_the_rest() -> None:
    summarize = RecordingSummarizer()
    msgs = conversation(40)
    assert count_messages(msgs) > 3500
    result = await prune(msgs, PruneLimits(max_tokens=3500, keep_last=6), summarize)
    assert result.applied
    assert result.messages[0] == msgs[0]  # system prompt kept
    assert result.messages[1][1].startswith(SUMMARY_PREFIX)
    assert result.messages[-6:] == msgs[-6:]
    assert result.messages_summarized == len(msgs) - 1 - 6
    assert result.tokens_after < 4000 < result.tokens_before
    assert "Question 0" in summarize.calls[0]
    assert "Question 39" not in summarize.calls[0]


async def test_invalid_limits() -> None:
    with pytest.raises(Exception, match="max_tokens"):
        await prune(conversation(1), PruneLimits(max_tokens=0), RecordingSummarizer())


class FailingStore:
    async def get_many(self, keys: list[str]) -> list[str | None]:
        raise ConnectionError("redis down")

    async def put(self, key: str, summary: str, ttl_s: int) -> None:
        raise ConnectionError("redis down")

    async def close(self) -> None:
        return None


async def test_next_turn_folds_only_the_new_turns_into_the_stored_summary() -> None:
    store, summarize = MemorySummaryStore(), RecordingSummarizer()
    msgs = conversation(40)
    first = await prune(msgs, PruneLimits(), summarize, store, scope="acme/c1")
    assert first.summary_source == "full"
    # The same conversation one exchange later: two more older turns to summarize, not seventy-odd.
    later = [*msgs, ("user", "And order 41?"), ("assistant", "On its way too.")]
    second = await prune(later, PruneLimits(), summarize, store, scope="acme/c1")
    assert second.summary_source == "folded"
    folded = summarize.calls[-1]
    assert folded.startswith("Summary of the conversation so far:\nThe user asked about orders 1-20")
    assert folded.count("Question ") + folded.count("Answer ") == 2  # only the turns since the last summary
    # Asked again unchanged (a retry): the stored summary answers, no model call.
    calls = len(summarize.calls)
    third = await prune(later, PruneLimits(), summarize, store, scope="acme/c1")
    assert third.summary_source == "cached" and len(summarize.calls) == calls
    assert third.messages == second.messages


async def test_summaries_do_not_cross_scopes_or_edited_histories() -> None:
    store, summarize = MemorySummaryStore(), RecordingSummarizer()
    msgs = conversation(40)
    await prune(msgs, PruneLimits(), summarize, store, scope="acme/c1")
    other = await prune(msgs, PruneLimits(), summarize, store, scope="globex/c1")
    assert other.summary_source == "full"  # another tenant never reads acme's summary
    edited = [msgs[0], ("user", "A different first question"), *msgs[2:]]
    assert (await prune(edited, PruneLimits(), summarize, store, scope="acme/c1")).summary_source == "full"


async def test_a_failing_store_costs_a_full_summary_not_the_request() -> None:
    result = await prune(conversation(40), PruneLimits(), RecordingSummarizer(), FailingStore(), scope="acme")
    assert result.applied and result.summary_source == "full"


async def test_huge_recent_messages_give_way_to_the_window() -> None:
    # Six recent messages of ~900 tokens each cannot all stay verbatim inside a 4k window.
    big = "word " * 900
    msgs = [("system", "Be brief."), *[("user" if i % 2 == 0 else "assistant", f"{i} {big}") for i in range(12)]]
    result = await prune(msgs, PruneLimits(), RecordingSummarizer())
    assert result.tokens_after <= 4000
    assert result.messages[-1] == msgs[-1]  # the latest message always stays verbatim
    assert len(result.messages) - 2 < 6  # fewer than keep_last were kept
