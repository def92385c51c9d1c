"""Outcome records: both tiers answer each task once, graded against gold, with the cheap answer's signals.

`costmesh router label` runs a workload (the `mixed` one by default, or a replay JSONL file with `gold` and
`grader`) against the two running vLLM servers and appends one JSON line per task. Each tier is asked as a
user would ask it: the task as the user turn, the model's own default chat template and system prompt,
greedy, with token logprobs and their top-5 alternatives. The estimator is trained on these records, and
`costmesh bench cascade` simulates routing policies on them offline, the way RouteLLM and RouterBench
evaluate, before confirming the chosen point live.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from services.common.signals import Signals, signals
from services.inference.backends.base import ChatBackend
from services.inference.backends.vllm import vllm_backend
from services.inference.domain import ChatMessage, ChatPrompt, Completion, Sampling, Usage
from services.inference.pricing import DEFAULT_PRICES, price_of
from services.inference.settings import InferenceSettings
from workloads import graders, mixed
from workloads import requests as workload_file

# Local tiers are priced as the models they stand in for: the inference service's default price rows.
PRICE_MODELS = {tier: str(InferenceSettings.model_fields[f"{tier}_price_model"].default) for tier in ("small", "large")}
# tier -> (OpenAI-compatible base URL, served model name); `costmesh router label` passes the local stack's.
Endpoints = dict[str, tuple[str, str]]
DEFAULT_RECORDS = Path(__file__).resolve().parents[1] / "bench" / "data" / "router" / "mixed_outcomes.jsonl"


@dataclass(frozen=True)
class Task:
    """One request with its gold answer: a mixed-workload task or a line of a replay file."""

    messages: list[tuple[str, str]]
    gold: str
    grader: str
    max_tokens: int
    kind: str = ""
    topic: str = ""


@dataclass(frozen=True)
class TierAnswer:
    text: str
    correct: bool
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    logprobs: list[float] = field(default_factory=list)
    top: list[list[float]] = field(default_factory=list)  # per token, its alternatives' logprobs

    def cost_usd(self, tier: str) -> float:
        usage = Usage(self.prompt_tokens, self.completion_tokens)
        return price_of(usage, DEFAULT_PRICES[PRICE_MODELS[tier]])

    def signals(self) -> Signals:
        return signals(self.logprobs, self.top, self.text)


@dataclass(frozen=True)
class Outcome:
    task: Task
    small: TierAnswer
    large: TierAnswer
    models: dict[str, str]  # tier -> the served model that answered

    @property
    def cheap_good(self) -> bool:
        """The label the estimator learns: the cheap answer is as good as the large one."""
        return self.small.correct or not self.large.correct

    @property
    def text(self) -> str:
        """The last user message: what the router's text features read."""
        return next((c for r, c in reversed(self.task.messages) if r == "user"), "")


def mixed_tasks(n: int, seed: int) -> list[Task]:
    return [Task([("user", t.prompt)], t.gold, t.grader, t.max_tokens, t.kind, t.topic) for t in mixed.tasks(n, seed)]


def file_tasks(path: Path) -> list[Task]:
    """A replay JSONL file; every line needs `gold` (a workload without gold cannot be scored)."""
    return [
        Task(r.messages, r.gold, r.grader, r.max_tokens, r.kind, path.stem)
        for r in workload_file.read(path, need_gold=True)
    ]


def grade(task: Task, completion: Completion) -> bool:
    if task.grader == "choice":
        first = completion.top_logprobs[0] if completion.top_logprobs else ()
        return graders.chosen_letter(completion.text, first) == task.gold.strip().upper()
    return graders.grade(completion.text, task.gold, task.grader)


def answer(task: Task, completion: Completion, latency_s: float) -> TierAnswer:
    return TierAnswer(
        text=completion.text,
        correct=grade(task, completion),
        finish_reason=completion.finish_reason,
        prompt_tokens=completion.usage.prompt_tokens,
        completion_tokens=completion.usage.completion_tokens,
        latency_s=round(latency_s, 3),
        logprobs=[round(lp, 4) for _, lp in completion.logprobs],
        top=[[round(lp, 4) for _, lp in alternatives] for alternatives in completion.top_logprobs],
    )


def prompt_for(task: Task) -> ChatPrompt:
    messages = tuple(ChatMessage(role, content) for role, content in task.messages)
    return ChatPrompt(messages, Sampling(max_tokens=task.max_tokens, logprobs=True))


async def _timed(backend: ChatBackend, prompt: ChatPrompt) -> tuple[Completion, float]:
    started = time.perf_counter()
    completion = await backend.complete(prompt, 900)
    return completion, time.perf_counter() - started


async def record(task: Task, small: ChatBackend, large: ChatBackend) -> Outcome:
    prompt = prompt_for(task)
    (s, s_s), (g, g_s) = await asyncio.gather(_timed(small, prompt), _timed(large, prompt))
    return Outcome(task, answer(task, s, s_s), answer(task, g, g_s), {"small": s.model, "large": g.model})


def key(task: Task) -> str:
    return json.dumps(task.messages)


def already_recorded(out: Path) -> set[str]:
    """Resumable: a long run on CPU may be interrupted; what is in the file is not asked again."""
    return {key(o.task) for o in load(out)} if out.exists() else set()


async def label(tasks: list[Task], done: set[str], out: TextIO, concurrency: int, endpoints: Endpoints) -> int:
    small, large = (vllm_backend(*endpoints[tier], "") for tier in ("small", "large"))
    todo = [t for t in tasks if key(t) not in done]
    gate = asyncio.Semaphore(concurrency)

    async def run(task: Task) -> Outcome:
        async with gate:
            return await record(task, small, large)

    try:
        for finished, pending in enumerate(asyncio.as_completed([run(t) for t in todo]), start=1):
            out.write(json.dumps(asdict(await pending)) + "\n")
            out.flush()
            sys.stderr.write(f"\rrecorded {len(tasks) - len(todo) + finished}/{len(tasks)}")
    finally:
        await small.close()
        await large.close()
    sys.stderr.write("\n")
    return len(todo)


def from_dict(row: dict[str, Any]) -> Outcome:
    t = row["task"]
    # JSON gives the (role, content) pairs back as lists.
    messages = [(str(role), str(content)) for role, content in t["messages"]]
    task = Task(messages, t["gold"], t["grader"], t["max_tokens"], t.get("kind", ""), t.get("topic", ""))
    return Outcome(
        task,
        TierAnswer(**row["small"]),
        TierAnswer(**row["large"]),
        dict(row["models"]),
    )


def load(path: Path) -> list[Outcome]:
    return [from_dict(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def main(argv: list[str], endpoints: Endpoints) -> int:
    parser = argparse.ArgumentParser(prog="costmesh router label", description=__doc__)
    parser.add_argument("--workload", default="mixed", help="mixed, or a replay JSONL file with gold and grader")
    parser.add_argument("-n", "--tasks", type=int, default=400, help="tasks of the mixed workload")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    tasks = mixed_tasks(args.tasks, args.seed) if args.workload == "mixed" else file_tasks(Path(args.workload))
    done = already_recorded(args.out)
    with args.out.open("a") as out:
        asyncio.run(label(tasks, done, out, args.concurrency, endpoints))
    return 0
