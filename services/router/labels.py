"""Routing labels from real outcomes: both tiers answer MMLU questions; "large needed" where the small tier
is wrong and the large tier right.

`costmesh router label` runs this against the running model servers and writes one JSON line per question
with both tiers' answers, correctness, token counts and the small tier's token logprobs (so the router
bench can replay escalation offline). `costmesh router train` learns from the file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from workloads import datasets
from services.cli.settings import StackSettings
from services.inference.backends.base import ChatBackend
from services.inference.backends.vllm import vllm_backend
from services.inference.domain import ChatMessage, ChatPrompt, Completion, Sampling

INSTRUCTION = "Answer the multiple-choice question with the letter of the correct option (A, B, C or D) only."
_LETTER = re.compile(r"\b([ABCD])\b")


@dataclass(frozen=True)
class Outcome:
    text: str  # what the router sees: the question with its options
    topic: str
    gold: str
    small_answer: str
    large_answer: str
    small_correct: bool
    large_correct: bool
    small_logprobs: list[float]
    small_prompt_tokens: int
    small_completion_tokens: int
    large_prompt_tokens: int
    large_completion_tokens: int

    @property
    def large_needed(self) -> bool:
        return self.large_correct and not self.small_correct


def chosen_letter(text: str) -> str:
    found = _LETTER.search(text.strip().upper()[:20])
    return found.group(1) if found else ""


def prompt_for(question: datasets.McQuestion) -> ChatPrompt:
    messages = (ChatMessage("system", INSTRUCTION), ChatMessage("user", question.prompt()))
    return ChatPrompt(messages, Sampling(max_tokens=4, logprobs=True))


async def label_one(question: datasets.McQuestion, small: ChatBackend, large: ChatBackend) -> Outcome:
    prompt = prompt_for(question)
    s, g = await asyncio.gather(small.complete(prompt, 600), large.complete(prompt, 600))
    return outcome(question, s, g)


def outcome(question: datasets.McQuestion, s: Completion, g: Completion) -> Outcome:
    return Outcome(
        text=question.prompt(),
        topic=question.topic,
        gold=question.answer,
        small_answer=s.text,
        large_answer=g.text,
        small_correct=chosen_letter(s.text) == question.answer,
        large_correct=chosen_letter(g.text) == question.answer,
        small_logprobs=[round(lp, 4) for _, lp in s.logprobs],
        small_prompt_tokens=s.usage.prompt_tokens,
        small_completion_tokens=s.usage.completion_tokens,
        large_prompt_tokens=g.usage.prompt_tokens,
        large_completion_tokens=g.usage.completion_tokens,
    )


def already_labelled(out: Path) -> set[str]:
    """Resumable: a long run on CPU may be interrupted; what is in the file is not asked again."""
    if not out.exists():
        return set()
    return {json.loads(line)["text"] for line in out.read_text().splitlines() if line.strip()}


async def label(questions: list[datasets.McQuestion], done: set[str], out: TextIO, concurrency: int) -> None:
    stack = StackSettings()
    small, large = (vllm_backend(stack.model_url(t), stack.served_model(t), "") for t in ("small", "large"))
    todo = [q for q in questions if q.prompt() not in done]
    gate = asyncio.Semaphore(concurrency)

    async def run(question: datasets.McQuestion) -> Outcome:
        async with gate:
            return await label_one(question, small, large)

    try:
        for finished, task in enumerate(asyncio.as_completed([run(q) for q in todo]), start=1):
            result = await task
            out.write(json.dumps(asdict(result)) + "\n")
            out.flush()
            sys.stderr.write(f"\rlabelled {len(done) + finished}/{len(questions)}")
    finally:
        await small.close()
        await large.close()
    sys.stderr.write("\n")


def load(path: Path) -> list[Outcome]:
    return [Outcome(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="costmesh router label", description=__doc__)
    parser.add_argument("--n", type=int, default=400, help="MMLU questions, sampled with --seed")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    questions = datasets.sample(datasets.mmlu(), args.n, args.seed)
    done = already_labelled(args.out)
    with args.out.open("a") as out:
        asyncio.run(label(questions, done, out, args.concurrency))
    return 0
