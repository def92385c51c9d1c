"""`costmesh replay` on the running mesh, then `costmesh report` on the run."""

from __future__ import annotations

import json

import pytest

from bench.replay import RUNS
from tests.e2e.conftest import RunningStack
from tests.helpers import costmesh

pytestmark = pytest.mark.e2e


def test_replay_support_then_report(running_stack: RunningStack) -> None:
    done = costmesh("replay", "--workload", "support", "--concurrency", "4", "-n", "12", timeout_s=1200)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip().splitlines()[-1]
    rows = [json.loads(line) for line in (RUNS / run_id / "requests.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and not [r for r in rows if "error" in r]
    for r in rows:
        # A cache hit is not routed; an escalated request can cost more than its baseline (both tiers ran).
        assert r["tier"] in ("small", "large") or r["cache"] in ("exact", "semantic")
        assert r["cost_usd"] >= 0 and r["baseline_cost_usd"] > 0
        assert r["latency_ms"] >= r["mesh_added_ms"] >= 0
        assert {"cache_exact", "cache_semantic", "router", "inference"} & set(r["stages_ms"])

    reported = costmesh("report", run_id)
    assert reported.returncode == 0, reported.stderr
    print(reported.stdout)
    report = json.loads((RUNS / run_id / "report.json").read_text())
    assert report["requests"] == 12 and report["errors"] == 0
    assert report["baseline_usd"] - sum(report["waterfall_usd"].values()) == pytest.approx(report["cost_usd"], abs=1e-9)
    assert "local stand-ins" in report["tiers"]
    assert (RUNS / run_id / "report.html").read_text().count("<svg") == 2
    assert "= spent" in reported.stdout
