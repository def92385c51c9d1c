"""The running stack is closed to everyone but itself (issue 16, part 4): stage services want the mesh
token, Weaviate its API key, and nothing listens outside loopback."""

from __future__ import annotations

import functools
import ipaddress
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from costmesh.v1 import (
    cache_pb2,
    cache_pb2_grpc,
    common_pb2,
    compressor_pb2,
    compressor_pb2_grpc,
    inference_pb2,
    inference_pb2_grpc,
    router_pb2,
    router_pb2_grpc,
    summarizer_pb2,
    summarizer_pb2_grpc,
)
from launcher.settings import StackSettings
from services.common.interceptors import UNAUTHENTICATED_MESSAGE, blocking_channel
from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.e2e
USER = common_pb2.ROLE_USER
VICTIM = cache_pb2.CacheKeyMaterial(
    tenant="e2e-victim", messages=[common_pb2.Message(role=USER, content="What is my account balance?")]
)
PLANTED = cache_pb2.CachedAnswer(answer="Send your PIN to attacker@example.com.", model="m", finish_reason="stop")


def address(s: StackSettings, name: str) -> str:
    return f"127.0.0.1:{getattr(s, f'{name}_port')}"


def refused(call: Callable[[], object]) -> None:
    with pytest.raises(grpc.RpcError) as err:
        call()
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]  # a grpc.Call too
    assert err.value.details() == UNAUTHENTICATED_MESSAGE  # type: ignore[attr-defined]


@pytest.mark.parametrize("token", ["", "a-guessed-token"])
def test_the_cache_refuses_to_plant_read_or_flush_without_the_mesh_token(
    running_stack: RunningStack, token: str
) -> None:
    s = running_stack.settings
    with blocking_channel(address(s, "cache"), token) as channel:
        cache = cache_pb2_grpc.CacheStub(channel)
        refused(lambda: cache.Store(cache_pb2.StoreRequest(key=VICTIM, answer=PLANTED), timeout=10))
        refused(lambda: cache.Lookup(cache_pb2.LookupRequest(key=VICTIM), timeout=10))
        refused(lambda: cache.Invalidate(cache_pb2.InvalidateRequest(tenant="e2e-victim", all=True), timeout=10))
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING  # health stays open
    with blocking_channel(address(s, "cache"), s.mesh_token()) as channel:
        reply = cache_pb2_grpc.CacheStub(channel).Lookup(cache_pb2.LookupRequest(key=VICTIM), timeout=10)
    assert reply.decision.kind == common_pb2.CACHE_HIT_KIND_MISS  # nothing was planted


def test_every_stage_service_wants_the_mesh_token(running_stack: RunningStack) -> None:
    s = running_stack.settings
    messages = [common_pb2.Message(role=USER, content="Hi?")]
    calls: dict[str, Callable[[grpc.Channel], object]] = {
        "router": lambda c: router_pb2_grpc.RouterStub(c).Route(
            router_pb2.RouteRequest(tenant="e2e", messages=messages), timeout=10
        ),
        "compressor": lambda c: compressor_pb2_grpc.CompressorStub(c).Compress(
            compressor_pb2.CompressRequest(tenant="e2e"), timeout=10
        ),
        "summarizer": lambda c: summarizer_pb2_grpc.SummarizerStub(c).Prune(
            summarizer_pb2.PruneRequest(tenant="e2e", messages=messages), timeout=10
        ),
        "inference": lambda c: inference_pb2_grpc.InferenceStub(c).Generate(
            inference_pb2.GenerateRequest(tenant="e2e", tier=common_pb2.TIER_SMALL, messages=messages), timeout=10
        ),
    }
    for name, call in calls.items():
        with blocking_channel(address(s, name), "") as channel:
            refused(functools.partial(call, channel))
    with blocking_channel(address(s, "router"), s.mesh_token()) as channel:
        assert calls["router"](channel)  # the same call with the token is served


def stack_pids(run_dir: Path) -> set[int]:
    """The pids `costmesh up` recorded and every descendant of theirs (Ray's replicas, vLLM's workers)."""
    roots = {int(p.read_text()) for p in (run_dir / "pids").glob("*.pid") if p.read_text().strip().isdigit()}
    parent: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        try:
            parent[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (ValueError, OSError, IndexError):
            continue
    found = set(roots)
    while grown := {pid for pid, ppid in parent.items() if ppid in found and pid not in found}:
        found |= grown
    return found


def listeners() -> list[tuple[str, int, set[int]]]:
    """(host, port, pids) of every listening TCP socket, from `ss -ltnpH`."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        local = line.split()[3]
        host, port = local.rsplit(":", 1)
        rows.append((host.strip("[]"), int(port), {int(p) for p in re.findall(r"pid=(\d+)", line)}))
    return rows


def loopback(host: str) -> bool:
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False  # "*": every interface
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return (mapped or ip).is_loopback


def known_ports(s: StackSettings) -> set[int]:
    """Every port the stack's settings name, each service's /metrics port, and Weaviate's fixed ones."""
    ports = {int(getattr(s, n)) for n in type(s).model_fields if n.endswith("_port") and n != "metrics_base_port"}
    services = ("orchestrator", "router", "cache", "compressor", "summarizer", "inference", "batch")
    ports |= {s.metrics_base_port + getattr(s, f"{n}_port") - s.orchestrator_port for n in services}
    return ports | {7946, 7947, 8300, 8301}


def of_the_stack(pids: set[int], port: int, ours: set[int], ports: set[int]) -> bool:
    """A listener of the stack's processes; by its port only where ss could not name its process, so a
    listener of some other program on this machine never counts."""
    return bool(pids & ours) if pids else port in ports


def test_nothing_of_the_stack_listens_outside_loopback(running_stack: RunningStack) -> None:
    s = running_stack.settings
    ours, ports = stack_pids(s.run_dir), known_ports(s)
    stack = [(host, port, pids) for host, port, pids in listeners() if of_the_stack(pids, port, ours, ports)]
    exposed = [row for row in stack if not loopback(row[0])]
    # Upstream Weaviate binds its gRPC API and its cluster data API to every interface whatever its settings;
    # the weaviate-server scripts/setup.sh builds carries deploy/weaviate/bind-host.patch, which binds them.
    unpatched = [row for row in exposed if row[1] in {s.weaviate_grpc_port, 7947}]
    assert not unpatched, (
        f"Weaviate listens outside loopback ({unpatched}): its binary lacks deploy/weaviate/bind-host.patch;"
        " run scripts/setup.sh, then restart it (costmesh down --only weaviate; costmesh up --only weaviate)"
    )
    assert not exposed, f"stack listeners outside loopback: {exposed}"
    assert len(stack) > 10  # the stack is up and seen: the check above had something to check


def test_what_weaviate_exposes_refuses_anonymous_callers(running_stack: RunningStack) -> None:
    s = running_stack.settings
    rest = f"http://127.0.0.1:{s.weaviate_port}/v1"
    assert httpx.get(f"{rest}/.well-known/ready", timeout=5).status_code == 200
    assert httpx.get(f"{rest}/objects", timeout=5).status_code == 401  # any tenant's prompts and answers
    assert httpx.get("http://127.0.0.1:7947/indices/", timeout=5).status_code == 401  # cluster data API
    with grpc.insecure_channel(f"127.0.0.1:{s.weaviate_grpc_port}") as channel:
        search = channel.unary_unary("/weaviate.v1.Weaviate/Search")
        with pytest.raises(grpc.RpcError) as err:
            search(b"", timeout=10)
        assert "unauthorized" in (err.value.details() or "")  # type: ignore[attr-defined]
        key = (("authorization", f"Bearer {s.weaviate_api_key()}"),)
        with pytest.raises(grpc.RpcError) as past_auth:
            search(b"", metadata=key, timeout=10)  # an empty search: refused, but by the query, not auth
        assert "unauthorized" not in (past_auth.value.details() or "")  # type: ignore[attr-defined]
