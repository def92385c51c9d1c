"""`costmesh bench prefix` against the real vLLM server: the static-first prompt is served from its cache."""

from __future__ import annotations

import json

import pytest

from launcher.settings import StackSettings
from tests.helpers import costmesh

pytestmark = pytest.mark.integration


def test_static_first_prompts_hit_vllms_prefix_cache(infra: StackSettings) -> None:
    # Smaller than the real bench (2k-token system prompt) to keep CPU prefill short; the effect is the same.
    run = costmesh("bench", "prefix", "--requests", "4", "--system-tokens", "600", "--user-tokens", "60")
    assert run.returncode == 0, run.stderr[-2000:]
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    summary = rows[-1]
    assert summary["summary"] and summary["bench"] == "prefix"
    static = next(r for r in rows if r.get("layout") == "static_first")
    variable = next(r for r in rows if r.get("layout") == "variable_first")
    # Three of four requests reuse the ~600-token prefix: well over half of all prompt tokens hit.
    assert static["vllm_prefix_cache_hit_ratio"] > 0.5
    assert variable["vllm_prefix_cache_hit_ratio"] < 0.2
    # The server reports the hits in usage too, which the cost accounting prices as cached input.
    assert static["usage_cached_token_ratio"] > 0.5
