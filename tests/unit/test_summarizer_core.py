import pytest

from services.common.tokens import count_messages
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
