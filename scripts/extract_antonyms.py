"""One-off: WordNet 3.0's antonym pointers -> services/cache/data/antonyms.tsv for the cache guard.

    apt-get download wordnet-base && dpkg-deb -x wordnet-base_*.deb /tmp/wn
    python scripts/extract_antonyms.py /tmp/wn/usr/share/wordnet

Keeps single-word, lower-case lemma pairs with at least one word seen in SemCor (WordNet's tagged-sense
count > 0): pairs of rare words never meet in a cache and would only bloat the table. Drops pairs with a
light verb (more than MAX_VERB_SENSES senses: take, give, go, come, make, keep): its antonymy holds for
one sense of dozens ("how come", "go ahead" / "came after"). One line per unordered pair and part of
speech: `word<TAB>antonym<TAB>pos`.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

POS = {"adj": "a", "adv": "r", "verb": "v", "noun": "n"}
MAX_VERB_SENSES = 20
_WORD = re.compile(r"[a-z]+")
_MARKER = re.compile(r"\([a-z]+\)$")  # adjective position markers: able(a), galore(ip)


def lemmas(index: Path) -> dict[str, tuple[int, int]]:
    """Lemma of index.POS -> (senses, senses tagged in SemCor)."""
    found = {}
    for line in index.read_text(encoding="utf-8").splitlines():
        if line.startswith(" "):  # licence header
            continue
        fields = line.split()
        pointer_count = int(fields[3])
        found[fields[0]] = (int(fields[2]), int(fields[5 + pointer_count]))
    return found


def synsets(data: Path) -> dict[str, tuple[list[str], list[tuple[str, int, int]]]]:
    """offset -> (words, antonym pointers as (target offset, source word no., target word no.))."""
    table = {}
    for line in data.read_text(encoding="utf-8").splitlines():
        if line.startswith(" "):
            continue
        fields = line.split(" | ")[0].split()
        count = int(fields[3], 16)
        words = [_MARKER.sub("", w).lower() for w in fields[4 : 4 + 2 * count : 2]]
        at = 4 + 2 * count
        pointers = []
        for i in range(int(fields[at])):
            symbol, offset, _pos, source_target = fields[at + 1 + 4 * i : at + 5 + 4 * i]
            if symbol == "!":
                pointers.append((offset, int(source_target[:2], 16), int(source_target[2:], 16)))
        table[fields[0]] = (words, pointers)
    return table


def antonyms(wordnet: Path) -> set[tuple[str, str, str]]:
    pairs: set[tuple[str, str, str]] = set()
    for name, pos in POS.items():
        senses = lemmas(wordnet / f"index.{name}")
        max_senses = MAX_VERB_SENSES if pos == "v" else 10_000
        table = synsets(wordnet / f"data.{name}")
        for words, pointers in table.values():
            for offset, source, target in pointers:
                if offset not in table:  # an antonym in another part of speech; none in 3.0
                    continue
                a, b = words[source - 1], table[offset][0][target - 1]
                if not (_WORD.fullmatch(a) and _WORD.fullmatch(b)):
                    continue
                (senses_a, tagged_a), (senses_b, tagged_b) = senses[a], senses[b]
                if (tagged_a or tagged_b) and max(senses_a, senses_b) <= max_senses:
                    pairs.add((min(a, b), max(a, b), pos))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wordnet", type=Path, help="folder holding WordNet 3.0's data.* and index.* files")
    parser.add_argument("--out", type=Path, default=Path("services/cache/data/antonyms.tsv"))
    args = parser.parse_args()
    lines = sorted("\t".join(p) for p in antonyms(args.wordnet))
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(lines)} pairs -> {args.out}")


if __name__ == "__main__":
    main()
