"""End to end: the running mesh driven through the generated stubs, the CLI and grpcurl."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from costmesh.v1 import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from launcher.components import find_weaviate
from services.common.interceptors import blocking_channel
from tests.e2e.conftest import RunningStack
from tests.helpers import api_key, costmesh

pytestmark = pytest.mark.e2e
GOBIN = Path.home() / "go" / "bin"


def grpcurl() -> str:
    found = shutil.which("grpcurl") or str(GOBIN / "grpcurl")
    assert Path(found).exists(), "grpcurl is installed by `make setup`"
    return found


def test_ask_twice_gives_an_exact_hit(running_stack: RunningStack) -> None:
    tenant = f"e2e{uuid.uuid4().hex[:8]}"
    first = costmesh("ask", "What is the capital of France?", "--key", api_key(tenant), "--json")
    assert first.returncode == 0, first.stderr
    one = json.loads(first.stdout)
    assert "Paris" in one["answer"]
    assert one["cache"]["hit"] == "miss"
    assert one["route"]["tier"] in ("small", "large")
    assert one["cost_usd"] > 0
    assert one["baseline_cost_usd"] >= one["cost_usd"]
    assert len(one["trace_id"]) == 32
    for key in ("answer", "route", "cache", "tokens", "cost_usd", "baseline_cost_usd", "trace_id"):
        assert key in one
    assert {"tier", "escalated", "reason"} <= set(one["route"])
    assert {"hit", "similarity"} <= set(one["cache"])

    second = json.loads(costmesh("ask", "What is the capital of France?", "--key", api_key(tenant), "--json").stdout)
    assert second["cache"]["hit"] == "exact"
    assert second["answer"] == one["answer"]
    assert second["cost_usd"] == 0
    assert second["baseline_cost_usd"] == pytest.approx(one["baseline_cost_usd"])


def test_one_trace_has_spans_from_every_service(running_stack: RunningStack) -> None:
    request = orchestrator_pb2.CompletionRequest(
        tenant=f"e2e{uuid.uuid4().hex[:8]}",
        messages=[
            common_pb2.Message(role=common_pb2.ROLE_SYSTEM, content="Answer from the context."),
            common_pb2.Message(role=common_pb2.ROLE_USER, content="How long does shipping take?"),
        ],
        documents=[common_pb2.Document(id="faq", text="Orders ship in 3 days. Orders ship in 3 days.")],
        sampling=common_pb2.SamplingParams(max_tokens=24),  # no tier: the router is asked
    )
    with blocking_channel(running_stack.orchestrator, running_stack.settings.mesh_token()) as channel:
        reply = orchestrator_pb2_grpc.OrchestratorStub(channel).Complete(request, timeout=300)
    # A one-line document is below the compressor's MIN_TOKENS: passed through, not degraded.
    assert not reply.compression.degraded and not reply.compression.applied
    assert {t.stage for t in reply.stages} >= {
        "embed",
        "cache_exact",
        "cache_semantic",
        "router",
        "summarizer",
        "compressor",
        "inference",
    }

    wanted = {"orchestrator", "router", "cache", "summarizer", "compressor", "inference"}
    seen: set[str] = set()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not wanted <= seen:
        seen = {service.removeprefix("costmesh-") for service, _ in running_stack.receiver.in_trace(reply.trace_id)}
        time.sleep(0.3)
    assert wanted <= seen, f"trace {reply.trace_id} has spans from {sorted(seen)} only"


def test_stream_through_the_stack(running_stack: RunningStack) -> None:
    request = orchestrator_pb2.CompletionRequest(
        tenant=f"e2e{uuid.uuid4().hex[:8]}",
        messages=[common_pb2.Message(role=common_pb2.ROLE_USER, content="Name three colours.")],
        sampling=common_pb2.SamplingParams(max_tokens=24),
        tier=common_pb2.TIER_SMALL,
    )
    with blocking_channel(running_stack.orchestrator, running_stack.settings.mesh_token()) as channel:
        chunks = list(orchestrator_pb2_grpc.OrchestratorStub(channel).CompleteStream(request, timeout=120))
    deltas = "".join(c.delta for c in chunks if c.WhichOneof("chunk") == "delta")
    final = chunks[-1].final
    assert len(chunks) > 2
    assert deltas == final.answer
    assert final.usage.completion_tokens > 0


@pytest.mark.parametrize(
    ("port_attr", "service"),
    [
        ("orchestrator_port", "costmesh.v1.Orchestrator"),
        ("router_port", "costmesh.v1.Router"),
        ("cache_port", "costmesh.v1.Cache"),
        ("compressor_port", "costmesh.v1.Compressor"),
        ("summarizer_port", "costmesh.v1.Summarizer"),
        ("inference_port", "costmesh.v1.Inference"),
        ("batch_port", "costmesh.v1.Batch"),
    ],
)
def test_grpcurl_lists_describes_and_health_checks_every_service(
    running_stack: RunningStack, port_attr: str, service: str
) -> None:
    address = f"localhost:{getattr(running_stack.settings, port_attr)}"
    listed = subprocess.run([grpcurl(), "-plaintext", address, "list"], capture_output=True, text=True, check=True)
    assert set(listed.stdout.split()) >= {service, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}
    described = subprocess.run(
        [grpcurl(), "-plaintext", address, "describe", service], capture_output=True, text=True, check=True
    )
    assert f"service {service.rsplit('.', 1)[1]}" in described.stdout
    health = subprocess.run(
        [grpcurl(), "-plaintext", "-d", json.dumps({"service": service}), address, "grpc.health.v1.Health/Check"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(health.stdout)["status"] == "SERVING"


def test_grpcurl_complete_and_invalid_argument(running_stack: RunningStack) -> None:
    address = f"localhost:{running_stack.settings.orchestrator_port}"
    tenant = f"e2e{uuid.uuid4().hex[:8]}"
    auth = ["-H", f"authorization: Bearer {api_key(tenant)}"]
    body = {
        "tenant": tenant,
        "tier": "TIER_SMALL",
        "messages": [{"role": "ROLE_USER", "content": "Say hi."}],
        "sampling": {"maxTokens": 16},
    }
    ok = subprocess.run(
        [grpcurl(), "-plaintext", *auth, "-d", json.dumps(body), address, "costmesh.v1.Orchestrator/Complete"],
        capture_output=True,
        text=True,
        check=True,
    )
    reply = json.loads(ok.stdout)
    assert reply["answer"]
    assert reply["route"]["tier"] == "TIER_SMALL"
    bad = subprocess.run(
        [grpcurl(), "-plaintext", *auth, "-d", json.dumps({}), address, "costmesh.v1.Orchestrator/Complete"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode != 0
    assert "InvalidArgument" in bad.stderr
    assert "messages must not be empty" in bad.stderr
    for metadata, status in (([], "Unauthenticated"), (["-H", "authorization: Bearer cmk-nope"], "Unauthenticated")):
        refused = subprocess.run(
            [grpcurl(), "-plaintext", *metadata, "-d", json.dumps(body), address, "costmesh.v1.Orchestrator/Complete"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert refused.returncode != 0 and status in refused.stderr
    other = {**body, "tenant": "someone-else"}
    forbidden = subprocess.run(
        [grpcurl(), "-plaintext", *auth, "-d", json.dumps(other), address, "costmesh.v1.Orchestrator/Complete"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert forbidden.returncode != 0 and "PermissionDenied" in forbidden.stderr


def test_status_reports_every_component(running_stack: RunningStack) -> None:
    result = costmesh("status")
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("redis", "weaviate", "vllm-small", "vllm-large", "orchestrator", "inference"):
        assert name in result.stdout
    assert "down" not in result.stdout
    assert ("local binary" in result.stdout) == (find_weaviate(running_stack.settings) is not None)


def test_every_service_serves_prometheus_metrics(running_stack: RunningStack) -> None:
    s = running_stack.settings
    bodies = {}
    for name in ("orchestrator", "router", "cache", "compressor", "summarizer", "inference", "batch"):
        port = s.metrics_base_port + getattr(s, f"{name}_port") - s.orchestrator_port
        bodies[name] = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert "# TYPE costmesh_rpc_duration_seconds histogram" in bodies[name], name
    # Earlier tests sent traffic: the samples carry it.
    assert (
        'costmesh_rpc_total{code="OK",method="/costmesh.v1.Orchestrator/Complete",service="orchestrator"}'
        in (bodies["orchestrator"])
    )
    assert 'costmesh_cost_usd_total{tier="small"}' in bodies["inference"]
    assert "costmesh_batch_queue_depth" in bodies["batch"]
    # The e2e tenants are not on COSTMESH_CACHE_METRICS_TENANTS: they share the "other" label.
    assert re.search(r'costmesh_cache_lookups_total\{result="hit",tenant="other",tier="exact"\} [1-9]', bodies["cache"])
    assert not re.search(r'tenant="e2e\w+"', bodies["cache"])


def test_paraphrase_hits_semantically_and_changed_facts_or_tenants_miss(running_stack: RunningStack) -> None:
    tenant, other = f"e2e{uuid.uuid4().hex[:8]}", f"e2e{uuid.uuid4().hex[:8]}"

    def ask(prompt: str, who: str) -> dict[str, object]:
        result = costmesh("ask", prompt, "--key", api_key(who), "--json")
        assert result.returncode == 0, result.stderr
        reply: dict[str, object] = json.loads(result.stdout)
        return reply

    first = ask("Is order 48213 delayed? Answer yes or no.", tenant)
    assert first["cache"]["hit"] == "miss"  # type: ignore[index]
    assert first["finish_reason"] == "stop"  # complete answers are stored

    paraphrase = ask("Is the order 48213 delayed? Answer yes or no.", tenant)
    assert paraphrase["cache"]["hit"] == "semantic", paraphrase["cache"]  # type: ignore[index]
    assert 0.90 <= paraphrase["cache"]["similarity"] < 1.0  # type: ignore[index]
    assert paraphrase["answer"] == first["answer"]

    changed_number = ask("Is order 48231 delayed? Answer yes or no.", tenant)
    assert changed_number["cache"]["hit"] == "miss"  # type: ignore[index]
    assert "false-hit guard" in changed_number["cache"]["reason"]  # type: ignore[index]

    negated = ask("Is order 48213 not delayed? Answer yes or no.", tenant)
    assert negated["cache"]["hit"] == "miss"  # type: ignore[index]

    other_tenant = ask("Is order 48213 delayed? Answer yes or no.", other)
    assert other_tenant["cache"]["hit"] == "miss"  # type: ignore[index]
