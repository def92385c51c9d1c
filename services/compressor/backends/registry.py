"""Config name -> compressor factory."""

from __future__ import annotations

from collections.abc import Callable

from services.common.errors import MissingConfig
from services.compressor.backends.base import TextCompressor
from services.compressor.backends.dedupe import DedupeCompressor
from services.compressor.backends.llmlingua import LLMLinguaCompressor
from services.compressor.settings import CompressorSettings

COMPRESSORS: dict[str, Callable[[CompressorSettings], TextCompressor]] = {
    "dedupe": lambda _: DedupeCompressor(),
    "llmlingua": lambda s: LLMLinguaCompressor(s.llmlingua_url, s.llmlingua_timeout_s),
}


def make_compressor(settings: CompressorSettings) -> TextCompressor:
    try:
        factory = COMPRESSORS[settings.method]
    except KeyError:
        raise MissingConfig(f"unknown compressor {settings.method!r}; known: {sorted(COMPRESSORS)}") from None
    return factory(settings)
