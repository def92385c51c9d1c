"""Grading an answer against a gold answer, by the kind of answer the task asks for.

`startswith(gold)` marked "The answer is 18." wrong for gold "18": each kind reads the answer the way a
person would. Kinds: "choice" (a letter A-D), "number", "exact" (after normalising case, spaces and
punctuation) and "contains" (the gold text appears in the answer).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence

GRADERS = ("choice", "number", "exact", "contains")

# "B", "B.", "(B)", "B) Paris", "Answer: B", "The answer is B", "the correct option is (B)".
# A leading letter counts when it stands alone ("A lot of..." is an article, not option A).
_LEADING_LETTER = re.compile(r"^\W*\(?([A-D])(?:$|[.):,\]]|\s*\n)")
_STATED_LETTER = re.compile(r"\b(?:answer|option|choice)\s*(?:is|:)?\s*:?\s*\(?([A-D])\b(?![a-z'])", re.I)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_PUNCT = str.maketrans("", "", string.punctuation)


def chosen_letter(answer: str, first_token_alternatives: Sequence[tuple[str, float]] = ()) -> str:
    """The option the answer picks: stated first, or stated as "the answer is X"; failing both, the most
    likely letter among the first token's alternatives (letter by top-logprobs), or "" when none is."""
    text = answer.strip()
    if found := _LEADING_LETTER.match(text):
        return found.group(1)
    if found := _STATED_LETTER.search(text):
        return found.group(1).upper()
    letters = [(lp, t.strip()) for t, lp in first_token_alternatives if t.strip() in ("A", "B", "C", "D")]
    return max(letters)[1] if letters else ""


def _number(text: str) -> float | None:
    # The last number is the result in "17 * 23 = 391" and in "so the answer is 391".
    found = _NUMBER.findall(text.replace("\u2212", "-"))
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:
        return None


def _normalise(text: str) -> str:
    return " ".join(text.lower().translate(_PUNCT).split())


def _choice(answer: str, gold: str) -> bool:
    return chosen_letter(answer) == gold.strip().upper()


def _numeric(answer: str, gold: str) -> bool:
    value, expected = _number(answer), _number(gold)
    return value is not None and expected is not None and abs(value - expected) <= 1e-6 * max(1.0, abs(expected))


def _exact(answer: str, gold: str) -> bool:
    return _normalise(answer) == _normalise(gold)


def _contains(answer: str, gold: str) -> bool:
    return bool(_normalise(gold)) and f" {_normalise(gold)} " in f" {_normalise(answer)} "


_BY_KIND: dict[str, Callable[[str, str], bool]] = {
    "choice": _choice,
    "number": _numeric,
    "exact": _exact,
    "contains": _contains,
}


def grade(answer: str, gold: str, grader: str) -> bool:
    """Whether `answer` gives `gold`, read as the grader's kind says."""
    try:
        return _BY_KIND[grader](answer, gold)
    except KeyError:
        raise ValueError(f"unknown grader {grader!r}; known: {', '.join(GRADERS)}") from None
