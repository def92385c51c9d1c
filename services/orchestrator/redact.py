"""Redaction hooks for collected distillation pairs (COSTMESH_ORCHESTRATOR_DISTILL_REDACT).

A pair kept for training outlives the request by months, so what identifies a person is masked before it
is written. The default masks what a support or banking task typically carries; a team with other data
names its own function ("package.module:function", str -> str).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable

_PATTERNS = (
    ("[EMAIL]", re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")),
    ("[IBAN]", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")),
    ("[CARD]", re.compile(r"\b(?:\d[ -]?){12,18}\d\b")),  # 13-19 digits, spaced or dashed
    ("[PHONE]", re.compile(r"(?<!\w)\+?\d[\d ()-]{7,}\d\b")),
)


def mask_pii(text: str) -> str:
    for mask, pattern in _PATTERNS:
        text = pattern.sub(mask, text)
    return text


def no_redaction(text: str) -> str:
    return text


def load_redactor(spec: str) -> Callable[[str], str]:
    """The function a "module:function" spec names; a bad spec fails at start-up, not on a request."""
    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValueError(f"distill_redact {spec!r} must be 'module:function'")
    function = getattr(importlib.import_module(module), name, None)
    if not callable(function):
        raise ValueError(f"distill_redact {spec!r} names no function")
    return function  # type: ignore[no-any-return]
