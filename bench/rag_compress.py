"""`costmesh bench rag-compress`: what the LlamaIndex postprocessor saves on retrieval-augmented answers.

The questions are the `rag` workload's (bench/replay.py): an MMLU question with `--passages` retrieved
passages, each a fact "question. The answer is: X." of its topic, one of them the fact that answers it.
The passages become LlamaIndex nodes (scored by rank) and go through `CompressorPostprocessor` against the
running compressor, with the question as the question; then the large tier answers through the gateway
(LlamaIndex's OpenAILike, `costmesh-large`, no cache) twice, interleaved: with the retrieved nodes and
with the compressed ones.

Reported per question (with --verbose) and in the summary: context tokens (o200k) before and after, the
ratio, the input cost of each prompt priced as gpt-4o's input would be (the model's own prompt-token
count too), the share of questions whose answer text survived compression, accuracy of both prompts with
95 % Wilson intervals, and the compression's latency. Needs `pip install costmesh[llamaindex]`.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import time
from dataclasses import dataclass
from typing import Any

from bench.output import emit
from bench.replay import Item, rag
from bench.stats import summarize_ms, wilson
from launcher.settings import StackSettings
from services.common.tokens import count_messages
from services.inference.domain import Usage
from services.inference.pricing import DEFAULT_PRICES, price_of
from workloads import graders

PRICED_AS = "gpt-4o"  # the large tier's OpenAI counterpart
NO_CACHE = {"x-costmesh-cache-control": "no-cache, no-store"}  # both prompts reach the model every run


@dataclass(frozen=True)
class Prompted:
    correct: bool
    context_tokens: int
    prompt_tokens: int  # the whole prompt, o200k
    model_prompt_tokens: int  # as the model server counted them
    input_usd: float


def answer_text(item: Item) -> str:
    """The gold option's text, read back from the question's prompt ("B. text")."""
    match = re.search(rf"^{item.gold}\. (.*)$", item.messages[-1][1], re.MULTILINE)
    return match.group(1).strip() if match else ""


def prompt(item: Item, passages: list[str]) -> list[tuple[str, str]]:
    system, question = item.messages[0][1], item.messages[-1][1]
    context = "\n\n".join(passages)
    return [("system", system), ("user", f"Context:\n{context}\n\nQuestion: {question}")]


async def ask(llm: Any, chat_message: Any, item: Item, passages: list[str]) -> Prompted:
    messages = prompt(item, passages)
    reply = await llm.achat([chat_message(role=role, content=content) for role, content in messages])
    usage = getattr(reply.raw, "usage", None)
    tokens = count_messages(messages)
    return Prompted(
        graders.grade(str(reply.message.content or ""), item.gold, item.grader),
        count_messages([("user", "\n\n".join(passages))]),
        tokens,
        int(getattr(usage, "prompt_tokens", 0) or 0),
        price_of(Usage(tokens, 0, 0), DEFAULT_PRICES[PRICED_AS]),
    )


async def run(args: argparse.Namespace, stack: StackSettings) -> dict[str, object]:
    from llama_index.core.llms import ChatMessage  # noqa: PLC0415 - the extra is needed by this bench only
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode  # noqa: PLC0415

    from costmesh.integrations.llamaindex import CompressorPostprocessor, gateway_llm  # noqa: PLC0415

    compressor = CompressorPostprocessor(
        tenant=args.tenant,
        address=f"127.0.0.1:{stack.compressor_port}",
        token=stack.mesh_token(),
        target_ratio=args.ratio,
        timeout_s=args.compress_timeout_s,
    )
    llm = gateway_llm(
        args.api_key, model=args.model, port=stack.gateway_port, max_tokens=4, default_headers=NO_CACHE, timeout=300
    )
    rows: list[tuple[Prompted, Prompted, bool, float]] = []
    for i, item in enumerate(rag(args.questions, args.seed, args.passages)):
        nodes = [
            NodeWithScore(node=TextNode(text=text, id_=f"q{i}-p{j}"), score=1.0 - j / len(item.context))
            for j, text in enumerate(item.context)
        ]
        started = time.perf_counter()
        kept = await compressor.apostprocess_nodes(nodes, QueryBundle(item.messages[-1][1]))
        seconds = time.perf_counter() - started
        shorter = [n.node.get_content() for n in kept]
        full = await ask(llm, ChatMessage, item, list(item.context))
        short = await ask(llm, ChatMessage, item, shorter)
        fact = answer_text(item).lower()
        rows.append((full, short, bool(fact) and fact in " ".join(shorter).lower(), seconds))
        if args.verbose:
            emit(
                {
                    "bench": "rag-compress",
                    "question": i,
                    "context_tokens": [full.context_tokens, short.context_tokens],
                    "correct": [full.correct, short.correct],
                    "answer_kept": rows[-1][2],
                    "compress_ms": round(seconds * 1000, 1),
                }
            )
    return summary(rows, args)


def summary(rows: list[tuple[Prompted, Prompted, bool, float]], args: argparse.Namespace) -> dict[str, object]:
    n = len(rows)
    full = [r[0] for r in rows]
    short = [r[1] for r in rows]
    right_full, right_short, kept = (
        sum(p.correct for p in full),
        sum(p.correct for p in short),
        sum(r[2] for r in rows),
    )
    before, after = sum(p.context_tokens for p in full), sum(p.context_tokens for p in short)
    usd_before, usd_after = sum(p.input_usd for p in full), sum(p.input_usd for p in short)
    return {
        "bench": "rag-compress",
        "summary": True,
        "questions": n,
        "passages": args.passages,
        "model": args.model,
        "context_tokens_before": before,
        "context_tokens_after": after,
        "context_ratio": round(before / after, 3) if after else None,
        "context_ratio_median": round(
            statistics.median(f.context_tokens / max(1, s.context_tokens) for f, s in zip(full, short, strict=True)), 3
        )
        if n
        else None,
        "prompt_tokens_before": sum(p.prompt_tokens for p in full),
        "prompt_tokens_after": sum(p.prompt_tokens for p in short),
        "model_prompt_tokens_before": sum(p.model_prompt_tokens for p in full),
        "model_prompt_tokens_after": sum(p.model_prompt_tokens for p in short),
        "priced_as": PRICED_AS,
        "input_usd_before": round(usd_before, 8),
        "input_usd_after": round(usd_after, 8),
        "input_saving": round(1 - usd_after / usd_before, 4) if usd_before else None,
        "answer_kept_rate": round(kept / n, 4) if n else None,
        "answer_kept_ci95": wilson(kept, n),
        "accuracy_before": round(right_full / n, 4) if n else None,
        "accuracy_before_ci95": wilson(right_full, n),
        "accuracy_after": round(right_short / n, 4) if n else None,
        "accuracy_after_ci95": wilson(right_short, n),
        "accuracy_delta_points": round(100 * (right_short - right_full) / n, 2) if n else None,
        "compress_latency": summarize_ms([r[3] for r in rows]) if n else None,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="costmesh bench rag-compress", description=__doc__)
    parser.add_argument("--api-key", required=True, help="a costmesh key: costmesh keys create --tenant T")
    parser.add_argument("--tenant", default="bench", help="the key's tenant")
    parser.add_argument("--questions", type=int, default=30)
    parser.add_argument("--passages", type=int, default=12, help="retrieved passages per question")
    parser.add_argument("--ratio", type=float, default=0.0, help="tokens before / after to aim for; 0: the service's")
    parser.add_argument("--model", default="costmesh-large", help="the gateway model that answers both prompts")
    parser.add_argument("--compress-timeout-s", type=float, default=300.0, help="a cold block takes tens of seconds")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--verbose", action="store_true", help="print every question's row too")
    args = parser.parse_args(argv)
    emit(asyncio.run(run(args, StackSettings())))
    return 0
