"""Workload files: OpenAI chat format JSONL, one request per line, optionally with a gold answer.

{"messages": [{"role", "content"}, ...], "max_tokens": 64, "gold": "...", "grader": "contains", "kind": ""}
Read by `costmesh replay` and, with gold required, by `costmesh router label` and `bench cascade`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from workloads import graders


@dataclass(frozen=True)
class RequestLine:
    messages: list[tuple[str, str]]
    gold: str
    grader: str
    max_tokens: int
    kind: str


def read(path: Path, need_gold: bool = False) -> list[RequestLine]:
    """Every line of the file; a malformed one stops the run with its line number (SystemExit)."""
    lines = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            messages = [(str(m["role"]), str(m["content"])) for m in data["messages"]]
            max_tokens = int(data.get("max_tokens", 64))
        except (ValueError, KeyError, TypeError) as e:
            raise SystemExit(f"{path}:{number}: not an OpenAI chat request ({e})") from None
        gold, grader = str(data.get("gold", "")), str(data.get("grader", "contains"))
        if need_gold and not gold:
            raise SystemExit(f"{path}:{number}: needs a gold answer to be scored")
        if grader not in graders.GRADERS:
            raise SystemExit(f"{path}:{number}: unknown grader {grader!r}; known: {', '.join(graders.GRADERS)}")
        lines.append(RequestLine(messages, gold, grader, max_tokens, str(data.get("kind", ""))))
    return lines
