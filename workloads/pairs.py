"""Labelled cache pairs: does a request stored as `a` have the right answer for a lookup of `b`?

One JSON object per line:
{"a": TEXT or [{"role", "content"}, ...], "b": same, "same_answer": true|false, "kind": "", "source": ""}
A plain text is one user turn. Read by `costmesh bench cache --pairs` and `costmesh cache calibrate`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Pair:
    a: tuple[tuple[str, str], ...]  # (role, content)
    b: tuple[tuple[str, str], ...]
    same_answer: bool
    kind: str = ""


def _turns(value: object, field: str) -> tuple[tuple[str, str], ...]:
    if isinstance(value, str):
        turns = [("user", value)]
    elif isinstance(value, list):
        turns = []
        for m in value:
            if not isinstance(m, dict) or not isinstance(m.get("content"), str) or m.get("role") not in ROLES:
                raise ValueError(f"{field}: each turn needs a role in {ROLES} and a text content")
            turns.append((str(m["role"]), str(m["content"])))
    else:
        raise ValueError(f"{field} must be a text or a list of turns")
    if not any(role == "user" and content.strip() for role, content in turns):
        raise ValueError(f"{field} has no user text")
    return tuple(turns)


def read(path: Path) -> list[Pair]:
    """Every pair in the file; a malformed line stops the run with its line number (SystemExit)."""
    pairs = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SystemExit(f"cannot read pairs file {path}: {e}") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict) or not isinstance(data.get("same_answer"), bool):
                raise ValueError('needs "same_answer": true or false')
            pairs.append(
                Pair(
                    _turns(data.get("a"), "a"),
                    _turns(data.get("b"), "b"),
                    data["same_answer"],
                    str(data.get("kind") or ""),
                )
            )
        except ValueError as e:
            raise SystemExit(f"{path}:{number}: not a labelled pair ({e})") from None
    if not pairs:
        raise SystemExit(f"{path}: no pairs")
    return pairs
