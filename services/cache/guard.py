"""False-hit guard: semantic neighbours that differ in what changes the answer must not hit.

Sentence embeddings put "cancel my order" and "don't cancel my order", or "order 48213" and
"order 48231", very close together (0.92+ with MiniLM). Above the similarity threshold, the guard
compares the facts an answer depends on and rejects the hit when they differ:
negation, numbers and identifiers, dates, and named entities.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NEGATION = re.compile(
    r"\b(not|no|never|none|nothing|nobody|neither|nor|without|cannot|"
    r"(?:do|does|did|is|are|was|were|has|have|had|can|could|will|would|should|must|need)n'?t|won'?t|can'?t)\b",
    re.I,
)
_NUMBER = re.compile(r"\d+(?:[.,:/-]\d+)*")
_IDENTIFIER = re.compile(r"\b(?=\w*\d)(?=\w*[a-z])\w{3,}\b", re.I)  # letters and digits mixed: A12B, tx9f3
_DATE_WORDS = re.compile(
    r"\b(today|tonight|tomorrow|yesterday|monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
    r"january|february|march|april|may|june|july|august|september|october|november|december|"
    r"jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec|weekend|week|month|year)\b",
    re.I,
)
_WORD = re.compile(r"[A-Za-z][\w'-]*")
_SENTENCE_START = re.compile(r"(?:^|[.!?]\s+)([A-Za-z][\w'-]*)")
# Capitalised words that are not names.
_NOT_ENTITIES = frozenset({"i", "i'm", "i've", "i'd", "i'll", "ok", "okay", "please", "hi", "hello", "hey", "thanks"})


@dataclass(frozen=True)
class Facts:
    negated: bool
    numbers: frozenset[str]
    identifiers: frozenset[str]
    dates: frozenset[str]
    entities: frozenset[str]


def facts(text: str) -> Facts:
    starts = {m.group(1) for m in _SENTENCE_START.finditer(text)}
    entities = {
        w.lower() for w in _WORD.findall(text) if w[0].isupper() and w not in starts and w.lower() not in _NOT_ENTITIES
    }
    return Facts(
        negated=len(_NEGATION.findall(text)) % 2 == 1,  # "not ... not" cancels out
        numbers=frozenset(n.strip(".,") for n in _NUMBER.findall(text)),
        identifiers=frozenset(i.lower() for i in _IDENTIFIER.findall(text)),
        dates=frozenset(d.lower() for d in _DATE_WORDS.findall(text)),
        entities=frozenset(entities),
    )


def mismatch(query: str, cached: str) -> str:
    """Empty when the two may share an answer; else what differs, for the decision's reason."""
    a, b = facts(query), facts(cached)
    if a.negated != b.negated:
        return "negation differs"
    if a.identifiers != b.identifiers:
        return "identifiers differ"
    if a.numbers != b.numbers:
        return f"numbers differ ({sorted(a.numbers)} vs {sorted(b.numbers)})"
    if a.dates != b.dates:
        return f"dates differ ({sorted(a.dates)} vs {sorted(b.dates)})"
    # An entity named in either that the other does not mention at all (in any case).
    words_a = {w.lower() for w in _WORD.findall(query)}
    words_b = {w.lower() for w in _WORD.findall(cached)}
    missing = (a.entities - words_b) | (b.entities - words_a)
    if missing:
        return f"named entities differ ({', '.join(sorted(missing))})"
    return ""
