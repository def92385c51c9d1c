"""Jaeger and Prometheus in the stack: where the services' spans and metrics go without a team's own.

Jaeger v2 (the `jaeger` program scripts/setup-jaeger.sh builds from its Go module) runs with
deploy/jaeger/config.yaml: OTLP gRPC in, in-memory storage, the UI and its HTTP API on loopback. Every
service exports its spans to it (StackSettings.traces_endpoint). Debian's Prometheus runs with the scrape
targets of this stack's ports and the rules in deploy/prometheus/rules.yml; deploy/prometheus/prometheus.yml
is the same configuration for the default ports, for a Prometheus of a team's own.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
from pathlib import Path
from typing import Any

from launcher.probes import http_ok
from launcher.process import Component
from launcher.settings import ROOT, StackSettings

JAEGER_CONFIG = ROOT / "deploy" / "jaeger" / "config.yaml"
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
# The services Prometheus scrapes, in metrics-port order (StackSettings.service_metrics_port).
SCRAPED = ("orchestrator", "router", "cache", "compressor", "summarizer", "inference", "batch", "gateway")


def find_jaeger(s: StackSettings) -> str:
    """`jaeger` on PATH, else where scripts/setup-jaeger.sh puts it; the bare name when neither (it then
    fails to start with a message saying what to run)."""
    found = shutil.which(s.jaeger_binary)
    if found:
        return found
    candidate = Path(os.environ.get("GOPATH", Path.home() / "go")) / "bin" / s.jaeger_binary
    return str(candidate) if candidate.exists() else s.jaeger_binary


def jaeger(s: StackSettings) -> Component:
    ui = f"http://127.0.0.1:{s.jaeger_ui_port}"
    env = {
        "JAEGER_OTLP_GRPC": f"127.0.0.1:{s.jaeger_otlp_port}",
        "JAEGER_QUERY_HTTP": f"127.0.0.1:{s.jaeger_ui_port}",
        "JAEGER_QUERY_GRPC": f"127.0.0.1:{s.jaeger_query_grpc_port}",
        "JAEGER_MAX_TRACES": str(s.jaeger_max_traces),
    }
    return Component(
        "jaeger",
        ui,
        [find_jaeger(s), "--config", str(JAEGER_CONFIG)],
        functools.partial(http_ok, f"{ui}/api/services"),
        env=env,
        cwd=ROOT,
        note=f"OTLP gRPC 127.0.0.1:{s.jaeger_otlp_port}",
    )


def scrape_targets(s: StackSettings) -> list[dict[str, Any]]:
    return [{"targets": [f"127.0.0.1:{s.service_metrics_port(name)}"], "labels": {"service": name}} for name in SCRAPED]


def prometheus_config(s: StackSettings) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with this stack's ports, its scrape interval and the rules' path."""
    interval = s.prometheus_scrape_interval
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(PROMETHEUS_DIR / "rules.yml")],
        "scrape_configs": [{"job_name": "costmesh", "static_configs": scrape_targets(s)}],
    }


def prometheus(s: StackSettings) -> Component:
    folder = s.data_dir / "prometheus"
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "prometheus.yml"
    config.write_text(json.dumps(prometheus_config(s), indent=2) + "\n")  # JSON is YAML
    url = f"http://127.0.0.1:{s.prometheus_port}"
    return Component(
        "prometheus",
        url,
        [
            s.prometheus_binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--storage.tsdb.retention.time={s.prometheus_retention}",
            f"--web.listen-address=127.0.0.1:{s.prometheus_port}",
        ],
        functools.partial(http_ok, f"{url}/-/ready"),
        cwd=ROOT,
        note=f"scrapes every {s.prometheus_scrape_interval}",
    )
