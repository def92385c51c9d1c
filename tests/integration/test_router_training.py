"""The learned router's offline loop for real: label with both vLLM tiers, train, bench."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.cli.settings import StackSettings
from services.router.backends.learned import LogisticModel
from services.router.backends.registry import make_classifier
from services.router.core import RouterCore
from services.router.labels import load
from services.router.training import DEFAULT_DATA
from tests.helpers import costmesh

pytestmark = pytest.mark.integration


def test_label_runs_both_tiers_and_resumes(infra: StackSettings, tmp_path: Path) -> None:
    out = tmp_path / "labels.jsonl"
    first = costmesh("router", "label", "--n", "2", "--out", str(out))
    assert first.returncode == 0, first.stderr[-2000:]
    rows = load(out)
    assert len(rows) == 2
    for row in rows:
        assert row.gold in "ABCD" and row.small_prompt_tokens > 20 and row.large_prompt_tokens > 20
        assert row.small_logprobs and all(lp <= 0 for lp in row.small_logprobs)
    again = costmesh("router", "label", "--n", "2", "--out", str(out))  # nothing left to ask
    assert again.returncode == 0 and len(load(out)) == 2


def test_train_then_bench_on_the_committed_labels(tmp_path: Path) -> None:
    model_path = tmp_path / "router.json"
    trained = costmesh("router", "train", "--data", str(DEFAULT_DATA), "--out", str(model_path))
    assert trained.returncode == 0, trained.stderr[-2000:]
    report = json.loads(trained.stdout.splitlines()[-1])
    assert report["examples"] == len(load(DEFAULT_DATA)) and report["holdout"] > 20
    model = LogisticModel.load(model_path)
    assert len(model.meta["holdout_lines"]) == report["holdout"]  # type: ignore[arg-type]
    core = RouterCore(make_classifier("learned", str(model_path)), 0.5)
    assert core.route([("user", "hi")], [0.0] * 384).classifier == "learned"

    plot = tmp_path / "curve.svg"
    bench = costmesh("bench", "router", "--model", str(model_path), "--latency-prompts", "40", "--plot", str(plot))
    assert bench.returncode == 0, bench.stderr[-2000:]
    rows = [json.loads(line) for line in bench.stdout.splitlines()]
    summary = rows[-1]
    assert summary["summary"] and summary["holdout_examples"] == report["holdout"]
    policies = {r["policy"] for r in rows if "policy" in r}
    assert {"cascade", "random_same_share", "all_small", "all_large"} <= policies
    assert plot.read_text().startswith("<svg")
