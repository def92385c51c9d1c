"""Config name -> compressor factory."""

from __future__ import annotations

from collections.abc import Callable

from services.common.errors import MissingConfig
from services.compressor.backends.base import TextCompressor
from services.compressor.backends.dedupe import DedupeCompressor

COMPRESSORS: dict[str, Callable[[], TextCompressor]] = {"dedupe": DedupeCompressor}


def make_compressor(name: str) -> TextCompressor:
    try:
        return COMPRESSORS[name]()
    except KeyError:
        raise MissingConfig(f"unknown compressor {name!r}; known: {sorted(COMPRESSORS)}") from None
