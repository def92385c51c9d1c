"""Prefix caching: does costmesh's static-first prompt make vLLM serve most prompt tokens from its cache?

Each request carries a ~2k-token system prompt (a support handbook built from banking77's training
questions) and a different ~200-token user message (real banking77 test questions). Two layouts go to the
same vLLM server, one request at a time:

- static_first: what the orchestrator assembles (services/orchestrator/prompt.py): handbook, then message.
- variable_first: the same text with the message first, as a naive template would build it.

vLLM's own counters (`vllm:prefix_cache_hits_total` / `vllm:prefix_cache_queries_total`, in tokens) are read
before and after each layout; the ratio is the share of prompt tokens served from the cache. The first
request of each layout fills the cache and is reported apart from the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import time
import urllib.request

from bench.output import emit
from bench.stats import summarize_ms
from launcher.settings import StackSettings
from services.common.contracts import role_pairs, to_messages
from services.common.tokens import count_text
from services.inference.backends.vllm import vllm_backend
from services.inference.domain import ChatMessage, ChatPrompt, Sampling
from services.orchestrator.prompt import assemble
from workloads import datasets

COUNTERS = ("vllm:prefix_cache_hits_total", "vllm:prefix_cache_queries_total")


def handbook(tokens: int) -> str:
    """A support handbook: each intent with a few real customer questions, until `tokens` long."""
    by_intent: dict[str, list[str]] = {}
    for text, intent in datasets.banking77("train"):
        by_intent.setdefault(intent, []).append(text)
    lines = ["You are the support assistant of a retail bank. Classify and answer customer messages.", ""]
    for intent, questions in sorted(by_intent.items()):
        lines.append(f"Intent {intent}: customers write, for example: " + " | ".join(questions[:3]))
        if count_text("\n".join(lines)) >= tokens:
            break
    return "\n".join(lines)


def user_messages(n: int, tokens: int, seed: int) -> list[str]:
    """n different messages of about `tokens` tokens, each several real customer questions."""
    pool = [t for t, _ in datasets.banking77("test")]
    random.Random(seed).shuffle(pool)
    messages, current = [], ["A customer sent these messages; name the intent of each one:"]
    for text in pool:
        current.append(f"- {text}")
        if count_text("\n".join(current)) >= tokens:
            messages.append("\n".join(current))
            current = [current[0]]
            if len(messages) == n:
                break
    return messages


def read_counters(metrics_url: str) -> dict[str, float]:
    with urllib.request.urlopen(metrics_url, timeout=10) as reply:
        text = reply.read().decode()
    totals = dict.fromkeys(COUNTERS, 0.0)
    for line in text.splitlines():
        match = re.match(r"^(vllm:prefix_cache_(?:hits|queries)_total)(?:\{[^}]*\})? ([0-9.eE+-]+)$", line)
        if match:
            totals[match.group(1)] += float(match.group(2))
    return totals


def layout(name: str, system: str, message: str) -> list[ChatMessage]:
    if name == "static_first":
        assembled = assemble(to_messages([("system", system), ("user", message)]), [])
        return [ChatMessage(role, content) for role, content in role_pairs(assembled)]
    return [ChatMessage("user", f"{message}\n\n{system}")]


async def run_layout(name: str, base_url: str, model: str, system: str, messages: list[str]) -> dict[str, object]:
    backend = vllm_backend(base_url, model, "")
    metrics_url = base_url.removesuffix("/v1") + "/metrics"
    before = read_counters(metrics_url)
    latencies, prompt_tokens, cached_tokens = [], 0, 0
    try:
        for message in messages:
            prompt = ChatPrompt(tuple(layout(name, system, message)), Sampling(max_tokens=4))
            started = time.perf_counter()
            completion = await backend.complete(prompt, 600)
            latencies.append(time.perf_counter() - started)
            prompt_tokens += completion.usage.prompt_tokens
            cached_tokens += completion.usage.cached_prompt_tokens
    finally:
        await backend.close()
    after = read_counters(metrics_url)
    hits = after[COUNTERS[0]] - before[COUNTERS[0]]
    queries = after[COUNTERS[1]] - before[COUNTERS[1]]
    return {
        "bench": "prefix",
        "layout": name,
        "requests": len(messages),
        "prompt_tokens_mean": round(prompt_tokens / len(messages), 1),
        "vllm_prefix_cache_hit_ratio": round(hits / queries, 4) if queries else None,
        "usage_cached_token_ratio": round(cached_tokens / prompt_tokens, 4) if prompt_tokens else None,
        "first_request_ms": round(latencies[0] * 1000, 1),
        "later_requests": summarize_ms(latencies[1:]) if len(latencies) > 1 else None,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="costmesh bench prefix", description=__doc__)
    parser.add_argument("--tier", choices=("small", "large"), default="small")
    parser.add_argument("--requests", type=int, default=6, help="per layout (at least 2)")
    parser.add_argument("--system-tokens", type=int, default=2000)
    parser.add_argument("--user-tokens", type=int, default=200)
    args = parser.parse_args(argv)
    if args.requests < 2:
        parser.error("--requests must be at least 2: the first request of a layout only fills the cache")

    stack = StackSettings()
    base_url, model = stack.model_url(args.tier), stack.served_model(args.tier)
    system = handbook(args.system_tokens)
    # Different messages per layout, so the second layout never reuses the first one's cached blocks.
    messages = user_messages(2 * args.requests, args.user_tokens, seed=7)
    rows = [
        asyncio.run(run_layout(name, base_url, model, system, messages[i::2]))
        for i, name in enumerate(("variable_first", "static_first"))
    ]
    for row in rows:
        emit(row)
    variable, static = rows
    emit(
        {
            "bench": "prefix",
            "summary": True,
            "model": model,
            "system_tokens_o200k": count_text(system),
            "hit_ratio_static_first": static["vllm_prefix_cache_hit_ratio"],
            "hit_ratio_variable_first": variable["vllm_prefix_cache_hit_ratio"],
            "later_p50_ms_static_first": static["later_requests"]["p50_ms"],  # type: ignore[index]
            "later_p50_ms_variable_first": variable["later_requests"]["p50_ms"],  # type: ignore[index]
        }
    )
    return 0
