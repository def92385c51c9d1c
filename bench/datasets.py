"""Loaders for the public datasets copied into bench/data (licences beside each)."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
DATA = Path(__file__).resolve().parent / "data"

Labelled = list[tuple[str, str]]  # (text, intent)


def banking77(split: str) -> Labelled:
    with (DATA / "banking77" / f"{split}.csv").open(newline="") as f:
        return [(row["text"], row["category"]) for row in csv.DictReader(f)]


def clinc150(split: str) -> Labelled:
    data = json.loads((DATA / "clinc150" / "data_full.json").read_text())
    return [(text, intent) for text, intent in data[split]]


def mrpc() -> list[tuple[str, str, bool]]:
    """(sentence 1, sentence 2, human says paraphrase)."""
    rows = []
    with (DATA / "mrpc" / "msr-para-test.tsv").open(encoding="utf-8-sig") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        for quality, _, _, first, second in reader:
            rows.append((first, second, quality == "1"))
    return rows


def sample(items: list[T], n: int, seed: int) -> list[T]:
    return random.Random(seed).sample(items, min(n, len(items)))
