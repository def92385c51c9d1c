"""`costmesh distill label|collect|train|eval`: from a task's inputs to an evaluated student.

Each command prints one JSON object as its last stdout line (the Airflow DAG reads it) and exits non-zero
on failure; the gate, shadow, promote, plan and drift commands are in distill_ops.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import grpc

from costmesh.v1 import batch_pb2_grpc, inference_pb2, inference_pb2_grpc
from launcher.settings import ROOT, StackSettings
from services.cli import distill_ops
from services.cli.keys import DEMO_TENANT, caller_key
from services.cli.tasks import emit, get_task, operator_channel, put_task, with_store
from services.common.embedding import load_minilm
from services.common.errors import InvalidInput, NotFound
from services.common.interceptors import blocking_channel
from services.common.tasks import Task, student_messages
from training.distill import centroid, data, evaluate, label

EMBEDDER = "all-minilm-l6-v2"
EVAL_TIMEOUT_S = 300.0  # one CPU-served call, the first one loading the adapter


def labels_path(settings: StackSettings, task: str) -> Path:
    return data.labels_file(settings.data_dir, task)


def label_cmd(args: argparse.Namespace, settings: StackSettings) -> int:
    task = get_task(settings, args.task)
    path = labels_path(settings, task.name)
    existing = data.read_rows(path)
    done = {row.text for row in existing if row.teacher}
    source = data.read_source(Path(args.source), args.text_field, args.label_field)
    if args.split != "auto":  # the source is a data set's own train or test file
        source = [replace(row, split=args.split) for row in source]
    todo = data.spread([r for r in source if r.text not in done], args.limit)
    channel, metadata = operator_channel(settings, f"127.0.0.1:{settings.batch_port}", caller_key(settings, args.key))
    stub = batch_pb2_grpc.BatchStub(channel)
    result = label.label(stub, metadata, args.tenant, task, todo) if todo else label.Labelled([], 0, 0.0, [])
    data.write_rows(path, data.merge(existing, result.rows))
    put_task(settings, replace(task, labelling_usd=task.labelling_usd + result.cost_usd))
    emit(
        {
            "task": task.name,
            "labelled": len(result.rows),
            "failed": result.failed,
            "cost_usd": result.cost_usd,
            "batches": result.batch_ids,
            "labels": str(path),
        }
    )
    return 0 if result.rows or not todo else 1


def collect_cmd(args: argparse.Namespace, settings: StackSettings) -> int:
    """The pairs the orchestrator recorded since the last collect, into the task's labelled rows."""
    task = get_task(settings, args.task)
    cursor_file = data.task_dir(settings.data_dir, task.name) / "collect.cursor"
    after = cursor_file.read_text().strip() if cursor_file.exists() else "0-0"
    pairs = with_store(settings, lambda store: store.pairs(task.name, after))
    rows = [data.Row(p["text"], "", p["teacher"]) for _, p in pairs if p.get("text") and p.get("teacher")]
    path = labels_path(settings, task.name)
    data.write_rows(path, data.merge(data.read_rows(path), rows))
    if pairs:
        cursor_file.write_text(pairs[-1][0])
    emit({"task": task.name, "collected": len(rows), "dataset": str(path)})
    return 0


def _next_student(settings: StackSettings, task: Task) -> str:
    root = data.task_dir(settings.data_dir, task.name) / "students"
    taken = {p.name for p in root.iterdir()} if root.exists() else set()
    n = 1
    while f"{task.name}-v{n}" in taken:
        n += 1
    return f"{task.name}-v{n}"


def train_cmd(args: argparse.Namespace, settings: StackSettings) -> int:
    task = get_task(settings, args.task)
    rows = data.spread(list(data.labelled(data.read_rows(labels_path(settings, task.name)), "train")), args.limit)
    if not rows:
        raise InvalidInput(f"task {task.name!r} has no teacher labels yet: run `costmesh distill label` first")
    if not settings.train_python.exists():
        raise InvalidInput(f"no training environment at {settings.train_python}: run `make setup`")
    student = _next_student(settings, task)
    out = data.task_dir(settings.data_dir, task.name) / "students" / student
    out.mkdir(parents=True)
    train_file = out / "train.jsonl"
    with train_file.open("w") as f:
        for row in rows:
            f.write(json.dumps({"messages": student_messages(task.instruction, row.text), "completion": row.teacher}))
            f.write("\n")
    task = put_task(settings, task.moved_to("training"))
    command = [
        str(settings.train_python),
        "-m",
        "training.distill.train",
        "--data",
        str(train_file),
        "--base",
        str(settings.models_dir / settings.small_model),
        "--out",
        str(out),
    ]
    if args.epochs:
        command += ["--epochs", str(args.epochs)]
    # The progress bar goes straight to the terminal (stderr); the summary is the last stdout line.
    run = subprocess.run(
        command,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    if run.returncode != 0:
        print(run.stdout, file=sys.stderr)
        raise InvalidInput(f"training failed (exit {run.returncode}); the student's folder is {out}")
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    fitted = centroid.fit(load_minilm(str(settings.models_dir / EMBEDDER), 2), [row.text for row in rows])
    put_task(
        settings,
        replace(
            task,
            student=student,
            adapter_path=str((out / "adapter").resolve()),
            centroid=fitted.vector,
            train_distance_p50=fitted.distance_p50,
            train_distance_p95=fitted.distance_p95,
            train_s=float(summary.get("train_s", 0.0)),
            evaluation={},
        ),
    )
    emit(
        {
            "task": task.name,
            "student": student,
            "n_train": len(rows),
            "train_s": summary.get("train_s"),
            "loss_first": summary.get("loss_first"),
            "loss_last": summary.get("loss_last"),
            "loss_curve": str(out / "loss.svg"),
            "train_distance_p95": fitted.distance_p95,
        }
    )
    return 0


def eval_cmd(args: argparse.Namespace, settings: StackSettings) -> int:
    task = get_task(settings, args.task)
    if not task.student:
        raise InvalidInput(f"task {task.name!r} has no student: run `costmesh distill train` first")
    test = data.spread(list(data.labelled(data.read_rows(labels_path(settings, task.name)), "test")), args.limit)
    if not test:
        raise InvalidInput(f"task {task.name!r} has no labelled held-out rows: label more inputs")
    stub = inference_pb2_grpc.InferenceStub(
        blocking_channel(f"127.0.0.1:{settings.inference_port}", settings.mesh_token())
    )

    def generate(request: inference_pb2.GenerateRequest) -> inference_pb2.GenerateResponse:
        response: inference_pb2.GenerateResponse = stub.Generate(request, timeout=EVAL_TIMEOUT_S)
        return response

    report = evaluate.evaluate(task, task.student, task.adapter_path, test, generate, args.teacher_sample)
    folder = data.task_dir(settings.data_dir, task.name) / "students" / task.student
    (folder / "eval.json").write_text(json.dumps(report, indent=1))
    (folder / "eval.md").write_text(evaluate.markdown(report))
    put_task(settings, replace(task, evaluation=report))
    emit({k: v for k, v in report.items() if k != "worst"} | {"report": str(folder / "eval.md")})
    return 0


COMMANDS = {"label": label_cmd, "collect": collect_cmd, "train": train_cmd, "eval": eval_cmd}


def main(args: argparse.Namespace, settings: StackSettings) -> int:
    command = COMMANDS.get(args.action) or distill_ops.COMMANDS[args.action]
    try:
        return command(args, settings)
    except (InvalidInput, NotFound, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except grpc.RpcError as exc:
        print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 2


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    d = sub.add_parser("distill", help="label, train, evaluate, gate, shadow and promote a task's student")
    actions = d.add_subparsers(dest="action", required=True)
    lb = actions.add_parser("label", help="teacher labels through the batch lane, at batch prices")
    lb.add_argument("--task", required=True)
    lb.add_argument("--from", dest="source", required=True, help="CSV or JSONL of inputs (gold labels optional)")
    lb.add_argument("--text-field", default="text")
    lb.add_argument("--label-field", default="")
    lb.add_argument("--limit", type=int, default=0, help="label at most this many (spread over the file)")
    lb.add_argument(
        "--split",
        choices=("auto", "train", "test"),
        default="auto",
        help="auto: one text in five held out, by hash; train/test: the file is that split",
    )
    lb.add_argument("--tenant", default=DEMO_TENANT)
    lb.add_argument("--key", default="")
    co = actions.add_parser("collect", help="the pairs the orchestrator recorded, into the labelled rows")
    co.add_argument("--task", required=True)
    tr = actions.add_parser("train", help="LoRA-fine-tune the small model on the teacher's labels")
    tr.add_argument("--task", required=True)
    tr.add_argument("--epochs", type=int, default=0, help="0: the training script's default")
    tr.add_argument("--limit", type=int, default=0)
    ev = actions.add_parser("eval", help="the student against the teacher and gold on the held-out split")
    ev.add_argument("--task", required=True)
    ev.add_argument("--limit", type=int, default=0)
    ev.add_argument("--teacher-sample", type=int, default=20, help="held-out rows sent to the teacher for latency")
    distill_ops.add_parsers(actions)
    d.set_defaults(fn=main)
