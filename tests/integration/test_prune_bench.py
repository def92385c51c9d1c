"""`costmesh bench prune` on real chitchat conversations with the real cheap tier writing the summaries."""

from __future__ import annotations

import json

import pytest

from launcher.settings import StackSettings
from tests.helpers import costmesh

pytestmark = pytest.mark.integration


def test_pruning_saves_tokens_and_folds_summaries(infra: StackSettings) -> None:
    # A low threshold and short summaries keep CPU time small; the mechanics are those of the defaults.
    run = costmesh(
        "bench", "prune", "--conversations", "1", "--turns", "2", "--max-tokens", "600", "--summary-tokens", "40"
    )
    assert run.returncode == 0, run.stderr[-2000:]
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    turns, summary = rows[:-1], rows[-1]
    assert [t["summary_source"] for t in turns] == ["full", "folded"]
    assert all(t["tokens_after"] < t["tokens_before"] for t in turns)
    # Folding sends the earlier summary and the new turns, far less than re-summarizing everything.
    assert turns[1]["summary_call_prompt_tokens"] < turns[1]["full_resummary_prompt_tokens"] / 2
    assert summary["summary"] and summary["net_saved_usd"] > 0
