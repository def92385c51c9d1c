"""`costmesh replay`: sends a workload through the running mesh and records every decision per request.

Built-in workloads (offline, public data): `support` (banking77 and CLINC150 customer queries, drawn
with replacement from a pool, so repeats and paraphrases arrive as they do in a real FAQ stream),
`knowledge` (MMLU questions with gold answers: quality is scored), `open` (MT-Bench questions), `chat`
(Chit Chat Challenge conversations, each request the history up to a user turn), `mixed` (what a cascade
is for: easy lookups and short tasks beside hard reasoning, every item with a gold answer and its grader;
see bench/mixed.py) and `rag` (an MMLU
question with long retrieved context: passages stating the answers to other questions of its topic, one
of them the fact that answers it, sent as DOCUMENT_KIND_CONTEXT so the compressor works on them). A FILE is OpenAI chat
format JSONL, one request per line: {"messages": [...], "max_tokens": ..., "gold": "...", "grader": "..."}
(gold optional; grader one of choice | number | exact | contains, default contains: bench/graders.py).

The run is written to runs/RUN_ID/requests.jsonl (one line per request) and runs/RUN_ID/run.json (with
what the orchestrator's spot-checks of semantic hits found meanwhile, bench/spotchecks.py); read it with
`costmesh report RUN_ID`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from bench import spotchecks
from costmesh.v1 import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from launcher.settings import ROOT, StackSettings
from services.common.contracts import TIER_CHOICES as TIERS
from services.common.interceptors import client_channel
from services.common.openai_wire import ROLES
from workloads import datasets, graders, mixed
from workloads import requests as workload_file

RUNS = ROOT / "runs"
MODEL_STAGES = ("inference", "escalation")  # time spent in the model, not added by the mesh


@dataclass(frozen=True)
class Item:
    messages: list[tuple[str, str]]  # (role, content)
    gold: str = ""  # a gold answer where the data has one (MMLU: the letter)
    max_tokens: int = 64
    context: tuple[str, ...] = ()  # retrieved passages, sent as documents
    grader: str = "choice"  # how the answer is read against gold (bench/graders.py)
    kind: str = ""  # what sort of task, for per-kind figures


def support(n: int, seed: int) -> list[Item]:
    rng = random.Random(seed)
    pool = datasets.sample(datasets.banking77("test"), n // 2, seed) + datasets.sample(
        datasets.clinc150("test"), n // 2, seed
    )
    # A third of the stream repeats an earlier query word for word; paraphrases come from the datasets'
    # many wordings of one intent.
    stream: list[str] = []
    for i in range(n):
        stream.append(rng.choice(stream) if stream and rng.random() < 1 / 3 else pool[i % len(pool)][0])
    return [Item([("user", q)], max_tokens=48) for q in stream]


def knowledge(n: int, seed: int) -> list[Item]:
    # The instruction goes in the user turn: each model keeps its own default system prompt.
    return [
        Item([("user", mixed.choice_prompt(q.prompt()))], gold=q.answer, max_tokens=8, kind="mmlu")
        for q in datasets.sample(datasets.mmlu(), n, seed)
    ]


def mixed_workload(n: int, seed: int) -> list[Item]:
    return [
        Item([("user", t.prompt)], gold=t.gold, max_tokens=t.max_tokens, grader=t.grader, kind=t.kind)
        for t in mixed.tasks(n, seed)
    ]


def rag(n: int, seed: int, passages: int = 12) -> list[Item]:
    rng = random.Random(seed)
    questions = datasets.mmlu()
    by_topic: dict[str, list[datasets.McQuestion]] = {}
    for q in questions:
        by_topic.setdefault(q.topic, []).append(q)

    def fact(q: datasets.McQuestion) -> str:
        return f"{q.question.strip()} The answer is: {q.choices['ABCD'.index(q.answer)].strip()}."

    items = []
    for q in datasets.sample(questions, n, seed):
        others = [o for o in by_topic[q.topic] if o is not q]
        context = [fact(o) for o in rng.sample(others, min(passages - 1, len(others)))]
        context.insert(rng.randrange(len(context) + 1), fact(q))  # the passage that answers it
        instruction = "Answer from the context. Reply with the letter of the correct option only."
        items.append(Item([("system", instruction), ("user", q.prompt())], q.answer, 4, tuple(context)))
    return items


def open_questions(n: int, seed: int) -> list[Item]:
    return [Item([("user", q)], max_tokens=96) for _, q in datasets.sample(datasets.mtbench(), n, seed)]


def chat(n: int, seed: int) -> list[Item]:
    items = []
    for conversation in datasets.sample(datasets.chitchat(min_messages=10), n, seed):
        ends = [i + 1 for i, (role, _) in enumerate(conversation) if role == "user"]
        if ends:
            items.append(Item(list(conversation[: ends[-1]]), max_tokens=48))
    return items


WORKLOADS = {
    "support": support,
    "knowledge": knowledge,
    "open": open_questions,
    "chat": chat,
    "rag": rag,
    "mixed": mixed_workload,
}


def from_file(path: Path) -> list[Item]:
    return [Item(r.messages, r.gold, r.max_tokens, grader=r.grader, kind=r.kind) for r in workload_file.read(path)]


def request(item: Item, tenant: str, tier: str, no_cache: bool) -> orchestrator_pb2.CompletionRequest:
    return orchestrator_pb2.CompletionRequest(
        tenant=tenant,
        messages=[common_pb2.Message(role=ROLES[role], content=content) for role, content in item.messages],
        sampling=common_pb2.SamplingParams(max_tokens=item.max_tokens),
        tier=TIERS[tier],
        cache=common_pb2.CacheControl(no_cache=no_cache, no_store=no_cache),
        documents=[
            common_pb2.Document(id=f"p{i}", text=text, kind=common_pb2.DOCUMENT_KIND_CONTEXT)
            for i, text in enumerate(item.context)
        ],
    )


def correct(answer: str, item: Item) -> bool | None:
    return graders.grade(answer, item.gold, item.grader) if item.gold else None


def record(item: Item, response: orchestrator_pb2.CompletionResponse, latency_s: float) -> dict[str, Any]:
    stages = {t.stage: t.duration_ms for t in response.stages}
    model_ms = sum(stages.get(s, 0.0) for s in MODEL_STAGES)
    return {
        "request_id": response.request_id,
        "latency_ms": round(1000 * latency_s, 3),
        "mesh_added_ms": round(max(0.0, 1000 * latency_s - model_ms), 3),
        "stages_ms": stages,
        "cache": common_pb2.CacheHitKind.Name(response.cache.kind).removeprefix("CACHE_HIT_KIND_").lower(),
        "similarity": round(response.cache.similarity, 4),
        "tier": common_pb2.Tier.Name(response.route.tier).removeprefix("TIER_").lower(),
        "escalated": response.route.escalated,
        "escalation_reason": response.route.escalation_reason,
        "compression": [response.compression.tokens_before, response.compression.tokens_after],
        "pruning": [response.pruning.tokens_before, response.pruning.tokens_after],
        "prompt_tokens": response.usage.prompt_tokens,
        "completion_tokens": response.usage.completion_tokens,
        "cost_usd": response.cost.cost_usd,
        "baseline_cost_usd": response.cost.baseline_cost_usd,
        "savings_by_intervention": dict(response.cost.savings_by_intervention),
        "model": response.model,
        "price_model": response.cost.price_model,  # with model: real provider or a stand-in (bench/report.py)
        "correct": correct(response.answer, item),
    }


def progress(done: int, total: int, errors: int) -> None:
    filled = 30 * done // max(1, total)
    print(
        f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} errors {errors}", end="", file=sys.stderr, flush=True
    )


async def replay(items: list[Item], address: str, args: argparse.Namespace, out: Path) -> tuple[int, int]:
    tenant = f"replay-{out.parent.name}"
    semaphore = asyncio.Semaphore(args.concurrency)
    done = errors = 0
    # An offline tool of the operator's: the mesh token lets it name the tenant its runs are kept under.
    async with client_channel(address, token=StackSettings().mesh_token()) as channel:
        stub: orchestrator_pb2_grpc.OrchestratorAsyncStub = orchestrator_pb2_grpc.OrchestratorStub(channel)
        with out.open("w") as sink:

            async def one(index: int, item: Item) -> None:
                nonlocal done, errors
                async with semaphore:
                    started = time.perf_counter()
                    try:
                        response = await stub.Complete(
                            request(item, tenant, args.tier, args.no_cache), timeout=args.timeout_s
                        )
                        row = {"index": index, **record(item, response, time.perf_counter() - started)}
                    except grpc.aio.AioRpcError as e:
                        errors += 1
                        row = {"index": index, "error": f"{e.code().name}: {e.details()}"}
                    sink.write(json.dumps(row) + "\n")
                    done += 1
                    progress(done, len(items), errors)

            await asyncio.gather(*(one(i, item) for i, item in enumerate(items)))
    print(file=sys.stderr)
    return done, errors


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="costmesh replay", description=__doc__)
    parser.add_argument("--workload", required=True, help=f"{', '.join(WORKLOADS)} or a JSONL file")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("-n", "--requests", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout-s", type=float, default=300.0)
    parser.add_argument("--address", default="")
    parser.add_argument("--tier", choices=sorted(TIERS), default="auto", help="large + --no-cache: a baseline run")
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument(
        "--metrics-url", default="", help="the orchestrator's /metrics (default: the local stack's, without --address)"
    )
    parser.add_argument("--settle-s", type=float, default=60.0, help="the longest wait for spot-checks in flight")
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.requests < 1:
        parser.error("--concurrency and --requests must be >= 1")
    if args.workload in WORKLOADS:
        items = WORKLOADS[args.workload](args.requests, args.seed)
    else:
        items = from_file(Path(args.workload))[: args.requests]
    stack = StackSettings()
    run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{Path(args.workload).stem}-{uuid.uuid4().hex[:6]}"
    folder = RUNS / run_id
    folder.mkdir(parents=True)
    started = time.time()
    address = args.address or f"127.0.0.1:{stack.orchestrator_port}"
    # The orchestrator's /metrics is on the stack's base port (launcher/components.py).
    metrics_url = args.metrics_url or ("" if args.address else f"http://127.0.0.1:{stack.metrics_base_port}/metrics")
    before = spotchecks.read(metrics_url) if metrics_url else None
    done, errors = asyncio.run(replay(items, address, args, folder / "requests.jsonl"))
    seconds = round(time.time() - started, 1)
    checked = spotchecks.delta(before, spotchecks.settle(metrics_url, args.settle_s)) if before else None
    (folder / "run.json").write_text(
        json.dumps(
            {
                "run_id": run_id,
                "workload": args.workload,
                "requests": done,
                "errors": errors,
                "concurrency": args.concurrency,
                "tier": args.tier,
                "no_cache": args.no_cache,
                "seconds": seconds,
                "cache_semantic_check": checked,  # the orchestrator's spot-checks (bench/spotchecks.py)
                # Local stand-ins are priced as the models they stand in for (README, "Models").
                "tiers": "OpenAI gpt-4o-mini / gpt-4o"
                if stack.openai_api_key
                else f"local stand-ins {stack.small_model} / {stack.large_model}, priced as gpt-4o-mini / gpt-4o",
            },
            indent=2,
        )
    )
    print(run_id)
    return 0 if done and errors < done else 1
