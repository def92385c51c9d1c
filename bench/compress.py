"""Few-shot intent classification with and without compressed examples, answered by the large tier.

Each dataset (banking77, CLINC150) gets a prompt with many labelled examples: `--intents` intents drawn
at random, `--shots` training examples each. The examples go through the running compressor service as
DOCUMENT_KIND_EXAMPLE documents, with the test query as the question, once per query. By default
(COSTMESH_COMPRESSOR_EXAMPLES=nearest) whole examples are dropped: a static share is kept for every query
and the rest of the budget goes to the examples nearest the query, after the static ones; with `select`
only the static subset is kept; with `tokens` LLMLingua shortens each example's input and keeps its
label. Held-out test queries of those intents are then answered by the large tier's vLLM server twice,
interleaved: once with the full examples, once with the compressed ones. The examples sit before the
query, so the model server's prefix cache serves the shared prefix of each prompt after the first request.

Reported per dataset and ratio: examples-block tokens (o200k) before and after (median over queries), the
ratio reached, the model's prompt tokens and the tokens its prefix cache served with each prompt, accuracy
of both prompts and the difference in points, the compression's cold (first request) and per-query
latency, and answer latency with each prompt.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections import defaultdict

from bench.output import emit
from costmesh.v1 import common_pb2, compressor_pb2, compressor_pb2_grpc
from launcher.settings import StackSettings
from services.common.interceptors import client_channel
from services.common.tokens import count_text
from services.inference.backends.openai_compatible import OpenAICompatibleBackend
from services.inference.backends.vllm import vllm_backend
from services.inference.domain import ChatMessage, ChatPrompt, Completion, Sampling, Usage
from services.inference.pricing import DEFAULT_PRICES, price_of
from workloads import datasets

# The dollars of each prompt are priced as the large tier's OpenAI counterpart would bill the tokens the
# model server measured, cached ones at the cached-input price: compression competes with the prefix cache.
PRICED_AS = "gpt-4o"
LOADERS = {"banking77": datasets.banking77, "clinc150": datasets.clinc150}
INSTRUCTION = (
    "Classify the customer query into exactly one of these intents:\n{labels}\n\n"
    "Answer with the intent name only. Labelled examples follow.\n\n{examples}"
)


def few_shot_task(
    name: str, intents: int, shots: int, queries: int, seed: int
) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """(labels, examples as 'Query: ...\\nIntent: ...', test (query, label) pairs), all from public splits."""
    rng = random.Random(seed)
    train = defaultdict(list)
    for text, label in LOADERS[name]("train"):
        train[label].append(text)
    labels = sorted(rng.sample(sorted(train), intents))
    examples = [f"Query: {text}\nIntent: {label}" for label in labels for text in train[label][:shots]]
    rng.shuffle(examples)
    test = [(text, label) for text, label in LOADERS[name]("test") if label in set(labels)]
    return labels, examples, datasets.sample(test, queries, seed)


def predicted(answer: str, labels: list[str]) -> str:
    """The label the answer names: an exact match, else the longest label it contains, else the one label
    it is the start of (an answer cut by max_tokens)."""
    said = answer.strip().strip(".").lower()
    found = [label for label in labels if label.lower() == said] or [
        label for label in sorted(labels, key=len, reverse=True) if label.lower() in said
    ]
    starts = [label for label in labels if said and label.lower().startswith(said)]
    return found[0] if found else starts[0] if len(starts) == 1 else said


async def compress(
    stub: compressor_pb2_grpc.CompressorAsyncStub, examples: list[str], ratio: float, question: str
) -> tuple[list[str], float, str]:
    started = time.perf_counter()
    reply = await stub.Compress(
        compressor_pb2.CompressRequest(
            tenant="bench",
            target_ratio=ratio,
            question=question,
            documents=[
                common_pb2.Document(id=str(i), text=text, kind=common_pb2.DOCUMENT_KIND_EXAMPLE)
                for i, text in enumerate(examples)
            ],
        ),
        timeout=900,
    )
    # Demonstration-level compression empties the examples it drops and moves the ones picked for the
    # question after the static ones; the prompt leaves the empty ones out and keeps the order.
    return [d.text for d in reply.documents if d.text], time.perf_counter() - started, reply.report.method


async def ask(backend: OpenAICompatibleBackend, system: str, query: str) -> tuple[Completion, float]:
    prompt = ChatPrompt(
        (ChatMessage("system", system), ChatMessage("user", f"Query: {query}\nIntent:")),
        Sampling(max_tokens=20, stop=("\n",)),  # the longest intent names are about 15 tokens
    )
    started = time.perf_counter()
    completion = await backend.complete(prompt, 600)
    return completion, time.perf_counter() - started


async def run_dataset(name: str, args: argparse.Namespace, stack: StackSettings) -> list[dict[str, object]]:
    labels, examples, test = few_shot_task(name, args.intents, args.shots, args.queries, args.seed)
    label_list = "\n".join(labels)
    full_prompt = INSTRUCTION.format(labels=label_list, examples="\n\n".join(examples))
    backend = vllm_backend(stack.model_url("large"), stack.large_model, "")
    summaries = []
    async with client_channel(f"127.0.0.1:{stack.compressor_port}", token=stack.mesh_token()) as channel:
        stub: compressor_pb2_grpc.CompressorAsyncStub = compressor_pb2_grpc.CompressorStub(channel)
        try:
            for ratio in args.ratios:
                cold_s = (await compress(stub, examples, ratio, test[0][0]))[1]
                rows = []
                for query, gold in test:
                    compressed, compress_s, method = await compress(stub, examples, ratio, query)
                    short_prompt = INSTRUCTION.format(labels=label_list, examples="\n\n".join(compressed))
                    full, full_s = await ask(backend, full_prompt, query)
                    short, short_s = await ask(backend, short_prompt, query)
                    row = {
                        "bench": "compress",
                        "dataset": name,
                        "ratio": ratio,
                        "gold": gold,
                        "full_answer": predicted(full.text, labels),
                        "compressed_answer": predicted(short.text, labels),
                        "example_tokens": count_text("\n\n".join(compressed)),
                        "full_prompt_tokens": full.usage.prompt_tokens,
                        "compressed_prompt_tokens": short.usage.prompt_tokens,
                        "full_cached_tokens": full.usage.cached_prompt_tokens,
                        "compressed_cached_tokens": short.usage.cached_prompt_tokens,
                        "compress_s": round(compress_s, 4),
                        "full_usd": input_usd(full.usage),
                        "compressed_usd": input_usd(short.usage),
                        "full_s": round(full_s, 3),
                        "compressed_s": round(short_s, 3),
                    }
                    if args.verbose:
                        emit(row)
                    rows.append(row)
                summary = {
                    "method": method,
                    **dataset_summary(name, ratio, examples, rows, cold_s),
                }
                emit(summary)
                summaries.append(summary)
        finally:
            await backend.close()
    return summaries


def input_usd(usage: Usage) -> float:
    return price_of(Usage(usage.prompt_tokens, 0, usage.cached_prompt_tokens), DEFAULT_PRICES[PRICED_AS])


def dataset_summary(
    name: str,
    ratio: float,
    examples: list[str],
    rows: list[dict[str, object]],
    cold_s: float,
) -> dict[str, object]:
    def accuracy(key: str) -> float:
        return sum(r[key] == r["gold"] for r in rows) / len(rows)

    def median(key: str) -> float:
        return statistics.median(float(str(r[key])) for r in rows)

    before, after = count_text("\n\n".join(examples)), median("example_tokens")
    return {
        "bench": "compress",
        "dataset": name,
        "target_ratio": ratio,
        "queries": len(rows),
        "examples": len(examples),
        "example_tokens_before": before,
        "example_tokens_after_p50": after,
        "example_ratio": round(before / max(1, after), 2),
        "prompt_tokens_full_p50": median("full_prompt_tokens"),
        "prompt_tokens_compressed_p50": median("compressed_prompt_tokens"),
        "prefix_cached_tokens_full_p50": median("full_cached_tokens"),
        "prefix_cached_tokens_compressed_p50": median("compressed_cached_tokens"),
        # Per query, with the prefix cache's measured hits: below 1 means compression saves money.
        f"input_cost_ratio_as_{PRICED_AS}": round(
            sum(float(str(r["compressed_usd"])) for r in rows) / sum(float(str(r["full_usd"])) for r in rows), 3
        ),
        "accuracy_full": round(accuracy("full_answer"), 4),
        "accuracy_compressed": round(accuracy("compressed_answer"), 4),
        "accuracy_delta_points": round(100 * (accuracy("compressed_answer") - accuracy("full_answer")), 2),
        "accuracy_delta_ci95_points": round(100 * paired_ci95(rows), 2),
        "compress_cold_s": round(cold_s, 2),
        "compress_p50_ms": round(1000 * median("compress_s"), 2),
        "answer_full_p50_s": round(median("full_s"), 3),
        "answer_compressed_p50_s": round(median("compressed_s"), 3),
    }


def paired_ci95(rows: list[dict[str, object]]) -> float:
    """Half-width of the normal-approximation 95 % interval of the accuracy difference, paired per query:
    with a few dozen queries a difference of a few points is within noise."""
    diffs = [int(r["compressed_answer"] == r["gold"]) - int(r["full_answer"] == r["gold"]) for r in rows]
    return 1.96 * statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else float("nan")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="costmesh bench compress", description=__doc__)
    parser.add_argument("--datasets", default="banking77,clinc150")
    parser.add_argument("--intents", type=int, default=10)
    parser.add_argument("--shots", type=int, default=8, help="training examples per intent in the prompt")
    parser.add_argument("--queries", type=int, default=24, help="held-out test queries per dataset")
    parser.add_argument("--ratios", type=lambda s: [float(r) for r in s.split(",")], default=[2.0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--verbose", action="store_true", help="print every query's row too")
    args = parser.parse_args(argv)
    stack = StackSettings()
    summaries = []
    for name in args.datasets.split(","):
        summaries += asyncio.run(run_dataset(name, args, stack))
    n = sum(int(str(s["queries"])) for s in summaries)
    emit(
        {
            "bench": "compress",
            "summary": True,
            "queries": n,
            "example_ratio_min": min(float(str(s["example_ratio"])) for s in summaries),
            "accuracy_delta_points_worst": min(float(str(s["accuracy_delta_points"])) for s in summaries),
        }
    )
    return 0
