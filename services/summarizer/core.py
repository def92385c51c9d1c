"""History pruning: older turns become a short summary, recent turns stay verbatim. No grpc here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from services.common.errors import InvalidInput
from services.common.tokens import count_messages

Turn = tuple[str, str]  # (role, content)
# (transcript of older turns, token budget for the summary) -> summary text
Summarize = Callable[[str, int], Awaitable[str]]

SUMMARY_PREFIX = "Summary of the earlier conversation: "


@dataclass(frozen=True)
class Pruned:
    messages: list[Turn]
    tokens_before: int
    tokens_after: int
    messages_summarized: int

    @property
    def applied(self) -> bool:
        return self.messages_summarized > 0


@dataclass(frozen=True)
class PruneLimits:
    max_tokens: int = 3500
    keep_last: int = 6
    summary_tokens: int = 200


def transcript(turns: list[Turn]) -> str:
    return "\n".join(f"{role}: {content}" for role, content in turns)


async def prune(messages: list[Turn], limits: PruneLimits, summarize: Summarize) -> Pruned:
    if limits.max_tokens <= 0 or limits.keep_last < 0:
        raise InvalidInput("max_tokens must be > 0 and keep_last >= 0")
    before = count_messages(messages)
    if before <= limits.max_tokens:
        return Pruned(messages, before, before, 0)
    # Leading system messages are instructions, not history: they are never summarized.
    head = 0
    while head < len(messages) and messages[head][0] == "system":
        head += 1
    system, history = messages[:head], messages[head:]
    split = max(0, len(history) - limits.keep_last)
    older, recent = history[:split], history[split:]
    if not older:
        return Pruned(messages, before, before, 0)
    summary = (await summarize(transcript(older), limits.summary_tokens)).strip()
    pruned = [*system, ("system", SUMMARY_PREFIX + summary), *recent]
    return Pruned(pruned, before, count_messages(pruned), len(older))
