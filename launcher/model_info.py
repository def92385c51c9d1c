"""What a converted model folder says it is, from the marker scripts/prepare_models.py writes."""

from __future__ import annotations

import json
from pathlib import Path

MARKER = "costmesh-source.json"


def describe(folder: Path) -> str:
    """The GGUF's own name and quant, e.g. `Qwen2.5 Coder 1.5B Instruct GGUF, Q4_K_M`.

    Folders converted before markers recorded them read "unknown" (the GGUF is not at hand here, only
    its wheels in .venv-models); the next `scripts/setup.sh` run fills them in without converting again.
    """
    try:
        marker = json.loads((folder / MARKER).read_text())
    except FileNotFoundError:
        return f"{folder.name} not prepared (scripts/prepare_models.py)"
    except (OSError, ValueError):
        return f"{folder.name}: unreadable {MARKER}"
    if not isinstance(marker, dict):
        return f"{folder.name}: unreadable {MARKER}"
    name, quant = marker.get("gguf_name") or "unknown", marker.get("quant") or "unknown"
    return f"model {name}, {quant}"
