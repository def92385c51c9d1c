"""`costmesh bench cache --pairs` on a small shipped file, through the running cache service."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import RunningStack
from tests.helpers import costmesh
from workloads.datasets import DATA

pytestmark = pytest.mark.e2e

SMOKE = DATA / "pairs" / "smoke.jsonl"  # lines of fow-cache.jsonl and fow-cache-conv.jsonl (CC BY 4.0)
FIELDS = {"pairs", "same", "different", "threshold", "recall", "false_hit_rate", "precision", "lookup_p99_ms"}


def test_bench_cache_pairs_prints_one_line_per_threshold_then_the_summary(running_stack: RunningStack) -> None:
    done = costmesh("bench", "cache", "--pairs", str(SMOKE), "--thresholds", "0.85,0.95", timeout_s=300)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [line["threshold"] for line in lines[:2]] == [0.85, 0.95]
    summary = lines[-1]
    assert summary["summary"] is True and set(summary) >= FIELDS
    pairs = [json.loads(line) for line in SMOKE.read_text().splitlines()]
    assert summary["pairs"] == len(pairs) and summary["same"] + summary["different"] == len(pairs)
    assert 0.0 <= summary["recall"] <= 1.0 and summary["lookup_p99_ms"] > 0
    # Every kind in the file is reported; the traps (a negation, a swapped entity, "cancel it" after
    # another subscription named 40 turns back) miss, the rewordings of a cached question hit.
    kinds = lines[-2]["by_kind"]
    assert {k for k in kinds if k.startswith("different:")} == {
        f"different:{p['kind']}" for p in pairs if not p["same_answer"]
    }
    assert all(v["hit_rate"] == 0.0 for k, v in kinds.items() if k.startswith("different:"))
    assert summary["false_hit_rate"] == 0.0
    assert kinds["same:near_repeat/minimal"]["hit_rate"] == 1.0
