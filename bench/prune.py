"""History pruning on real multi-turn chats: tokens saved per turn against what the summaries cost.

Long Chit Chat Challenge conversations (chitchat-dataset) are replayed one user turn at a time from the
point where the history passes the pruning threshold. At each turn the summarizer's own logic
(services/summarizer/core.py, incremental summaries in an in-process store) prunes the history, and the
cheap tier (vLLM small, the summarizer's prompt) writes or folds the summary for real. Reported per turn:
prompt tokens before/after and the summary call's tokens; overall: input tokens saved priced at the large
tier (the baseline's price) against the summary calls priced at the cheap tier, and how many prompt tokens
re-summarizing everything each turn would have sent instead of folding.
"""

from __future__ import annotations

import argparse
import asyncio

from bench.output import emit
from launcher.settings import StackSettings
from services.common.tokens import count_messages, count_text
from services.inference.backends.vllm import vllm_backend
from services.inference.domain import ChatMessage, ChatPrompt, Sampling, Usage
from services.inference.pricing import DEFAULT_PRICES, PER_TOKEN, price_of
from services.summarizer.backends.memory import MemorySummaryStore
from services.summarizer.core import PruneLimits, Turn, prune, transcript
from services.summarizer.summarize import INSTRUCTION
from workloads import datasets


class CheapTierSummarizer:
    """The summarizer's prompt sent straight to the cheap tier's vLLM server; records each call's usage."""

    def __init__(self, stack: StackSettings) -> None:
        self._backend = vllm_backend(stack.model_url("small"), stack.small_model, "")
        self.calls: list[Usage] = []

    async def __call__(self, text: str, budget_tokens: int) -> str:
        messages = (ChatMessage("system", INSTRUCTION.format(words=budget_tokens * 3 // 4)), ChatMessage("user", text))
        completion = await self._backend.complete(ChatPrompt(messages, Sampling(max_tokens=budget_tokens)), 600)
        self.calls.append(completion.usage)
        return completion.text

    async def close(self) -> None:
        await self._backend.close()


def user_turn_ends(conversation: list[Turn], limits: PruneLimits) -> list[int]:
    """Indices just after each user turn once the history passes the threshold."""
    return [
        i + 1
        for i, (role, _) in enumerate(conversation)
        if role == "user" and count_messages(conversation[: i + 1]) > limits.max_tokens
    ]


async def replay(conversation: list[Turn], name: str, turns: int, limits: PruneLimits) -> list[dict[str, object]]:
    summarizer = CheapTierSummarizer(StackSettings())
    store = MemorySummaryStore()
    rows: list[dict[str, object]] = []
    try:
        for end in user_turn_ends(conversation, limits)[:turns]:
            history = conversation[:end]
            calls_before = len(summarizer.calls)
            result = await prune(history, limits, summarizer, store, scope=name)
            call = summarizer.calls[-1] if len(summarizer.calls) > calls_before else Usage()
            older = history[: max(0, len(history) - limits.keep_last)]
            row: dict[str, object] = {
                "bench": "prune",
                "conversation": name,
                "messages": len(history),
                "tokens_before": result.tokens_before,
                "tokens_after": result.tokens_after,
                "summary_source": result.summary_source,
                "summary_call_prompt_tokens": call.prompt_tokens,
                "summary_call_completion_tokens": call.completion_tokens,
                # What one call re-summarizing all older turns would have sent instead of folding.
                "full_resummary_prompt_tokens": count_text(transcript(older)),
            }
            emit(row)
            rows.append(row)
    finally:
        await summarizer.close()
    return rows


def summary(rows: list[dict[str, object]]) -> dict[str, object]:
    def total(key: str) -> int:
        return sum(int(str(r[key])) for r in rows)

    saved = total("tokens_before") - total("tokens_after")
    calls = Usage(total("summary_call_prompt_tokens"), total("summary_call_completion_tokens"))
    saved_usd = PER_TOKEN * saved * DEFAULT_PRICES["gpt-4o"].input_per_m
    calls_usd = price_of(calls, DEFAULT_PRICES["gpt-4o-mini"])
    return {
        "bench": "prune",
        "summary": True,
        "turns": len(rows),
        "tokens_saved_per_turn": round(saved / max(1, len(rows)), 1),
        "share_of_prompt_tokens_saved": round(saved / max(1, total("tokens_before")), 4),
        "summary_calls": sum(1 for r in rows if r["summary_source"] != "cached"),
        "saved_usd_at_gpt4o_input": round(saved_usd, 6),
        "summary_calls_usd_at_gpt4o_mini": round(calls_usd, 6),
        "net_saved_usd": round(saved_usd - calls_usd, 6),
        "folding_prompt_tokens": total("summary_call_prompt_tokens"),
        "full_resummary_prompt_tokens": total("full_resummary_prompt_tokens"),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="costmesh bench prune", description=__doc__)
    parser.add_argument("--conversations", type=int, default=2)
    parser.add_argument("--turns", type=int, default=8, help="user turns replayed per conversation")
    parser.add_argument("--max-tokens", type=int, default=3500, help="prune past this many history tokens")
    parser.add_argument("--keep-last", type=int, default=6)
    parser.add_argument("--summary-tokens", type=int, default=200)
    args = parser.parse_args(argv)
    limits = PruneLimits(args.max_tokens, args.keep_last, args.summary_tokens)

    long_enough = [c for c in datasets.chitchat(min_messages=40) if user_turn_ends(c, limits)[args.turns :]]
    chosen = datasets.sample(long_enough, args.conversations, seed=13)
    rows: list[dict[str, object]] = []
    for i, conversation in enumerate(chosen):
        rows += asyncio.run(replay(conversation, f"chitchat-{i}", args.turns, limits))
    emit(summary(rows))
    return 0
