"""Jaeger and Prometheus as the launcher configures them: where spans go, what is scraped, and that the
configuration files are ones the real programs accept."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from launcher import observability
from launcher.components import SERVICES, service, stack
from launcher.settings import StackSettings
from services.cli import ask


def test_spans_go_to_the_stacks_jaeger_and_to_a_teams_collector_too(tmp_path: Path) -> None:
    s = StackSettings(data_dir=tmp_path)
    assert s.traces_endpoint() == "http://127.0.0.1:4317"
    both = StackSettings(data_dir=tmp_path, otlp_endpoint="http://collector:4317")
    assert both.traces_endpoint() == "http://127.0.0.1:4317,http://collector:4317"
    assert StackSettings(data_dir=tmp_path, jaeger=False).traces_endpoint() == ""
    for name in SERVICES:
        env = service(both, name).env
        assert env[f"COSTMESH_{name.upper()}_OTLP_ENDPOINT"] == both.traces_endpoint()


def test_jaeger_and_prometheus_start_with_the_stack_unless_switched_off(tmp_path: Path) -> None:
    names = [c.name for c in stack(StackSettings(data_dir=tmp_path))]
    assert names.index("jaeger") < names.index("inference") and "prometheus" in names
    off = [c.name for c in stack(StackSettings(data_dir=tmp_path, jaeger=False, prometheus=False))]
    assert "jaeger" not in off and "prometheus" not in off


def test_the_shipped_prometheus_config_scrapes_what_the_launcher_scrapes(tmp_path: Path) -> None:
    shipped = yaml.safe_load((observability.PROMETHEUS_DIR / "prometheus.yml").read_text())
    ours = observability.prometheus_config(StackSettings(data_dir=tmp_path))
    assert shipped["scrape_configs"][0]["static_configs"] == ours["scrape_configs"][0]["static_configs"]
    scraped = {t["labels"]["service"] for t in ours["scrape_configs"][0]["static_configs"]}
    assert scraped == set(SERVICES)  # every service, the gateway and the batch lane included


def test_each_service_serves_metrics_on_the_port_prometheus_scrapes(tmp_path: Path) -> None:
    s = StackSettings(data_dir=tmp_path)
    targets = {
        t["labels"]["service"]: t["targets"][0]
        for t in observability.prometheus_config(s)["scrape_configs"][0]["static_configs"]
    }
    for name in SERVICES:
        port = service(s, name).env[f"COSTMESH_{name.upper()}_METRICS_PORT"]
        assert targets[name] == f"127.0.0.1:{port}"


def test_promtool_accepts_the_rendered_config(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: run `make setup` (it installs Debian's prometheus package)"
    component = observability.prometheus(StackSettings(data_dir=tmp_path))
    config = next(arg.split("=", 1)[1] for arg in component.command if arg.startswith("--config.file="))
    assert json.loads(Path(config).read_text())["rule_files"][0].endswith("deploy/prometheus/rules.yml")
    checked = subprocess.run([promtool, "check", "config", config], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_jaeger_listens_on_loopback_only() -> None:
    config = yaml.safe_load(observability.JAEGER_CONFIG.read_text())
    endpoints = [
        config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"],
        config["extensions"]["jaeger_query"]["http"]["endpoint"],
        config["extensions"]["jaeger_query"]["grpc"]["endpoint"],
    ]
    assert all(":-127.0.0.1:" in e for e in endpoints), endpoints  # the defaults when the env says nothing
    env = observability.jaeger(StackSettings()).env
    assert {env[k].split(":")[0] for k in ("JAEGER_OTLP_GRPC", "JAEGER_QUERY_HTTP", "JAEGER_QUERY_GRPC")} == {
        "127.0.0.1"
    }


@pytest.mark.parametrize("trace_id", ["4bf92f3577b34da6a3ce929d0e0e4736"])
def test_ask_prints_the_jaeger_url(trace_id: str) -> None:
    result = {
        "answer": "Paris",
        "route": {"tier": "small", "classifier": "rules", "confidence": 1.0, "reason": "lookup"},
        "cache": {"hit": "miss"},
        "tokens": {"prompt": 1, "completion": 1},
        "cost_usd": 0.0,
        "baseline_cost_usd": 0.0,
        "trace_id": trace_id,
        "trace_url": StackSettings().jaeger_trace_url(trace_id),
    }
    assert f"trace:  http://127.0.0.1:16686/trace/{trace_id}" in ask.render(result, as_json=False)
