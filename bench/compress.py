"""Few-shot intent classification with and without compressed examples, answered by the large tier.

Each dataset (banking77, CLINC150) gets a prompt with many labelled examples: `--intents` intents drawn
at random, `--shots` training examples each. The examples go through the running compressor service as
DOCUMENT_KIND_EXAMPLE documents: by default whole examples are dropped, the same share per label
(COSTMESH_COMPRESSOR_EXAMPLES=select); with `tokens` LLMLingua shortens each example's input and keeps
its label. Held-out test queries of those intents are then answered by the large tier's vLLM server
twice, interleaved: once with the full examples, once with the compressed ones. The examples are a static
block placed before the query, so the model server's prefix cache serves both prompts after the first
request and the latencies compare answers, not cold prefills.

Reported per dataset and ratio: examples-block tokens (o200k) and the model's prompt tokens before and
after, the ratio reached, accuracy of both prompts and the difference in points, the compression's cold
(first request) and cached latency, and answer latency with each prompt.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections import defaultdict

import grpc

from bench import datasets
from bench.output import emit
from costmesh.v1 import common_pb2, compressor_pb2, compressor_pb2_grpc
from services.cli.settings import StackSettings
from services.common.tokens import count_text
from services.inference.backends.openai_compatible import OpenAICompatibleBackend
from services.inference.backends.vllm import vllm_backend
from services.inference.domain import ChatMessage, ChatPrompt, Completion, Sampling

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
    stub: compressor_pb2_grpc.CompressorAsyncStub, examples: list[str], ratio: float
) -> tuple[list[str], float, str]:
    started = time.perf_counter()
    reply = await stub.Compress(
        compressor_pb2.CompressRequest(
            tenant="bench",
            target_ratio=ratio,
            documents=[
                common_pb2.Document(id=str(i), text=text, kind=common_pb2.DOCUMENT_KIND_EXAMPLE)
                for i, text in enumerate(examples)
            ],
        ),
        timeout=900,
    )
    # Demonstration-level compression empties the examples it drops; the prompt leaves them out.
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
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.compressor_port}") as channel:
        stub: compressor_pb2_grpc.CompressorAsyncStub = compressor_pb2_grpc.CompressorStub(channel)
        try:
            for ratio in args.ratios:
                compressed, cold_s, method = await compress(stub, examples, ratio)
                cached_s = [(await compress(stub, examples, ratio))[1] for _ in range(5)]
                short_prompt = INSTRUCTION.format(labels=label_list, examples="\n\n".join(compressed))
                rows = []
                for query, gold in test:
                    full, full_s = await ask(backend, full_prompt, query)
                    short, short_s = await ask(backend, short_prompt, query)
                    row = {
                        "bench": "compress",
                        "dataset": name,
                        "ratio": ratio,
                        "gold": gold,
                        "full_answer": predicted(full.text, labels),
                        "compressed_answer": predicted(short.text, labels),
                        "full_prompt_tokens": full.usage.prompt_tokens,
                        "compressed_prompt_tokens": short.usage.prompt_tokens,
                        "full_s": round(full_s, 3),
                        "compressed_s": round(short_s, 3),
                    }
                    if args.verbose:
                        emit(row)
                    rows.append(row)
                summary = {
                    "method": method,
                    **dataset_summary(name, ratio, examples, compressed, rows, cold_s, cached_s),
                }
                emit(summary)
                summaries.append(summary)
        finally:
            await backend.close()
    return summaries


def dataset_summary(
    name: str,
    ratio: float,
    examples: list[str],
    compressed: list[str],
    rows: list[dict[str, object]],
    cold_s: float,
    cached_s: list[float],
) -> dict[str, object]:
    def accuracy(key: str) -> float:
        return sum(r[key] == r["gold"] for r in rows) / len(rows)

    def median(key: str) -> float:
        return statistics.median(float(str(r[key])) for r in rows)

    before, after = count_text("\n\n".join(examples)), count_text("\n\n".join(compressed))
    return {
        "bench": "compress",
        "dataset": name,
        "target_ratio": ratio,
        "queries": len(rows),
        "examples": len(examples),
        "example_tokens_before": before,
        "example_tokens_after": after,
        "example_ratio": round(before / max(1, after), 2),
        "prompt_tokens_full_p50": median("full_prompt_tokens"),
        "prompt_tokens_compressed_p50": median("compressed_prompt_tokens"),
        "accuracy_full": round(accuracy("full_answer"), 4),
        "accuracy_compressed": round(accuracy("compressed_answer"), 4),
        "accuracy_delta_points": round(100 * (accuracy("compressed_answer") - accuracy("full_answer")), 2),
        "compress_cold_s": round(cold_s, 2),
        "compress_cached_p50_ms": round(1000 * statistics.median(cached_s), 2),
        "answer_full_p50_s": round(median("full_s"), 3),
        "answer_compressed_p50_s": round(median("compressed_s"), 3),
    }


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
