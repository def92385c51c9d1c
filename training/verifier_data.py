"""Training pairs for the cache's verifier: does a cached question have the same answer as a new one?

No package ships a duplicate-question cross-encoder's weights, so costmesh fine-tunes one
(training/verifier_fit.py) from all-MiniLM-L6-v2 on public pairs, train splits only:
- STS-B train part of bench/data/pairs/stsb.jsonl (>= 4.5 same, <= 3.0 different);
- banking77 and CLINC150 train questions: two questions of one intent share an answer; a question and
  its nearest neighbour (MiniLM) of another intent do not. These are the hard negatives of a FAQ cache.
- edits of those questions that change the answer (negation, a WordNet antonym, swapped direction,
  another number or country) and edits that do not (case, punctuation, contractions), so the model
  learns that one word can decide, and which words cannot.
The evaluation sets (fow-cache, STS-B test/dev, MRPC test, banking77/CLINC150 test) are never read here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from services.cache.contrasts import ANTONYMS
from services.common.embedding import load_minilm
from services.orchestrator.settings import OrchestratorSettings
from workloads import datasets

SEED = 15
Row = tuple[str, str, bool, str]  # a, b, same answer, kind

_AUX = re.compile(r"\b(is|are|was|were|can|could|do|does|did|will|would|should|have|has)\b", re.I)
_NEGATED_AUX = re.compile(r"\b(is|are|was|were|ca|could|do|does|did|wo|would|should|have|has)n't\b", re.I)
_FROM_TO = re.compile(r"\bfrom (?:my |the |a )?(\w+(?: \w+)?) (?:to|into) (?:my |the |a )?(\w+(?: \w+)?)\b", re.I)
_NUMBER = re.compile(r"\b\d+(?:[.,]\d+)?\b")
_CONTRACTIONS = {"do not": "don't", "cannot": "can't", "is not": "isn't", "i am": "i'm", "what is": "what's"}


def negate(text: str, rng: random.Random) -> str | None:
    if m := _NEGATED_AUX.search(text):  # remove the negation that is there
        aux = {"ca": "can", "wo": "will"}.get(m.group(1).lower(), m.group(1))
        return text[: m.start()] + aux + text[m.end() :]
    if m := _AUX.search(text):
        return text[: m.end()] + rng.choice([" not", "n't"]) + text[m.end() :]
    return None


def antonym(text: str, rng: random.Random) -> str | None:
    words = [(m.start(), m.end(), m.group(0)) for m in re.finditer(r"[A-Za-z]+", text)]
    options = [(s, e, w) for s, e, w in words if w.lower() in ANTONYMS and len(w) > 2]
    if not options:
        return None
    start, end, word = rng.choice(options)
    return text[:start] + rng.choice(sorted(ANTONYMS[word.lower()])) + text[end:]


def swap_direction(text: str, rng: random.Random) -> str | None:
    m = _FROM_TO.search(text)
    if m is None or m.group(1).lower() == m.group(2).lower():
        return None
    first, second = m.span(1), m.span(2)
    return text[: first[0]] + m.group(2) + text[first[1] : second[0]] + m.group(1) + text[second[1] :]


def other_number(text: str, rng: random.Random) -> str | None:
    numbers = list(_NUMBER.finditer(text))
    if not numbers:
        return None
    m = rng.choice(numbers)
    value = m.group(0)
    changed = str(int(float(value.replace(",", ""))) + rng.choice([1, 2, 5, 10, 100]))
    return text[: m.start()] + changed + text[m.end() :]


def other_country(text: str, rng: random.Random, names: list[str]) -> str | None:
    present = [n for n in names if re.search(rf"\b{re.escape(n)}\b", text)]
    if not present:
        return None
    name = rng.choice(present)
    return re.sub(rf"\b{re.escape(name)}\b", rng.choice([n for n in names if n != name]), text, count=1)


_STOP = frozenset(
    re.findall(
        r"\w+",
        """a an the my your our their his her its this that these those is are was were be been am do does did have
        has had can could will would should may might must i you we they he she it me us them what which who whom
        whose when where why how and or but if then than so to of in on at for from by with about into over under
        as not no yes please there here any some all each every more most much many very just also only get got""",
    )
)
_WORD = re.compile(r"\b[a-z]{4,}\b")
_PEOPLE = ("my partner's", "my child's", "a friend's", "my colleague's", "my employer's", "someone else's")


def vocabulary(questions: list[str]) -> list[str]:
    """Content words used at least five times: what another question might say instead."""
    counts: dict[str, int] = {}
    for q in questions:
        for w in _WORD.findall(q.lower()):
            counts[w] = counts.get(w, 0) + 1
    return sorted(w for w, n in counts.items() if n >= 5 and w not in _STOP)


def other_word(text: str, rng: random.Random, words: list[str], insert: bool) -> str | None:
    """Another content word in one place (or one more before it): another thing asked about."""
    spots = [m for m in _WORD.finditer(text) if m.group(0).lower() not in _STOP]
    if not spots:
        return None
    m = rng.choice(spots)
    new = rng.choice(words)
    if new == m.group(0).lower():
        return None
    if insert:
        return text[: m.start()] + new + " " + text[m.start() :]
    return text[: m.start()] + new + text[m.end() :]


def other_owner(text: str, rng: random.Random) -> str | None:
    m = re.search(r"\bmy\b", text, re.I)
    return None if m is None else text[: m.start()] + rng.choice(_PEOPLE) + text[m.end() :]


def surface(text: str, rng: random.Random) -> str:
    """Same question, other spelling: what a verifier must never refuse."""
    out = text.lower() if rng.random() < 0.5 else text
    for long, short in _CONTRACTIONS.items():
        out = re.sub(rf"\b{long}\b", short, out, flags=re.I) if rng.random() < 0.5 else out
    return out.rstrip("?.! ") + rng.choice(["", "?", " please", "?!"])


def intent_pairs(questions: datasets.Labelled, rng: random.Random, n: int, name: str) -> list[Row]:
    """For n questions: the nearest question of the same intent (an FAQ cache's paraphrase hit) and the
    nearest of another intent (its trap)."""
    settings = OrchestratorSettings()
    embedder = load_minilm(settings.embedding_model_dir, settings.embedding_threads)
    pool = datasets.sample(questions, 4 * n, seed=rng.randrange(1 << 30))
    texts = [t for t, _ in pool]
    vectors = np.vstack([embedder.embed(texts[i : i + 64]) for i in range(0, len(texts), 64)])
    scores = vectors @ vectors.T
    by_intent: dict[str, list[int]] = {}
    for i, (_, intent) in enumerate(pool):
        by_intent.setdefault(intent, []).append(i)
    rows: list[Row] = []
    for i in range(n):
        intent = pool[i][1]
        same = [j for j in by_intent[intent] if j != i and texts[j].lower() != texts[i].lower()]
        if same:
            nearest = max(same, key=lambda j: scores[i, j])
            rows.append((texts[i], texts[nearest], True, f"{name}/same_intent"))
        others = np.where(np.array([p[1] != intent for p in pool]), scores[i], -2.0)
        rows.append((texts[i], texts[int(others.argmax())], False, f"{name}/nearest_other_intent"))
    return rows


def edit_pairs(questions: list[str], rng: random.Random, per_kind: int = 800) -> list[Row]:
    countries = [c.name for c in datasets.countries() if " " not in c.name]
    words = vocabulary(questions)
    edits: list[tuple[str, Callable[[str, random.Random], str | None]]] = [
        ("negation", negate),
        ("antonym", antonym),
        ("direction", swap_direction),
        ("number", other_number),
        ("country", lambda t, r: other_country(t, r, countries)),
        ("other_word", lambda t, r: other_word(t, r, words, insert=False)),
        ("extra_word", lambda t, r: other_word(t, r, words, insert=True)),
        ("owner", other_owner),
    ]
    rows: list[Row] = []
    for kind, edit in edits:  # each edit wherever it applies, up to `per_kind`
        made = 0
        for text in rng.sample(questions, len(questions)):
            changed = edit(text, rng)
            if changed and changed.lower() != text.lower():
                rows.append((text, changed, False, f"edit/{kind}"))
                made += 1
                if made == per_kind:
                    break
    rows += [(t, surface(t, rng), True, "edit/surface") for t in rng.sample(questions, 2 * per_kind)]
    return rows


def build(seed: int = SEED) -> list[Row]:
    rng = random.Random(seed)
    # MRPC is left out: its "paraphrases" often differ in a figure or a name (a loose label, for news),
    # which is exactly what a cache must not accept. It stays an evaluation set.
    rows: list[Row] = []
    for line in (datasets.DATA / "pairs" / "stsb.jsonl").read_text().splitlines():
        pair = json.loads(line)
        if "/train/" in pair["kind"]:
            rows.append((pair["a"], pair["b"], bool(pair["same_answer"]), "stsb/train"))
    banking, clinc = datasets.banking77("train"), datasets.clinc150("train")
    rows += intent_pairs(banking, rng, 2500, "banking77")
    rows += intent_pairs(clinc, rng, 2500, "clinc150")
    rows += edit_pairs([t for t, _ in banking + clinc], rng)
    # Either order: the cache asks (new, cached), and which of the two was cached first is chance.
    rows = [(b, a, same, kind) if rng.random() < 0.5 else (a, b, same, kind) for a, b, same, kind in rows]
    rng.shuffle(rows)
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.verifier_data")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    rows = build(args.seed)
    text = "".join(json.dumps({"a": a, "b": b, "same_answer": s, "kind": k}) + "\n" for a, b, s, k in rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    kinds: dict[str, int] = {}
    for *_, kind in rows:
        kinds[kind] = kinds.get(kind, 0) + 1
    digest = hashlib.sha256(text.encode()).hexdigest()
    print(json.dumps({"out": str(args.out), "pairs": len(rows), "sha256": digest, "kinds": kinds}))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
