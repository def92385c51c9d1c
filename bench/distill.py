"""`costmesh bench distill`: a student distilled from the large tier on banking77, and the drift alert's data.

Runs the `costmesh distill` commands against the running stack, as a user would: a fresh task whose
labels are banking77's 77 intents, teacher labels for N train rows (banking77's train file) and M
held-out rows (its test file, with gold labels) through the batch lane, training, evaluation. Then the
drift signal: held-out banking77 queries and CLINC150 queries (another data set, ten domains) are routed
as the task by the live router, and the share of each stream beyond the training p95 distance is read
back from the router's own counters and compared with CostmeshTaskDrift's rule (> 20 % with >= 30
requests). The last line is the JSON summary the issue names.

What it limits: the teacher is the local large-tier stand-in, so its accuracy is the ceiling the student
is compared against (the student learns the teacher's labels, mistakes included); both sets are public
data no part of costmesh was tuned on; costs use the documented price rows (gpt-4o for the teacher, the
self-hosted student row), latencies are this 2-core machine's with every other service running.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import subprocess
import sys
import time
from typing import Any

from bench.output import emit
from costmesh.v1 import common_pb2, router_pb2, router_pb2_grpc
from launcher.settings import ROOT, StackSettings
from services.common.embedding import load_minilm
from services.common.interceptors import blocking_channel
from training.distill import data, drift

DATA = ROOT / "bench" / "data"
INSTRUCTION = "Classify the banking customer's message into its intent. Answer with the intent name only."


def costmesh(*args: str) -> dict[str, Any]:
    """One CLI command; its last stdout line is its JSON result (progress bars go to stderr)."""
    command = [str(ROOT / ".venv" / "bin" / "costmesh"), *args]
    print("$ costmesh " + " ".join(args), file=sys.stderr, flush=True)
    run = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    if run.returncode not in (0, 1):
        raise SystemExit(f"`costmesh {' '.join(args)}` failed (exit {run.returncode}):\n{run.stdout}")
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


def metrics_url(settings: StackSettings) -> str:
    return f"http://127.0.0.1:{settings.metrics_base_port + 1}/metrics"


def stream_share(settings: StackSettings, task: str, texts: list[str]) -> dict[str, Any]:
    """Routes each text as the task; the share beyond the training p95, from the router's counters."""
    embedder = load_minilm(str(settings.models_dir / "all-minilm-l6-v2"), 2)
    stub = router_pb2_grpc.RouterStub(blocking_channel(f"127.0.0.1:{settings.router_port}", settings.mesh_token()))
    beyond0, count0 = drift.router_counts(metrics_url(settings), task)
    for text in texts:
        vector = embedder.embed([text])[0]
        request = router_pb2.RouteRequest(
            tenant="bench-distill",
            task=task,
            messages=[common_pb2.Message(role=common_pb2.ROLE_USER, content=text)],
            embedding=common_pb2.Embedding(values=vector.tolist(), model=embedder.name),
        )
        stub.Route(request, timeout=10)
    time.sleep(0.2)
    beyond1, count1 = drift.router_counts(metrics_url(settings), task)
    n, beyond = count1 - count0, beyond1 - beyond0
    share = beyond / n if n else 0.0
    return {
        "n": int(n),
        "beyond_p95": int(beyond),
        "share": share,
        "alert_fires": drift.drifted(beyond, n),
    }


def clinc_queries(n: int, seed: int) -> list[str]:
    raw = json.loads((DATA / "clinc150" / "data_full.json").read_text())
    texts = [text for text, _ in raw["test"]]
    return random.Random(seed).sample(texts, n)


def banking_test(n: int, seed: int, skip: set[str]) -> list[str]:
    with (DATA / "banking77" / "test.csv").open(newline="") as f:
        texts = [row["text"] for row in csv.DictReader(f) if row["text"] not in skip]
    return random.Random(seed).sample(texts, n)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="costmesh bench distill", description=__doc__)
    p.add_argument("--n-train", type=int, default=1000)
    p.add_argument("--n-test", type=int, default=300)
    p.add_argument("--epochs", type=int, default=0, help="0: the training script's default")
    p.add_argument("--drift-n", type=int, default=200, help="queries per drift stream")
    p.add_argument("--task", default="", help="reuse a task (skips creation and labelling already done)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    settings = StackSettings()
    task = args.task or f"banking77-bench-{int(time.time())}"
    if not args.task:
        costmesh(
            "tasks",
            "create",
            "--name",
            task,
            "--labels-from",
            str(DATA / "banking77" / "train.csv"),
            "--instruction",
            INSTRUCTION,
        )
    started = time.perf_counter()
    train = costmesh(
        "distill",
        "label",
        "--task",
        task,
        "--from",
        str(DATA / "banking77" / "train.csv"),
        "--split",
        "train",
        "--limit",
        str(args.n_train),
    )
    test = costmesh(
        "distill",
        "label",
        "--task",
        task,
        "--from",
        str(DATA / "banking77" / "test.csv"),
        "--split",
        "test",
        "--limit",
        str(args.n_test),
    )
    emit({"step": "label", "train": train, "test": test, "s": round(time.perf_counter() - started, 1)})
    trained = costmesh("distill", "train", "--task", task, *(["--epochs", str(args.epochs)] if args.epochs else []))
    emit({"step": "train"} | trained)
    report = costmesh("distill", "eval", "--task", task)
    emit({"step": "eval"} | report)
    labelled = {row.text for row in data.read_rows(data.labels_file(settings.data_dir, task))}
    quiet = stream_share(settings, task, banking_test(args.drift_n, args.seed, labelled))
    shifted = stream_share(settings, task, clinc_queries(args.drift_n, args.seed))
    emit({"step": "drift", "banking77_held_out": quiet, "clinc150_as_banking": shifted})
    try:
        plan = costmesh("distill", "plan", "--task", task, "--calls-per-month", "1000000")
        emit({"step": "plan"} | plan)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
    emit(
        {
            "task": task,
            "n_train": trained.get("n_train"),
            "n_test": report.get("n_test"),
            "teacher_accuracy": report.get("teacher_accuracy"),
            "student_accuracy": report.get("student_accuracy"),
            "agreement": report.get("agreement"),
            "teacher_usd_per_1k": 1000 * report.get("teacher_usd_per_call", 0.0),
            "student_usd_per_1k": 1000 * report.get("student_usd_per_call", 0.0),
            "teacher_p50_ms": report.get("teacher_p50_ms"),
            "student_p50_ms": report.get("student_p50_ms"),
            "train_s": trained.get("train_s"),
            "drift_quiet_share": quiet["share"],
            "drift_shifted_share": shifted["share"],
            "drift_alert_quiet": not quiet["alert_fires"],
            "drift_alert_fires": shifted["alert_fires"],
        }
    )
    return 0
