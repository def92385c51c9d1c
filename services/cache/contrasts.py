"""The cache guard's lexicon: word classes, antonyms, affix negation, and a light lemmatiser.

The antonyms are WordNet 3.0's (data/antonyms.tsv, written by scripts/extract_antonyms.py; licence in
data/LICENSE-WordNet) plus a short supplement of contrasts that requests turn on and WordNet lacks.
Everything is loaded once at import into frozen structures: the guard runs on every semantic hit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _counting(words: str, first: int) -> dict[str, str]:
    return {word: str(n) for n, word in enumerate(words.split(), first)}


BOUNDARIES = _words(". ! ? ; : , and or but because while whereas although though")
NEGATORS = _words(
    "not no never none nothing nobody neither nor without cannot nowhere non dont doesnt didnt isnt arent "
    "wasnt werent cant wont couldnt wouldnt shouldnt havent hasnt hadnt avoid"
)
# Words after these are not stated plainly: "less expensive" is "cheap", "not open" is "closed".
SCOPERS = NEGATORS | _words("less little hardly barely")
# Words that carry a negation of their own: a text holding one may paraphrase a "not" in the other.
NEGATIVE = SCOPERS | _words(
    "fail failed fails failing lack lacks lacking unable refuse refused deny denied decline declined stop "
    "stopped prevent rarely seldom missing absent except instead unless against rather quit cease off out "
    "only remove removed"
)
WH = _words("what which who whom whose when where why how")
# Relation words whose two sides play different roles; "and", "or", "vs" are symmetric and absent.
RELATIONS = _words("to into onto from than given over before after under above below toward towards")
SYMBOLS = _words("| -> => > <")
TARGETS = _words("to into onto toward towards")
# Relations whose two sides may trade places: "talks to", "next to", "compared to".
SYMMETRIC = _words(
    "talk talks talking speak speaks speaking meet meets met marry marries married equal equals resemble "
    "resembles like compare compared comparing versus vs similar close next near related connected opposite"
)
PARTICLES = MappingProxyType({"on": "off", "off": "on", "in": "out", "out": "in", "up": "down", "down": "up"})
COMPARATORS = _words("more less fewer over under before after above below within")
BE = _words("is are was were be been being")
DETERMINERS = _words("a an the my your his her its our their this that these those some any")
STOPWORDS = (
    _words(
        "a an the this that these those my your his her its our their me you him them us we i he she it they "
        "is are was were be been being am do does did doing have has had having will would shall should can "
        "could may might must of in on at by for with about as through during including until against among "
        "throughout despite upon up down out off again further then once here there when where why how all "
        "any both each few more most other some such only own same so too very just what which who whom "
        "whose if also please i'm i've i'd i'll it's what's let's get got"
    )
    | RELATIONS
    | NEGATORS
    | BOUNDARIES
)
NOT_ENTITIES = _words("i i'm i've i'd i'll ok okay please hi hello hey thanks mr mrs ms dr prof sir st")
# From two and third: "one" is a pronoun too; "first" and "second" rank or time as often as they count.
NUMBER_WORDS = MappingProxyType(
    _counting("two three four five six seven eight nine ten eleven twelve", 2)
    | _counting("third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth", 3)
)
# Dates conflict only within a kind: "yesterday" and "Friday" may be the same day.
DATE_KINDS = MappingProxyType(
    dict.fromkeys(_words("monday tuesday wednesday thursday friday saturday sunday"), "weekday")
    | dict.fromkeys(_words("january february april june july august september october november december"), "month")
    | dict.fromkeys(_words("today tonight tomorrow yesterday"), "relative")
)
CAPITALISED_MONTHS = _words("may march")  # only as "May 3", "in March": not "you may", "march on"

# Contrasts common in requests that WordNet has no antonym pointer for (or only between rare senses).
_SUPPLEMENT = (
    "under over|within after|before after|min max|weekday weekend|adult child|adult kid|upload download|"
    "send receive|deposit withdrawal|inbound outbound|login logout|encrypt decrypt|add remove|"
    "earliest latest|highest lowest|domestic international|arrival departure|arrive depart|"
    "accept decline|approve reject|allow ban|allow forbid|allow prohibit|permit prohibit|pass fail|"
    "optional compulsory|optional mandatory|benefit drawback|increase reduce"
)
# Irregular forms of words in the table; regular ones are reduced by lemma()'s suffix rules.
_IRREGULAR = MappingProxyType(
    {
        "men": "man",
        "women": "woman",
        "children": "child",
        "kids": "kid",
        "better": "good",
        "best": "good",
        "worse": "bad",
        "worst": "bad",
        "bought": "buy",
        "sold": "sell",
        "sent": "send",
        "won": "win",
        "lost": "lose",
        "took": "take",
        "taken": "take",
        "gave": "give",
        "given": "give",
        "went": "go",
        "gone": "go",
        "came": "come",
        "found": "find",
        "kept": "keep",
        "left": "leave",
        "began": "begin",
        "begun": "begin",
        "shown": "show",
        "hid": "hide",
        "hidden": "hide",
        "broke": "break",
        "broken": "break",
    }
)
_SUFFIXES = (
    ("ies", "y"),
    ("ied", "y"),
    ("ier", "y"),
    ("iest", "y"),
    ("ing", ""),
    ("ing", "e"),
    ("ed", ""),
    ("ed", "e"),
    ("es", ""),
    ("s", ""),
    ("er", ""),
    ("er", "e"),
    ("est", ""),
    ("est", "e"),
)
# Prefixes that negate any word: in-/im-/ir-/il-/dis- also start "inform", "import", "display", so those
# count only when WordNet pairs the two words or the base is an adjective-looking word (see affix_base).
_OPEN_PREFIXES = ("non-", "non", "un")
_CLOSED_PREFIXES = ("dis", "in", "im", "ir", "il")
_ADJECTIVE_ENDINGS = ("able", "ible", "ive", "ent", "ant", "al", "ous", "ful", "ic")
# Words that look affix-negated but are not negations of their base.
_AFFIXED = re.compile(r"(?:un|non|dis|in|im|ir|il)[\w-]{4,}|[\w-]{3,}(?:less|-free)")
_NOT_UN = re.compile(r"un(?:der|it|ion|iq|ivers|til|cle)")
_FALSE_AFFIXES = frozenset({"unless", "regardless", "nevertheless", "nonetheless", "countless", "priceless"})


def _load() -> Mapping[str, frozenset[str]]:
    pairs = [tuple(line.split("\t")[:2]) for line in _table().splitlines() if line]
    pairs += [tuple(pair.split()) for pair in _SUPPLEMENT.split("|")]
    table: dict[str, set[str]] = {}
    for a, b in pairs:
        table.setdefault(a, set()).add(b)
        table.setdefault(b, set()).add(a)
    return MappingProxyType({word: frozenset(others) for word, others in table.items()})


def _table() -> str:
    return resources.files("services.cache").joinpath("data/antonyms.tsv").read_text(encoding="utf-8")


ANTONYMS = _load()


def _reduce(word: str) -> str:
    """The lexicon word a plural/-ed/-ing/-er/-est reduction of a word reaches, or ""."""
    for suffix, replacement in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 2:
            base = word[: -len(suffix)] + replacement
            if base in ANTONYMS:
                return base
            if len(base) > 3 and base[-1] == base[-2] and base[:-1] in ANTONYMS:  # bigger, stopped
                return base[:-1]
    return ""


def _inflections() -> Mapping[str, str]:
    """Every regular inflection of the lexicon's words -> its lemma: lemma() is one lookup per word."""
    forms = set()
    for word in ANTONYMS:
        for suffix, replacement in _SUFFIXES:
            if word.endswith(replacement):
                forms.add(word[: len(word) - len(replacement)] + suffix)
            forms.add(word + word[-1] + suffix)
    return MappingProxyType({f: base for f in forms - ANTONYMS.keys() if (base := _reduce(f))})


_INFLECTIONS = _inflections()


def lemma(word: str) -> str:
    """The lexicon's form of a lower-case word when a plural/-ed/-ing/-er reduction reaches it, else stem()."""
    word = _IRREGULAR.get(word, word)
    if word in ANTONYMS:
        return word
    return _INFLECTIONS.get(word) or stem(word)


def stem(word: str) -> str:
    """A crude stem that makes close/closes/closed/closing, cancel/cancelled meet."""
    for suffix in ("ing", "ed", "es", "s", "e"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            word = word[: -len(suffix)]
            if suffix in ("ing", "ed") and word[-1] == word[-2] and word[-1] not in "sz":
                word = word[:-1]
            break
    return word


def opposed(a: str, b: str) -> bool:
    """Whether two lemmas are antonyms."""
    return b in ANTONYMS.get(a, ())


def affix_base(word: str) -> str:
    """The word an affix negates ("unsafe" -> "safe", "non-refundable" -> "refundable", "shirtless" ->
    "shirt"), or "" when the word is not affix-negated."""
    if word in _FALSE_AFFIXES or not _AFFIXED.fullmatch(word):
        return ""
    for suffix in ("-less", "less", "-free"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    for prefix in _OPEN_PREFIXES:
        if word.startswith(prefix) and len(word) - len(prefix) >= 4:
            return word[len(prefix) :]
    for prefix in _CLOSED_PREFIXES:
        base = word[len(prefix) :]
        adjective = len(base) >= 5 and base.endswith(_ADJECTIVE_ENDINGS)
        if word.startswith(prefix) and len(base) >= 4 and (adjective or opposed(lemma(word), lemma(base))):
            return base
    return ""


def is_negation(word: str) -> bool:
    """Whether a word surely negates its base on its own: "non-members", "wireless", a WordNet pair
    ("unable"), or un- before a word that is not "under", "unit", "union", "university"..."""
    base = affix_base(word)
    if not base:
        return False
    if word.startswith("non") or not word.startswith(_CLOSED_PREFIXES + _OPEN_PREFIXES):
        return True  # non-members, wireless, sugar-free
    return opposed(lemma(word), lemma(base)) or (word.startswith("un") and not _NOT_UN.match(word))
