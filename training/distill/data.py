"""A task's files under .data/tasks/<task>/, and the data sets they hold. Plain files, no services.

  labels.jsonl                 one row per input: text, gold (when the source has labels), teacher, split
  collect.cursor               the last pair id `distill collect` read from the orchestrator's stream
  students/<name>/             train.jsonl (student format), adapter/, loss.svg, train.json, eval.json

The held-out split is fixed by a hash of the text (or by the source, for a data set with its own test
file: `distill label --split test`), and a row never changes split once labelled: it never moves as rows
are added, a collected duplicate of a test row stays in test, and no input is ever in both splits.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

TEST_SHARE = 5  # one text in five is held out


@dataclass(frozen=True)
class Row:
    text: str
    gold: str = ""
    teacher: str = ""
    split: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def split_of(text: str) -> str:
    digest = hashlib.sha256(" ".join(text.lower().split()).encode()).digest()
    return "test" if digest[0] % TEST_SHARE == 0 else "train"


def task_dir(data_dir: Path, task: str) -> Path:
    return data_dir / "tasks" / task


def labels_file(data_dir: Path, task: str) -> Path:
    return task_dir(data_dir, task) / "labels.jsonl"


def read_source(path: Path, text_field: str = "text", label_field: str = "") -> list[Row]:
    """Inputs to label: CSV with a header, or JSONL objects. `label_field` names a gold label column
    (banking77's is `category`); empty: look for `label`, then `category`, else no gold."""
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.suffix == ".csv":
        with path.open(newline="") as f:
            records: list[dict[str, str]] = list(csv.DictReader(f))
    else:
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not records:
        raise ValueError(f"{path} has no rows")
    if text_field not in records[0]:
        raise ValueError(f"{path} has no {text_field!r} field; fields: {sorted(records[0])}")
    gold = label_field or next((f for f in ("label", "category") if f in records[0]), "")
    rows, seen = [], set()
    for record in records:
        text = str(record.get(text_field, "")).strip()
        if text and text not in seen:  # duplicates would weigh twice and leak across splits' counts
            seen.add(text)
            rows.append(Row(text=text, gold=str(record.get(gold, "")) if gold else "", split=split_of(text)))
    return rows


def read_rows(path: Path) -> list[Row]:
    if not path.exists():
        return []
    return [Row(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def write_rows(path: Path, rows: Iterable[Row]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    count = 0
    with tmp.open("w") as f:
        for row in rows:
            f.write(json.dumps(row.as_dict(), ensure_ascii=False) + "\n")
            count += 1
    tmp.replace(path)  # readers never see half a file
    return count


def merge(old: Iterable[Row], new: Iterable[Row]) -> list[Row]:
    """Rows by text; a new teacher label replaces an old one, a gold label is never lost."""
    by_text = {row.text: row for row in old}
    for row in new:
        before = by_text.get(row.text)
        gold = row.gold or (before.gold if before else "")
        split = before.split if before else (row.split or split_of(row.text))  # a row never changes split
        by_text[row.text] = Row(row.text, gold, row.teacher or (before.teacher if before else ""), split)
    return list(by_text.values())


def labelled(rows: Iterable[Row], split: str) -> Iterator[Row]:
    return (row for row in rows if row.split == split and row.teacher)


def spread(rows: list[Row], limit: int) -> list[Row]:
    """At most `limit` rows, taken evenly across the list (a source sorted by label keeps every label)."""
    if limit <= 0 or limit >= len(rows):
        return rows
    step = len(rows) / limit
    return [rows[int(i * step)] for i in range(limit)]
