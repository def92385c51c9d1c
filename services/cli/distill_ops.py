"""`costmesh distill gate|shadow|promote|plan|drift`: from an evaluated student to a served one, and back.

The gate compares the student with the teacher on held-out data; the shadow period compares them on live
traffic (the orchestrator answers with the teacher and asks the candidate alongside); promotion needs
both. Drift is read from the router's metrics (or Prometheus), with the same rule as the alert.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import replace

from costmesh.v1 import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from launcher.settings import StackSettings
from services.cli.keys import DEMO_TENANT, caller_key
from services.cli.tasks import emit, get_task, operator_channel, put_task, with_store
from services.common.errors import InvalidInput
from services.common.tasks import Task
from training.distill import data, drift, economics, label

SHADOW_TOLERANCE = 0.05  # live agreement may fall this far below the held-out agreement
SNAPSHOT_REFRESH_S = 6.0  # the services' registry snapshots refresh every 5 s (COSTMESH_ROUTER_TASKS_REFRESH_S)


def gate_cmd(args: argparse.Namespace, settings: StackSettings) -> int:
    """Passes when the student reaches `floor` x the teacher's gold accuracy (or, without gold labels,
    `floor` agreement with the teacher); a pass starts the shadow period."""
    task = get_task(settings, args.task)
    e = task.evaluation
    if not task.student or e.get("student") != task.student:
        raise InvalidInput(f"task {task.name!r}: evaluate the current student first (`costmesh distill eval`)")
    if e.get("teacher_accuracy") is not None:
        need, got, what = args.floor * e["teacher_accuracy"], e["student_accuracy"], "gold accuracy"
    else:
        need, got, what = args.floor, e["agreement"], "agreement with the teacher"
    passed = got >= need
    why = f"student {what} {got:.3f} {'>=' if passed else '<'} {need:.3f} (floor {args.floor:g})"
    if passed:
        put_task(settings, task.moved_to("shadow"))
        with_store(settings, lambda store: store.reset_shadow(task.name))
    emit({"task": task.name, "student": task.student, "passed": passed, "why": why})
    return 0 if passed else 1


def shadow_cmd(args: argparse.Namespace, settings: StackSettings) -> int:
    """Replays held-out inputs through the live orchestrator as the task's traffic, then reports the
    shadow comparisons the orchestrator recorded (live traffic adds to the same counters)."""
    task = get_task(settings, args.task)
    if task.state != "shadow":
        raise InvalidInput(f"task {task.name!r} is {task.state}, not in shadow: `costmesh distill gate` first")
    # The router and the orchestrator see the new state on their next registry refresh (every 5 s):
    # requests sent before that are answered as before and never compared.
    time.sleep(max(0.0, task.updated_s + SNAPSHOT_REFRESH_S - time.time()))
    before, _ = with_store(settings, lambda store: store.shadow(task.name))
    rows = data.spread(
        list(data.labelled(data.read_rows(data.labels_file(settings.data_dir, task.name)), "test")), args.replay
    )
    address = f"127.0.0.1:{settings.orchestrator_port}"
    channel, metadata = operator_channel(settings, address, caller_key(settings, args.key))
    stub = orchestrator_pb2_grpc.OrchestratorStub(channel)
    for row in rows:
        stub.Complete(_live_request(task, row.text, args.tenant), timeout=300, metadata=metadata)
    deadline = time.monotonic() + args.wait_s
    n, agree = with_store(settings, lambda store: store.shadow(task.name))
    while n < before + len(rows) and time.monotonic() < deadline:  # comparisons finish in the background
        time.sleep(1.0)
        n, agree = with_store(settings, lambda store: store.shadow(task.name))
    emit({"task": task.name, "replayed": len(rows), "shadow_n": n, "shadow_agreement": agree / n if n else None})
    return 0


def _live_request(task: Task, text: str, tenant: str) -> orchestrator_pb2.CompletionRequest:
    """The task's request as an application sends it: the teacher's prompt, the task named, no cache (a
    cache hit is never compared), the router deciding."""
    request = label.teacher_request(task, text)
    request.tenant, request.task, request.tier = tenant, task.name, common_pb2.TIER_UNSPECIFIED
    return request


def promote_cmd(args: argparse.Namespace, settings: StackSettings) -> int:
    task = get_task(settings, args.task)
    if task.state != "shadow":
        raise InvalidInput(f"task {task.name!r} is {task.state}: only a student in shadow can be promoted")
    n, agree = with_store(settings, lambda store: store.shadow(task.name))
    held_out = float(task.evaluation.get("agreement", 0.0))
    live = agree / n if n else 0.0
    if n < args.min_shadow:
        why = f"{n} shadow comparisons, {args.min_shadow} needed"
    elif live < held_out - SHADOW_TOLERANCE:
        why = f"live agreement {live:.3f} is below the held-out {held_out:.3f} - {SHADOW_TOLERANCE}"
    else:
        promoted = replace(task, serving_student=task.student, serving_adapter_path=task.adapter_path)
        put_task(settings, promoted.moved_to("serving"))
        emit({"task": task.name, "promoted": True, "student": task.student, "shadow_n": n, "shadow_agreement": live})
        return 0
    emit({"task": task.name, "promoted": False, "why": why})
    return 1


def plan_cmd(args: argparse.Namespace, settings: StackSettings) -> int:
    task = get_task(settings, args.task)
    e = task.evaluation
    if "teacher_usd_per_call" not in e:
        raise InvalidInput(f"task {task.name!r} has no evaluation: `costmesh distill eval` measures per-call costs")
    costs = economics.Costs(
        teacher_usd_per_call=float(e["teacher_usd_per_call"]),
        student_usd_per_call=float(e["student_usd_per_call"]),
        labelling_usd=task.labelling_usd,
        training_usd=economics.training_usd(task.train_s),
        serving_usd_per_month=economics.STUDENT_SERVER_USD_PER_MONTH,
        retrains_per_month=args.retrains_per_month,
    )
    result = economics.plan(costs, args.calls_per_month)
    print("\n".join(result.lines()))
    emit({"task": task.name} | result.as_dict())
    return 0


def drift_cmd(args: argparse.Namespace, settings: StackSettings) -> int:
    if args.prometheus:
        beyond, count = _from_prometheus(args.prometheus, args.task)
        source = "prometheus"
    else:
        url = args.router_metrics or f"http://127.0.0.1:{settings.metrics_base_port + 1}/metrics"
        beyond, count = drift.router_counts(url, args.task)
        source = "router"
    ratio = beyond / count if count else 0.0
    emit(
        {
            "task": args.task,
            "drifted": drift.drifted(beyond, count),
            "requests": count,
            "beyond_p95_ratio": ratio,
            "source": source,
        }
    )
    return 0


def _from_prometheus(base: str, task: str) -> tuple[float, float]:
    """The last hour, as the alert sees it."""

    def query(expr: str) -> float:
        url = f"{base.rstrip('/')}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=10) as response:
            result = json.load(response)["data"]["result"]
        return float(result[0]["value"][1]) if result else 0.0

    count = query(f'sum(increase(costmesh_task_centroid_distance_count{{task="{task}"}}[1h]))')
    beyond = query(f'sum(increase(costmesh_task_beyond_train_p95_total{{task="{task}"}}[1h]))')
    return beyond, count


COMMANDS: dict[str, Callable[[argparse.Namespace, StackSettings], int]] = {
    "gate": gate_cmd,
    "shadow": shadow_cmd,
    "promote": promote_cmd,
    "plan": plan_cmd,
    "drift": drift_cmd,
}


def add_parsers(actions: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    g = actions.add_parser("gate", help="refuse a student below the floor; a pass starts its shadow period")
    g.add_argument("--task", required=True)
    g.add_argument("--floor", type=float, default=0.95, help="share of the teacher's gold accuracy required")
    s = actions.add_parser("shadow", help="send held-out inputs through the live mesh; report shadow agreement")
    s.add_argument("--task", required=True)
    s.add_argument("--replay", type=int, default=20)
    s.add_argument("--wait-s", type=float, default=120.0, help="how long to wait for background comparisons")
    s.add_argument("--tenant", default=DEMO_TENANT)
    s.add_argument("--key", default="")
    p = actions.add_parser("promote", help="serve the student once its shadow period agrees with the gate")
    p.add_argument("--task", required=True)
    p.add_argument("--min-shadow", type=int, default=200, help="live comparisons required")
    pl = actions.add_parser("plan", help="break-even of distilling against routing and caching")
    pl.add_argument("--task", required=True)
    pl.add_argument("--calls-per-month", type=float, required=True)
    pl.add_argument("--retrains-per-month", type=float, default=1.0)
    dr = actions.add_parser("drift", help="the task's share of requests beyond the training p95 (the alert's rule)")
    dr.add_argument("--task", required=True)
    dr.add_argument("--prometheus", default="", help="a Prometheus base URL (last hour); default: the router")
    dr.add_argument("--router-metrics", default="", help="the router's /metrics URL (since it started)")
