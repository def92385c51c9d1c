"""How every bench reports: one JSON object per line on stdout, flushed as it is measured."""

from __future__ import annotations

import json


def emit(record: dict[str, object]) -> None:
    print(json.dumps(record), flush=True)
