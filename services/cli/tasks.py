"""`costmesh tasks create|list|show`: the distillation task registry (services/common/tasks.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import grpc
import redis.asyncio as redis

from launcher.settings import StackSettings
from services.cli.ask import auth_metadata
from services.common.errors import InvalidInput, NotFound
from services.common.interceptors import blocking_channel
from services.common.tasks import Task, TaskStore, check_name
from training.distill.data import read_source

T = TypeVar("T")
TEACHER_PROMPT = "{instruction}\nAnswer with exactly one of these labels and nothing else: {labels}."


def with_store(settings: StackSettings, work: Callable[[TaskStore], Awaitable[T]]) -> T:
    async def run() -> T:
        client = redis.Redis.from_url(settings.redis_url())
        try:
            return await work(TaskStore(client))
        finally:
            await client.aclose()

    return asyncio.run(run())


def get_task(settings: StackSettings, name: str) -> Task:
    return with_store(settings, lambda store: store.get(name))


def put_task(settings: StackSettings, task: Task) -> Task:
    return with_store(settings, lambda store: store.put(task))


def emit(result: dict[str, object]) -> None:
    """A command's result: one JSON object, the last line of its stdout (the Airflow DAG reads it)."""
    print(json.dumps(result), flush=True)


def operator_channel(
    settings: StackSettings, address: str, key: str
) -> tuple[grpc.Channel, tuple[tuple[str, str], ...]]:
    """How the distill commands reach the orchestrator and the batch lane: with the caller's API key when
    there is one (--key, $COSTMESH_API_KEY, the demo key), else as an operator's tool with the stack's
    mesh token (which names its tenant; no key's budget applies)."""
    if key:
        return grpc.insecure_channel(address), auth_metadata(key)
    return blocking_channel(address, settings.mesh_token()), ()


def labels_from(path: Path, label_field: str) -> tuple[str, ...]:
    rows = read_source(path, label_field=label_field)
    labels = sorted({row.gold for row in rows if row.gold})
    if not labels:
        raise InvalidInput(f"{path} has no gold labels (looked for {label_field or 'label / category'})")
    return tuple(labels)


def create(args: argparse.Namespace, settings: StackSettings) -> int:
    labels = labels_from(Path(args.labels_from), args.label_field) if args.labels_from else ()
    prompt = args.teacher_prompt or (
        TEACHER_PROMPT.format(instruction=args.instruction, labels=", ".join(labels)) if labels else args.instruction
    )
    task = Task(
        name=check_name(args.name),
        instruction=args.instruction,
        teacher_prompt=prompt,
        labels=labels,
        teacher_tier=args.teacher_tier,
        collect=args.collect,
    ).moved_to("collecting")

    async def put(store: TaskStore) -> Task:
        try:
            await store.get(task.name)
        except NotFound:
            return await store.put(task)
        raise InvalidInput(f"task {task.name!r} exists; `costmesh tasks show {task.name}`")

    print(json.dumps(summary(with_store(settings, put))))
    return 0


def summary(task: Task) -> dict[str, object]:
    """A task without its centroid (384 numbers) and with its prompt shortened."""
    out = task.as_dict()
    out["centroid"] = f"{len(task.centroid)} dims" if task.centroid else ""
    out["teacher_prompt"] = task.teacher_prompt[:120] + ("…" if len(task.teacher_prompt) > 120 else "")
    out["labels"] = len(task.labels)
    return out


def show(args: argparse.Namespace, settings: StackSettings) -> int:
    task = with_store(settings, lambda store: store.get(args.name))
    shadow = with_store(settings, lambda store: store.shadow(args.name))
    out = summary(task) | {"shadow_n": shadow[0], "shadow_agree": shadow[1]}
    print(json.dumps(out) if args.json else "\n".join(f"{k:<22}{v}" for k, v in out.items()))
    return 0


def list_tasks(args: argparse.Namespace, settings: StackSettings) -> int:
    tasks = with_store(settings, lambda store: store.all())
    if args.json:
        print(json.dumps([summary(t) for t in tasks]))
        return 0
    w = max([20, *(len(t.name) + 2 for t in tasks)])
    sw = max([24, *(len(t.student) + 2 for t in tasks)])
    print(f"{'task':<{w}}{'state':<12}{'teacher':<9}{'student':<{sw}}{'collect':<9}{'agreement':<11}accuracy s/t")
    for t in tasks:
        e = t.evaluation
        agreement = f"{100 * e['agreement']:.1f} %" if "agreement" in e else "-"
        acc = (
            f"{100 * e['student_accuracy']:.1f} / {100 * e['teacher_accuracy']:.1f} %"
            if e.get("student_accuracy") is not None and e.get("teacher_accuracy") is not None
            else "-"
        )
        collect = "yes" if t.collect else "no"
        print(f"{t.name:<{w}}{t.state:<12}{t.teacher_tier:<9}{t.student or '-':<{sw}}{collect:<9}{agreement:<11}{acc}")
    return 0


def delete(args: argparse.Namespace, settings: StackSettings) -> int:
    if not with_store(settings, lambda store: store.delete(args.name)):
        raise NotFound(f"no task {args.name!r}")
    emit({"task": args.name, "deleted": True})
    return 0


def main(args: argparse.Namespace, settings: StackSettings) -> int:
    try:
        return {"create": create, "list": list_tasks, "show": show, "delete": delete}[args.action](args, settings)
    except (InvalidInput, NotFound, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    t = sub.add_parser("tasks", help="distillation tasks: `create --name T ...`, `list`, `show T`, `delete T`")
    actions = t.add_subparsers(dest="action", required=True)
    c = actions.add_parser("create", help="register a task (state collecting)")
    c.add_argument("--name", required=True)
    c.add_argument("--instruction", required=True, help="the student's short system prompt")
    c.add_argument("--teacher-prompt", default="", help="the teacher's system prompt; default: instruction + labels")
    c.add_argument("--labels-from", default="", help="a CSV/JSONL whose gold labels are the task's answers")
    c.add_argument("--label-field", default="", help="the gold label column (default: label, then category)")
    c.add_argument("--teacher-tier", default="large", choices=("large", "small"))
    c.add_argument("--collect", action="store_true", help="record the task's large-tier answers for training")
    lst = actions.add_parser("list", help="every task: state, teacher, student, evaluation")
    lst.add_argument("--json", action="store_true")
    s = actions.add_parser("show", help="one task's registry entry and shadow counters")
    s.add_argument("name")
    s.add_argument("--json", action="store_true")
    d = actions.add_parser("delete", help="forget a task: registry entry, shadow counters, recorded pairs")
    d.add_argument("name")
    t.set_defaults(fn=main)
