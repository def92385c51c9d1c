"""False-hit guard: semantic neighbours that differ in what changes the answer must not hit.

Sentence embeddings put "cancel my order" and "don't cancel my order", or "from savings to current"
and its reverse, very close together (0.92+ with MiniLM). The guard is the cheap first check after the
similarity threshold, in front of a slower verifier, so it keeps only rules that are right when they
fire; each was measured on public paraphrase sets and narrowed until it stopped throwing real
paraphrases away. A rule fires on a conflict, never on a mere omission ("order 48213" vs "my order"):
  identifiers, numbers   a value in each that the other lacks
  dates                  two different weekdays, months, or relative days (today / tomorrow)
  entities               a name in each that the other never mentions
  negation               a word negated in one, stated in the other, the texts otherwise alike in form
  affixes                "unsafe" / "non-refundable" / "shirtless" in one, the bare word in the other
  antonyms               "open" in one, "closed" in the other (WordNet plus a short supplement)
  order                  the same two words around the same relation word, swapped: "A to B" / "B to A"
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from difflib import SequenceMatcher

from services.cache.contrasts import (
    ANTONYMS,
    BE,
    BOUNDARIES,
    CAPITALISED_MONTHS,
    COMPARATORS,
    DATE_KINDS,
    DETERMINERS,
    NEGATIVE,
    NEGATORS,
    NOT_ENTITIES,
    NUMBER_WORDS,
    PARTICLES,
    RELATIONS,
    SCOPERS,
    STOPWORDS,
    SYMBOLS,
    SYMMETRIC,
    TARGETS,
    WH,
    affix_base,
    is_negation,
    lemma,
    stem,
)

_TOKEN = re.compile(
    r"(?:[A-Za-z]\.){2,}"  # U.S., e.g.
    r"|\d+(?:[.,:/]\d+)*[A-Za-z]*(?:-[A-Za-z0-9]+)*"  # 48213, 3.5, 3rd, 18-year-old
    r"|[A-Za-z][A-Za-z0-9]*(?:'[A-Za-z]+)?(?:-[A-Za-z0-9]+)*'?"  # words, AB12CD, non-refundable, men's
    r"|->|=>|[|<>.!?;:,]"
)
_NUMBER = re.compile(r"\d+(?:[.,:/]\d+)*")
_IDENTIFIER = re.compile(r"(?=[a-z]*\d)(?=\d*[a-z])[a-z0-9]{3,}")  # letters and digits mixed: a12b, tx9f3
_MERIDIEM = re.compile(r"\d+(?:[:.]\d\d)?(am|pm)")
_SOURCES = frozenset({"from"})
_QUANTITY = re.compile(r"\d+[a-z]{1,3}")  # 3rd, 21st, 10am, 5kg: a number, not an identifier


@dataclass(frozen=True)
class Facts:
    negated: bool  # an odd number of negators: "not ... not" cancels out
    numbers: tuple[str, ...]  # sorted, repeats kept: "2 every 4 hours" / "2 every 2 hours"
    identifiers: frozenset[str]
    dates: frozenset[tuple[str, str]]  # (kind, word)
    entities: frozenset[str]
    words: tuple[str, ...]  # lower case, possessive 's dropped, "n't" as "nt"
    keys: tuple[str, ...]  # lemma of each content word, relation word or symbol; "" for the rest
    negators: tuple[int, ...]
    scoped: frozenset[int]  # positions up to three words after a negator or "less"
    negative: bool  # holds a negative word, affix negations included
    form: tuple[bool, str]  # (a question, its first wh-word)


def facts(text: str) -> Facts:
    text = text.replace("\u2019", "'").replace("`", "'")
    if not text.isascii():  # Martinez with an accent
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    raw = _TOKEN.findall(text)
    words = tuple(_lower(t) for t in raw)
    starts = {i for i, w in enumerate(words) if i == 0 or words[i - 1] in ".!?:"}
    negators = tuple(i for i, w in enumerate(words) if w in NEGATORS)
    headline = _is_headline(raw, words, starts)
    return Facts(
        negated=len(negators) % 2 == 1,
        numbers=tuple(sorted(_numbers(text, words))),
        identifiers=frozenset(
            w for w in words if not w.isalpha() and _IDENTIFIER.fullmatch(w) and not _QUANTITY.fullmatch(w)
        ),
        dates=frozenset(_dates(raw, words, starts)),
        entities=frozenset(words[i] for i, t in enumerate(raw) if _is_entity(t, words[i], headline or i in starts)),
        words=words,
        keys=tuple(_key(raw[i], w, i in starts) for i, w in enumerate(words)),
        negators=negators,
        scoped=frozenset(j for i, w in enumerate(words) if w in SCOPERS for j in _scope(words, i)),
        negative=any(w in NEGATIVE or is_negation(w) for w in words),
        form=(text.rstrip().endswith("?"), next((w for w in words if w in WH), "")),
    )


def _lower(token: str) -> str:
    word = token.lower().replace(".", "") if len(token) > 2 and token[-1] == "." else token.lower()  # U.S.
    return word[:-2] if word.endswith("'s") else word.rstrip("'").replace("n't", "nt")


def _is_entity(token: str, word: str, capitals_say_nothing: bool) -> bool:
    """A capitalised word inside a sentence, or a camel-cased one anywhere (iPhone, macOS, easyJet)."""
    if len(token) < 2 or word in NOT_ENTITIES or word in DATE_KINDS or word in CAPITALISED_MONTHS:
        return False
    if token[0].islower():
        return not token.islower()
    return token[0].isupper() and not capitals_say_nothing


def _is_headline(raw: list[str], words: tuple[str, ...], starts: set[int]) -> bool:
    """Mostly Capitalised content words ("Nelson Mandela Dies at Age 95"): capitals of a title, not names."""
    content = [raw[i] for i, w in enumerate(words) if i not in starts and w[0].isalpha() and w not in STOPWORDS]
    return len(content) >= 3 and sum(w[0].isupper() for w in content) >= 0.8 * len(content)


def _scope(words: tuple[str, ...], at: int, width: int = 3) -> range:
    """The words after a negator, three unless told, cut at a clause boundary."""
    end = at + 1
    while end < min(at + 1 + width, len(words)) and words[end] not in BOUNDARIES:
        end += 1
    return range(at + 1, end)


def _key(raw: str, word: str, start: bool) -> str:
    if len(raw) == 1 and raw.isupper() and raw != "I" and not (start and raw == "A"):
        return raw  # a variable: P(A|B)
    if word in RELATIONS or word in SYMBOLS:
        return word
    if word in STOPWORDS or not word[0].isalnum():
        return ""
    return lemma(word) if word[0].isalpha() else word


def _numbers(text: str, words: tuple[str, ...]) -> list[str]:
    found = [_normalise_number(n) for n in _NUMBER.findall(text)]  # 18-year-old, 3rd, 5-day give theirs
    return found + [NUMBER_WORDS[p] for w in words for p in w.split("-") if p in NUMBER_WORDS]  # two-day


def _normalise_number(raw: str) -> str:
    number = re.sub(r"(?<=\d),(?=\d{3}\b)", "", raw)  # 1,000
    return re.sub(r"\.0+$|(\.\d*?)0+$", r"\1", number)  # 3.50 / 3.5


def _dates(raw: list[str], words: tuple[str, ...], starts: set[int]) -> set[tuple[str, str]]:
    found = set()
    for i, word in enumerate(words):
        day = word.removesuffix("s") if word.removesuffix("s") in DATE_KINDS else word  # "on mondays"
        if day in DATE_KINDS:
            found.add((DATE_KINDS[day], day))
        elif word in CAPITALISED_MONTHS and raw[i][0].isupper() and i not in starts:
            found.add(("month", word))
        elif meridiem := _MERIDIEM.fullmatch(word):
            found.add(("meridiem", meridiem[1]))  # 7am
        elif word in ("am", "pm") and i and words[i - 1][0].isdigit():
            found.add(("meridiem", word))  # 7 p.m.
    return found


def _mentions(f: Facts, entity: str) -> bool:
    """Whether a text names an entity in any case, inflection or spelling, or as its acronym's expansion."""
    if entity in f.words or stem(entity) in {stem(w) for w in f.words}:
        return True
    if len(entity) >= 5 and any(w.startswith(entity) or (len(w) >= 5 and entity.startswith(w)) for w in f.words):
        return True  # Australia / Australian
    if len(entity) <= 5 and entity in "".join(w[0] for w in f.words if w[:1].isalpha()):
        return True  # WHO / World Health Organization
    return len(entity) >= 5 and any(_one_edit(w, entity) for w in f.words)  # Muhammed / Mohammed


def _one_edit(a: str, b: str) -> bool:
    """Whether two words differ by one letter inserted, dropped or changed: a spelling variant or typo."""
    if abs(len(a) - len(b)) > 1:
        return False
    start = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return a[start + 1 :] == b[start + 1 :] or a[start:] == b[start + 1 :] or a[start + 1 :] == b[start:]


def _surface(f: Facts, key: str) -> str:
    """The word as written for a lemma, for reasons a person reads."""
    return next((w for w, k in zip(f.words, f.keys, strict=True) if k == key), key)


def _conflict(a: Collection[str], b: Collection[str]) -> bool:
    """Each holds a value the other lacks (repeats counted): a changed value, not an omitted one."""
    mine, theirs = Counter(a), Counter(b)
    return bool(mine - theirs) and bool(theirs - mine)


def identifiers(a: Facts, b: Facts) -> str:
    return "identifiers differ" if _conflict(a.identifiers, b.identifiers) else ""


def numbers(a: Facts, b: Facts) -> str:
    return f"numbers differ ({list(a.numbers)} vs {list(b.numbers)})" if _conflict(a.numbers, b.numbers) else ""


def dates(a: Facts, b: Facts) -> str:
    for kind in {k for k, _ in a.dates} & {k for k, _ in b.dates}:
        mine = sorted(w for k, w in a.dates if k == kind)
        theirs = sorted(w for k, w in b.dates if k == kind)
        if _conflict(mine, theirs):
            return f"dates differ ({mine} vs {theirs})"
    return ""


def entities(a: Facts, b: Facts) -> str:
    """A name in each that the other never mentions: "France" / "Spain", not "the Louvre" / "the museum"."""
    only_a = sorted(e for e in a.entities if not _mentions(b, e))
    only_b = sorted(e for e in b.entities if not _mentions(a, e))
    return f"named entities differ ({', '.join(only_a)} vs {', '.join(only_b)})" if only_a and only_b else ""


def negation(a: Facts, b: Facts) -> str:
    """One text negates a word that the other states with no negative word at all, the two otherwise
    alike: same form, same content words in much the same order.

    Not negation parity: that threw away paraphrases as often as it caught traps (support requests
    describe a problem, "I can't find my PIN", where the cached one asks for the fix; "no shirt" is
    "shirtless"; "failed to" is "didn't"). Two negations, one a side ("isn't who has" / "who doesn't
    have"), are left to the verifier."""
    if a.form != b.form:
        return ""
    for x, y in ((a, b), (b, a)):
        if x.negated and not y.negative and (shared := _negated(x) & set(y.keys)) and _alike(x, y):
            return f"negation differs ({_surface(y, min(shared))})"
    return ""


def _negated(f: Facts) -> set[str]:
    """The first content word after each negator, past pronouns and auxiliaries ("can not I get")."""
    content = (
        next((f.keys[j] for j in _scope(f.words, i, 5) if f.keys[j] and f.words[j] not in RELATIONS), "")
        for i in f.negators
    )
    return set(content) - {""}


def _alike(a: Facts, b: Facts) -> bool:
    content_a, content_b = [k for k in a.keys if k], [k for k in b.keys if k]
    return SequenceMatcher(None, content_a, content_b, autojunk=False).ratio() >= 0.8


def _plain(f: Facts) -> set[str]:
    """Lemmas of the words that no negator or "less" governs, comparators included."""
    return {k or f.words[i] for i, k in enumerate(f.keys) if (k or f.words[i] in COMPARATORS) and i not in f.scoped}


def affixes(a: Facts, b: Facts) -> str:
    """ "unsafe", "non-refundable" or "shirtless" in one, the bare word stated plainly in the other."""
    for x, y in ((a, b), (b, a)):
        plain_y = _plain(y)
        for i, word in enumerate(x.words):
            base = affix_base(word)
            if base and i not in x.scoped and word not in y.words and lemma(base) in plain_y - set(x.keys):
                return f"affix negation differs ({word} vs {base})"
    return ""


def _opposed(a: Facts, b: Facts) -> tuple[str, str] | None:
    """A plain word of each whose antonym is the other's, neither text holding both."""
    plain_a, plain_b = _plain(a), _plain(b)
    only_b = plain_b - set(a.keys) - set(a.words)
    for w in plain_a - set(b.keys) - set(b.words):
        if found := only_b & ANTONYMS.get(w, frozenset()):
            return _surface(a, w), _surface(b, min(found))
    return None


def _phrasal(f: Facts) -> set[tuple[str, str]]:
    """(verb, particle) for "turn on", "log out", "check-in", where no negator governs them."""
    found = set()
    for i, word in enumerate(f.words):
        verb, _, particle = word.rpartition("-")
        if i not in f.scoped and verb and verb.isalpha() and particle in PARTICLES:
            found.add((lemma(verb), particle))  # check-in
        elif i not in f.scoped and word in PARTICLES and i and f.keys[i - 1]:
            after = f.words[i + 1] if i + 1 < len(f.words) else "."
            if word not in ("in", "out") or after in BOUNDARIES or after in ("of", "to"):  # not "paid in euros"
                found.add((f.keys[i - 1], word))
    return found


def antonyms(a: Facts, b: Facts) -> str:
    """A word in one whose antonym is in the other, neither text holding both, none negated; not when
    the roles swap as well ("cheaper than" / "dearer than" reversed say the same)."""
    if (pair := _opposed(a, b)) and not _swap(a, b):
        return f"antonyms ({pair[0]} vs {pair[1]})"
    phrasal_a, phrasal_b = _phrasal(a), _phrasal(b)
    for verb, particle in phrasal_a - phrasal_b:
        if (verb, PARTICLES[particle]) in phrasal_b - phrasal_a:
            return f"antonyms ({verb} {particle} vs {verb} {PARTICLES[particle]})"
    return ""


def _side(f: Facts, at: int, step: int) -> set[str]:
    """Content lemmas next to a relation word: a run of up to three, determiners skipped."""
    found: set[str] = set()
    i = at + step
    while 0 <= i < len(f.keys) and len(found) < 3:
        word, key = f.words[i], f.keys[i]
        if key and word not in RELATIONS and word not in SYMBOLS:
            found.add(key)
        elif word not in DETERMINERS:
            break
        i += step
    return found


def _once(f: Facts) -> dict[str, int]:
    counts: dict[str, int] = {}
    for k in f.keys:
        counts[k] = counts.get(k, 0) + 1
    return {k: i for i, k in enumerate(f.keys) if k and counts[k] == 1}


def _passive(f: Facts, at: int) -> bool:
    """ "is followed by", "clung to by a bee": passive voice, whose subject is the one acted on."""
    if "by" in f.words[at + 1 : at + 4]:
        return True
    participle = f.words[at].endswith(("ed", "en", "wn"))  # not "is following"
    return participle and f.words[at] not in RELATIONS and bool(BE & set(f.words[max(at - 2, 0) : at]))


def _symmetric(f: Facts, at: int) -> bool:
    return not SYMMETRIC.isdisjoint(f.words[max(at - 3, 0) : at + 1])


def _swap(a: Facts, b: Facts) -> str:
    """ "x rel y" in one and "y rel x" in the other, for the same relation word (or verb) and words."""
    once_a, once_b = _once(a), _once(b)
    for rel in once_a.keys() & once_b.keys():
        i, j = once_a[rel], once_b[rel]
        if _symmetric(a, i) or _symmetric(b, j) or _passive(a, i) or _passive(b, j):
            continue
        left_a, right_a = _side(a, i, -1), _side(a, i, 1)
        left_b, right_b = _side(b, j, -1), _side(b, j, 1)
        x = (left_a & right_b) - right_a - left_b
        y = (right_a & left_b) - left_a - right_b
        if x and y and x != y:
            return f"{_surface(a, min(x))} {_surface(a, rel)} {_surface(a, min(y))}"
    return _roles(a, b)


def _roles(a: Facts, b: Facts) -> str:
    """ "from x ... to y" in one, "from y ... to x" in the other, however the phrases are ordered."""

    def role(f: Facts, words: frozenset[str]) -> set[str]:
        return {k for i, w in enumerate(f.words) if w in words for k in _side(f, i, 1)}

    source_a, target_a = role(a, _SOURCES), role(a, TARGETS)
    source_b, target_b = role(b, _SOURCES), role(b, TARGETS)
    x, y = (source_a & target_b) - target_a - source_b, (target_a & source_b) - source_a - target_b
    return f"from {_surface(a, min(x))} to {_surface(a, min(y))}" if x and y else ""


def order(a: Facts, b: Facts) -> str:
    """Roles swapped around a relation word or verb; a swap with an antonym ("A is older than B" /
    "B is younger than A") is a converse and says the same."""
    if (swapped := _swap(a, b)) and not _opposed(a, b):
        return f"order differs ({swapped})"
    return ""


RULES: tuple[tuple[str, Callable[[Facts, Facts], str]], ...] = (
    ("identifiers", identifiers),
    ("numbers", numbers),
    ("dates", dates),
    ("entities", entities),
    ("negation", negation),
    ("affixes", affixes),
    ("antonyms", antonyms),
    ("order", order),
)


def mismatch(query: str, cached: str) -> str:
    """Empty when the two may share an answer; else what differs, for the decision's reason."""
    a, b = facts(query), facts(cached)
    for _, rule in RULES:
        if reason := rule(a, b):
            return reason
    return ""
