"""Jaeger and Prometheus as `costmesh up` runs them: a request's trace read back from Jaeger's HTTP API,
the services' metrics and the recording rules from Prometheus's, and every query of the Grafana
dashboard (deploy/grafana/costmesh.json) run against that live Prometheus."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from launcher.observability import SCRAPED
from launcher.settings import ROOT
from tests.e2e.conftest import RunningStack
from tests.helpers import api_key, costmesh

pytestmark = pytest.mark.e2e
DASHBOARD = ROOT / "deploy" / "grafana" / "costmesh.json"
T = TypeVar("T")


def poll(read: Callable[[], T | None], timeout_s: float = 60, what: str = "") -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        got = read()
        if got is not None:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen within {timeout_s:.0f}s: {what}")
        time.sleep(1)


def jaeger_trace(stack: RunningStack, trace_id: str, services: set[str]) -> dict[str, Any] | None:
    """The trace from Jaeger's HTTP API once spans of every one of ``services`` are in it."""
    url = f"http://127.0.0.1:{stack.settings.jaeger_ui_port}/api/traces/{trace_id}"
    reply = httpx.get(url, timeout=5)
    if reply.status_code != 200 or not reply.json().get("data"):
        return None
    trace: dict[str, Any] = reply.json()["data"][0]
    seen = {p["serviceName"] for p in trace["processes"].values()}
    return trace if services <= seen else None


def test_a_gateway_request_is_one_trace_in_jaeger_with_every_service_on_its_path(
    running_stack: RunningStack,
) -> None:
    key = api_key(f"obs{uuid.uuid4().hex[:8]}")
    body = {
        "model": "costmesh-auto",
        "messages": [{"role": "user", "content": f"Name a colour ({uuid.uuid4().hex[:6]})."}],
        "max_tokens": 8,
    }
    reply = httpx.post(
        f"http://127.0.0.1:{running_stack.settings.gateway_port}/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {key}"},
        timeout=300,
    )
    assert reply.status_code == 200, reply.text
    trace_id = reply.headers["x-costmesh-trace-id"]
    path = {f"costmesh-{name}" for name in ("gateway", "orchestrator", "router", "cache", "inference")}
    trace = poll(lambda: jaeger_trace(running_stack, trace_id, path), what=f"{sorted(path)} in trace {trace_id}")
    tags = {s["operationName"]: {t["key"]: t["value"] for t in s["tags"]} for s in trace["spans"]}
    for stage in ("stage.cache_exact", "stage.router", "stage.inference"):
        assert stage in tags, sorted(tags)
        assert tags[stage]["costmesh.budget_ms"] > 0 and tags[stage]["costmesh.deadline_left_ms"] > 0
        assert isinstance(tags[stage]["costmesh.over_budget"], bool)
    assert tags["stage.router"]["costmesh.budget_ms"] == pytest.approx(15.0)


def test_costmesh_ask_prints_a_jaeger_url_that_shows_the_trace(running_stack: RunningStack) -> None:
    done = costmesh("ask", f"What is 2 + 2? ({uuid.uuid4().hex[:6]})", "--key", api_key("obsask"), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["trace_url"] == f"http://127.0.0.1:{running_stack.settings.jaeger_ui_port}/trace/{result['trace_id']}"
    assert httpx.get(result["trace_url"], timeout=5).status_code == 200  # the UI's page for it
    poll(lambda: jaeger_trace(running_stack, result["trace_id"], {"costmesh-orchestrator", "costmesh-inference"}))


def prometheus(stack: RunningStack, path: str, **params: str) -> Any:
    reply = httpx.get(f"http://127.0.0.1:{stack.settings.prometheus_port}/api/v1/{path}", params=params, timeout=10)
    payload = reply.json()
    assert reply.status_code == 200 and payload["status"] == "success", payload
    return payload["data"]


def instant(stack: RunningStack, query: str) -> list[dict[str, Any]]:
    data = prometheus(stack, "query", query=query)
    result: list[dict[str, Any]] = data["result"]
    return result


def test_prometheus_scrapes_every_service_and_evaluates_the_rules(running_stack: RunningStack) -> None:
    costmesh("ask", "What is the capital of France?", "--key", api_key("obsprom"), "--json")

    def every_target_up() -> list[dict[str, Any]] | None:
        up = instant(running_stack, 'up{job="costmesh"} == 1')
        return up if len(up) == len(SCRAPED) else None

    up = poll(every_target_up, what="every service's /metrics up")
    assert {r["metric"]["service"] for r in up} == set(SCRAPED)
    requests = poll(lambda: instant(running_stack, "sum(costmesh_requests_total)") or None, what="requests")
    assert float(requests[0]["value"][1]) >= 1
    # The recording rule has a value as soon as two scrapes have seen cheap routes: 0 with no escalation.
    rate = poll(
        lambda: instant(running_stack, "costmesh:escalation_rate:ratio_rate5m") or None,
        timeout_s=90,
        what="costmesh:escalation_rate:ratio_rate5m",
    )
    assert 0 <= float(rate[0]["value"][1]) <= 1
    groups = prometheus(running_stack, "rules")["groups"]
    rules = {r["name"]: r for g in groups for r in g["rules"]}
    assert rules["costmesh:escalation_rate:ratio_rate5m"]["health"] == "ok"
    assert rules["CostmeshEscalationRateAboveBaseline"]["type"] == "alerting"


def dashboard_queries(path: Path = DASHBOARD) -> list[tuple[str, str]]:
    dashboard = json.loads(path.read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel["targets"]]


def exported_names(stack: RunningStack) -> set[str]:
    """Every metric the services export, read from their /metrics: a labelled metric that has not been
    used yet shows only in its HELP line, so these are the names, not the series."""
    names: set[str] = set()
    for name in SCRAPED:
        text = httpx.get(f"http://127.0.0.1:{stack.settings.service_metrics_port(name)}/metrics", timeout=5).text
        names |= set(re.findall(r"^# HELP (\S+)", text, flags=re.MULTILINE))
    return names


def test_every_dashboard_query_runs_on_the_live_prometheus_over_metrics_that_exist(
    running_stack: RunningStack,
) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 15
    exported = exported_names(running_stack)
    recorded = {r["name"] for g in prometheus(running_stack, "rules")["groups"] for r in g["rules"]}
    for title, expr in queries:
        # Grafana's interval variables, as Grafana would fill them in for a 1-hour view.
        promql = expr.replace("$__rate_interval", "1m").replace("$__interval", "15s")
        instant(running_stack, promql)  # a parse or evaluation error fails here with Prometheus's message
        for name in re.findall(r"\b(costmesh[_:][a-z0-9_:]*)", promql):
            base = re.sub(r"_(bucket|count|sum)$", "", name)
            assert name in recorded or base in exported, f"{title!r}: {name} is neither exported nor recorded"
