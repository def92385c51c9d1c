"""The spot-checks' false-hit rate in a replay's report: read from a real /metrics endpoint, as a delta."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, start_http_server

from bench import spotchecks
from bench.report import main as report_main
from bench.report import semantic_check, summarize
from services.orchestrator.metrics import OrchestratorMetrics
from tests.helpers import free_port


@pytest.fixture
def endpoint() -> Iterator[tuple[str, OrchestratorMetrics]]:
    registry = CollectorRegistry()
    metrics = OrchestratorMetrics(registry)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    yield f"http://127.0.0.1:{server.server_port}/metrics", metrics
    server.shutdown()
    server.server_close()
    thread.join()


def test_the_run_records_what_the_checks_added(endpoint: tuple[str, OrchestratorMetrics]) -> None:
    url, metrics = endpoint
    metrics.semantic_checked.labels("agree").inc(5)  # before the run: not counted
    before = spotchecks.read(url)
    assert before is not None and before["agree"] == 5 and before["disagree"] == 0
    metrics.semantic_checked.labels("agree").inc(7)
    metrics.semantic_checked.labels("disagree").inc(2)
    metrics.semantic_checked.labels("error").inc()
    metrics.semantic_evicted.inc(2)
    metrics.spotcheck_cost.inc(0.0004)
    added = spotchecks.delta(before, spotchecks.read(url))
    assert added == {
        "agree": 7,
        "disagree": 2,
        "unclear": 0,
        "error": 1,
        "evicted": 2,
        "skipped": 0,
        "cost_usd": pytest.approx(0.0004),
        "unfinished": 0,
    }


def test_no_endpoint_or_a_restart_is_not_measured(endpoint: tuple[str, OrchestratorMetrics]) -> None:
    url, metrics = endpoint
    assert spotchecks.read(f"http://127.0.0.1:{free_port()}/metrics") is None
    metrics.semantic_checked.labels("agree").inc(3)
    restarted = {"agree": 1.0, "disagree": 0.0, "unclear": 0.0, "error": 0.0}
    assert spotchecks.delta(spotchecks.read(url), restarted) is None  # a counter went down
    assert spotchecks.delta(None, restarted) is None


def test_a_service_without_spot_checks_is_not_measured() -> None:
    registry = CollectorRegistry()  # a /metrics endpoint, but not the orchestrator's
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        assert spotchecks.read(f"http://127.0.0.1:{server.server_port}/metrics") is None
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_last_reading_waits_for_checks_in_flight(endpoint: tuple[str, OrchestratorMetrics]) -> None:
    url, metrics = endpoint
    metrics.spotcheck_in_flight.set(1)

    def finish() -> None:
        metrics.semantic_checked.labels("disagree").inc()
        metrics.spotcheck_in_flight.set(0)

    timer = threading.Timer(0.2, finish)
    timer.start()
    settled = spotchecks.settle(url, wait_s=10.0, poll_s=0.05)
    timer.join()
    assert settled is not None and settled["in_flight"] == 0 and settled["disagree"] == 1
    metrics.spotcheck_in_flight.set(2)  # never finishing: the reading after wait_s says so
    late = spotchecks.settle(url, wait_s=0.1, poll_s=0.05)
    assert late is not None and late["in_flight"] == 2


def test_the_report_gives_the_disagree_rate_of_real_verdicts_with_its_interval() -> None:
    block = semantic_check(
        {"agree": 18, "disagree": 2, "unclear": 3, "error": 4, "evicted": 2, "skipped": 0, "cost_usd": 0.01}
    )
    assert isinstance(block, dict)
    assert block["disagree_rate"] == 0.1  # 2 of the 20 verdicts; unclear and error left out
    low, high = block["disagree_rate_ci95"]
    assert 0.0 < low < 0.1 < high < 0.4
    assert block["unclear"] == 3 and block["error"] == 4 and block["evicted"] == 2
    none_judged = semantic_check({"agree": 0, "disagree": 0, "unclear": 1, "error": 0})
    assert isinstance(none_judged, dict)
    assert none_judged["disagree_rate"] is None and none_judged["disagree_rate_ci95"] is None
    assert semantic_check(None) == "not measured"


def test_the_report_shows_the_block_or_says_not_measured(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [
        {
            "index": 0,
            "latency_ms": 10.0,
            "mesh_added_ms": 2.0,
            "cache": "semantic",
            "tier": "large",
            "escalated": False,
            "cost_usd": 0.0,
            "baseline_cost_usd": 0.01,
            "savings_by_intervention": {"cache_semantic": 0.01},
            "correct": None,
        }
    ]
    meta = {"run_id": "r1", "workload": "support", "tiers": "local"}
    assert summarize(meta, rows, None)["cache_semantic_check"] == "not measured"  # a run from before
    counts = {"agree": 3, "disagree": 1, "unclear": 0, "error": 0}
    (tmp_path / "run.json").write_text(json.dumps({**meta, "cache_semantic_check": counts}))
    (tmp_path / "requests.jsonl").write_text(json.dumps(rows[0]) + "\n")
    assert report_main([str(tmp_path)]) == 0
    assert "cache_semantic_check: {'agree': 3, 'disagree': 1" in capsys.readouterr().out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["cache_semantic_check"]["disagree_rate"] == 0.25
