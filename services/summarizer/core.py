"""History pruning: older turns become a short summary, recent turns stay verbatim. No grpc here.

Incremental: each summary is stored under a hash chain of the turns it covers. The next request of the
same conversation finds the longest summarized prefix of its older turns and folds only the turns after
it into that summary (or reuses it outright when no turn was added), instead of re-summarizing it all.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from services.common.errors import InvalidInput
from services.common.tokens import count_messages
from services.summarizer.backends.base import SummaryStore

log = logging.getLogger(__name__)
KEY_VERSION = 1  # bump when the summary prompt changes: old summaries then simply miss

Turn = tuple[str, str]  # (role, content)
# (transcript of older turns, token budget for the summary) -> summary text
Summarize = Callable[[str, int], Awaitable[str]]

SUMMARY_PREFIX = "Summary of the earlier conversation: "
SUMMARY_OVERHEAD_TOKENS = 16  # the prefix and the message's framing


@dataclass(frozen=True)
class Pruned:
    messages: list[Turn]
    tokens_before: int
    tokens_after: int
    messages_summarized: int
    summary_source: str = ""  # "full", "folded" (earlier summary + new turns) or "cached" (no model call)

    @property
    def applied(self) -> bool:
        return self.messages_summarized > 0


@dataclass(frozen=True)
class PruneLimits:
    max_tokens: int = 3500
    keep_last: int = 6
    summary_tokens: int = 200
    summary_ttl_s: int = 86_400
    # The active window after pruning. When the last keep_last messages alone would not fit beside the
    # system prompt and the summary, fewer are kept verbatim (never fewer than the last one).
    window_tokens: int = 4000


def transcript(turns: list[Turn]) -> str:
    return "\n".join(f"{role}: {content}" for role, content in turns)


def prefix_keys(scope: str, system: list[Turn], older: list[Turn]) -> list[str]:
    """keys[j - 1] names the summary of older[:j]. A hash chain: a prefix is found with no conversation id,
    and any edit to an earlier turn (or to the system prompt) gives new keys, never a stale summary."""
    digest = hashlib.sha256(json.dumps([KEY_VERSION, scope, system]).encode()).digest()
    keys = []
    for turn in older:
        digest = hashlib.sha256(digest + json.dumps(turn).encode()).digest()
        keys.append(digest.hex())
    return keys


async def _longest_summarized(store: SummaryStore, keys: list[str]) -> tuple[int, str]:
    """(j, summary of older[:j]) for the longest stored prefix, or (0, "")."""
    try:
        found = await store.get_many(keys)
    except Exception as exc:  # a store outage costs a full summary, never the request
        log.warning("summary store lookup failed: %s", exc)
        return 0, ""
    for j in range(len(found), 0, -1):
        if found[j - 1]:
            return j, str(found[j - 1])
    return 0, ""


async def _summary(
    older: list[Turn], keys: list[str], limits: PruneLimits, summarize: Summarize, store: SummaryStore | None
) -> tuple[str, str]:
    """(summary of `older`, how it was made)."""
    done, previous = (0, "") if store is None else await _longest_summarized(store, keys)
    if done == len(older):
        return previous, "cached"
    if done:
        text = f"Summary of the conversation so far:\n{previous}\n\nNew turns:\n{transcript(older[done:])}"
        source = "folded"
    else:
        text, source = transcript(older), "full"
    summary = (await summarize(text, limits.summary_tokens)).strip()
    if store is not None:
        try:
            await store.put(keys[-1], summary, limits.summary_ttl_s)
        except Exception as exc:
            log.warning("summary store write failed: %s", exc)
    return summary, source


async def prune(
    messages: list[Turn],
    limits: PruneLimits,
    summarize: Summarize,
    store: SummaryStore | None = None,
    scope: str = "",
) -> Pruned:
    """`scope` (tenant and conversation id) keeps one conversation's summaries from another's."""
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
    room = limits.window_tokens - count_messages(system) - limits.summary_tokens - SUMMARY_OVERHEAD_TOKENS
    while split < len(history) - 1 and count_messages(history[split:]) > room:
        split += 1  # the oldest "recent" message joins the summary
    older, recent = history[:split], history[split:]
    if not older:
        return Pruned(messages, before, before, 0)
    summary, source = await _summary(older, prefix_keys(scope, system, older), limits, summarize, store)
    pruned = [*system, ("system", SUMMARY_PREFIX + summary), *recent]
    return Pruned(pruned, before, count_messages(pruned), len(older), source)
