"""The cache's data and its key recipe. No grpc, no Redis, no Weaviate here."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum

_SPACES = re.compile(r"\s+")
KEY_VERSION = 1  # bump when the exact key's recipe changes: old entries then simply miss
CONTEXT_VERSION = 2  # the same for the semantic tier's context key (2: every earlier turn is in it)


class HitKind(StrEnum):
    MISS = "miss"
    EXACT = "exact"
    SEMANTIC = "semantic"


def normalize(text: str) -> str:
    """Whitespace stripped and collapsed, lowercased: trivially different spellings share an entry."""
    return _SPACES.sub(" ", text).strip().lower()


_TOKENS = re.compile(r"\w+|[^\w\s]")
# What never changes what is asked: sentence punctuation and quotes, articles, pleasantries. Symbols
# (< > + - = # /) and negations, quantifiers and pronouns all count.
_IGNORED = frozenset({"?", ".", "!", ",", ";", ":", '"', "'", "\u201c", "\u201d", "\u2018", "\u2019"})
_FILLER = frozenset({"a", "an", "the", "please", "pls", "kindly", "hi", "hello", "hey", "thanks"})


def wording(text: str) -> tuple[str, ...]:
    """The words and symbols that carry a question, in order: case, sentence punctuation, articles and
    pleasantries dropped. Two questions with the same non-empty wording ask the same thing ("Is the order
    48213 delayed??" / "is order 48213 delayed"), so the semantic tier serves them without the verifier."""
    return tuple(w for w in _TOKENS.findall(text.lower()) if w not in _IGNORED and w not in _FILLER)


def same_wording(a: str, b: str) -> bool:
    words = wording(a)
    return bool(words) and words == wording(b)


@dataclass(frozen=True)
class KeyMaterial:
    """Everything that changes the answer. Two requests share a key only if all of it matches."""

    tenant: str
    messages: tuple[tuple[str, str], ...]  # (role, content)
    documents: tuple[tuple[str, str], ...] = ()  # (kind, text)
    sampling: tuple[tuple[str, str], ...] = ()  # sorted (name, value) of the sampling parameters set
    tier: str = "auto"
    response_format: str = ""

    def exact_key(self) -> str:
        """SHA-256 over a canonical JSON of the normalized material (recipe in services/cache/README.md)."""
        return _sha256_json(
            {
                "v": KEY_VERSION,
                "tenant": self.tenant,
                "tier": self.tier,
                "messages": [[role, normalize(content)] for role, content in self.messages],
                "documents": [[kind, normalize(text)] for kind, text in self.documents],
                "sampling": [list(item) for item in self.sampling],
                "response_format": self.response_format.strip(),
            }
        )

    def context_key(self) -> str:
        """Everything but the wording of the last user message: system prompt, the earlier conversation,
        documents, sampling, tier, format.

        A semantic hit may only differ from the request in how the user phrased its question, so the
        semantic tier matches this exactly and compares only that question, by embedding and verifier.
        The earlier turns are hashed whole, however long: "cancel it" after a streaming plan was named 40
        turns back must never match "cancel it" after a gym membership, and "£4,500" must not match
        "£6,500" because the two differ by one token.
        """
        return _sha256_json(
            {
                "v": CONTEXT_VERSION,
                "tier": self.tier,
                "system": [normalize(content) for role, content in self.messages if role == "system"],
                "earlier": [[role, normalize(content)] for role, content in self._earlier()],
                "question_at": self._last_user(),  # turns after the question are context too
                "documents": [[kind, normalize(text)] for kind, text in self.documents],
                "sampling": [list(item) for item in self.sampling],
                "response_format": self.response_format.strip(),
            }
        )

    def max_tokens(self) -> int:
        """The request's own max_tokens (0: none set, the service default); part of the key via `sampling`."""
        value = dict(self.sampling).get("max_tokens", "0")
        return int(value) if value.isdigit() else 0

    def query(self) -> str:
        """The user's last message: what the semantic tier embeds, and the guard and verifier compare."""
        last = self._last_user()
        return self.messages[last][1] if last >= 0 else ""

    def _last_user(self) -> int:
        return next((i for i in range(len(self.messages) - 1, -1, -1) if self.messages[i][0] == "user"), -1)

    def _earlier(self) -> list[tuple[str, str]]:
        """The conversation around the last user message (system prompt excluded: it is keyed apart)."""
        last = self._last_user()
        return [m for i, m in enumerate(self.messages) if i != last and m[0] != "system"]


def _sha256_json(value: object) -> str:
    canonical = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class CachedAnswer:
    answer: str
    model: str
    tier: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    baseline_cost_usd: float
    created_unix_s: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> CachedAnswer:
        return cls(**json.loads(raw))


@dataclass(frozen=True)
class SemanticMatch:
    """A neighbour from the semantic tier: its answer, cosine similarity, the query that produced it, and
    its exact-tier key (what evicts it)."""

    answer: CachedAnswer
    similarity: float
    query: str
    key: str = ""


@dataclass(frozen=True)
class Controls:
    no_cache: bool = False
    no_store: bool = False
    max_age_s: int = 0
    ttl_s: int = 0
    similarity_threshold: float | None = None
    allow_sampled: bool = False
    verifier_threshold: float | None = None


@dataclass(frozen=True)
class Decision:
    kind: HitKind
    key: str
    similarity: float = 0.0
    reason: str = ""
    skipped: bool = False
    degraded: bool = False
    age_s: int = 0
    answer: CachedAnswer | None = field(default=None, compare=False)
    verifier_score: float | None = None  # the verifier's P(same answer) for the candidate decided on
    entry_key: str = ""  # the entry served (a semantic hit's differs from `key`)
