"""Verifier of semantic candidates: does the cached question have the same answer as the new one?

Embedding similarity says two questions are about the same thing, not that they ask the same thing:
"is it refundable" / "is it non-refundable" or "from savings to current" / the reverse sit at 0.95+.
A cross-encoder reads both questions together and scores whether they are duplicates, so the semantic
tier hits only on candidates it accepts. It runs on the few nearest candidates above a recall threshold,
after the rule guard (`guard.py`) has refused the ones that plainly differ.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from services.cache.backends.cross_encoder import CrossEncoder
from services.common.errors import MissingConfig


class Verifier(Protocol):
    name: str

    def scores(self, query: str, candidates: Sequence[str]) -> list[float]:
        """P(same answer) of each candidate question for `query`, in [0, 1]. CPU-bound: run it in a thread."""
        ...


Loader = Callable[[Path, int], Verifier]
_LOADERS: dict[str, Loader] = {"cross-encoder": CrossEncoder}


def load_verifier(kind: str, model_dir: str, threads: int) -> Verifier | None:
    """The configured verifier; None when switched off (empty `model_dir`)."""
    if not model_dir:
        return None
    folder = Path(model_dir).expanduser()
    if kind not in _LOADERS:
        raise MissingConfig(f"unknown verifier kind {kind!r}; known: {sorted(_LOADERS)}")
    if not (folder / "model.onnx").exists():
        raise MissingConfig(
            f"no verifier model in {folder}: run `make setup` (or COSTMESH_CACHE_VERIFIER_MODEL_DIR='': rules alone)"
        )
    return _LOADERS[kind](folder, threads)
