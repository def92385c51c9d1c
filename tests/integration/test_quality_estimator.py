"""The quality estimator's offline loop for real: record both vLLM tiers, train, simulate the policies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from launcher.settings import StackSettings
from services.router.estimator import QualityModel
from tests.helpers import costmesh
from training.outcomes import DEFAULT_RECORDS, load

pytestmark = pytest.mark.integration


def test_label_records_both_tiers_graded_with_signals_and_resumes(infra: StackSettings, tmp_path: Path) -> None:
    out = tmp_path / "outcomes.jsonl"
    first = costmesh("router", "label", "-n", "3", "--seed", "4", "--out", str(out))
    assert first.returncode == 0, first.stderr[-2000:]
    rows = load(out)
    assert len(rows) == 3
    for row in rows:
        assert row.task.gold and row.task.grader in ("choice", "number", "contains")
        assert row.small.prompt_tokens > 5 and row.large.prompt_tokens > 5
        assert row.small.logprobs and all(lp <= 0 for lp in row.small.logprobs)
        assert len(row.small.top) == len(row.small.logprobs) and row.small.top[0]  # top-5 alternatives
        assert row.models["small"] == infra.small_model and row.models["large"] == infra.large_model
    again = costmesh("router", "label", "-n", "3", "--seed", "4", "--out", str(out))  # nothing left to ask
    assert again.returncode == 0 and len(load(out)) == 3


def test_train_then_bench_cascade_on_the_shipped_records(tmp_path: Path) -> None:
    model_path = tmp_path / "quality.json"
    trained = costmesh("router", "train", "--out", str(model_path))
    assert trained.returncode == 0, trained.stderr[-2000:]
    report = json.loads(trained.stdout.splitlines()[-1])
    assert report["records"] == len(load(DEFAULT_RECORDS)) and report["test"] > 100
    model = QualityModel.load(model_path)
    assert model.points and len(model.meta["test_lines"]) == report["test"]  # type: ignore[arg-type]

    plot = tmp_path / "curve.svg"
    bench = costmesh("bench", "cascade", "--model", str(model_path), "--live", "0", "--plot", str(plot))
    assert bench.returncode == 0, bench.stderr[-2000:]
    rows = [json.loads(line) for line in bench.stdout.splitlines()]
    summary = rows[-1]
    assert summary["policy"] == "cascade" and summary["n"] == report["test"]
    for key in ("cost_ratio_vs_large", "accuracy_delta_pts", "accuracy_delta_ci95", "cheap_share", "escalation_rate"):
        assert key in summary
    policies = {r.get("policy") for r in rows[:-1]}
    assert {"all_large", "all_small", "cascade", "random_same_share", "oracle"} <= policies
    oracle = next(r for r in rows if r.get("policy") == "oracle")
    assert oracle["accuracy"] >= next(r for r in rows if r.get("policy") == "all_large")["accuracy"]
    assert plot.read_text().startswith("<svg")
