"""A lossless-in-meaning first compressor: drops repeated sentences and redundant whitespace.

Retrieved context often repeats boilerplate (headers, disclaimers, overlapping chunks); removing exact
repeats never changes what the model can know. It needs no model, so it also serves where the LLMLingua
server is not running.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_SPACES = re.compile(r"[ \t]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


class DedupeCompressor:
    name = "dedupe"

    async def compress(self, texts: list[str], target_ratio: float, question: str = "") -> list[str]:
        seen: set[str] = set()
        out = []
        for text in texts:
            kept = []
            for sentence in _SENTENCE_END.split(_BLANK_LINES.sub("\n", _SPACES.sub(" ", text)).strip()):
                key = sentence.strip().lower()
                if key and key in seen:
                    continue
                seen.add(key)
                kept.append(sentence.strip())
            out.append(" ".join(s for s in kept if s))
        return out

    async def close(self) -> None:
        pass
