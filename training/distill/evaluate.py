"""The evaluation gate's evidence: the student against the teacher on the held-out split, and against gold.

The student answers each held-out input on the student engine (through the inference service, priced at
the student's row); the teacher's answers are the labels it gave those inputs. A sample of the held-out
inputs is also sent to the teacher in real time, for its latency and real-time price per call. Accuracies
come with 95 % Wilson intervals: a few hundred held-out rows leave several points of doubt.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from costmesh.v1 import common_pb2, inference_pb2
from services.common.tasks import Task, normalise_answer, student_prompt
from training.distill.data import Row
from training.distill.label import teacher_request

Generate = Callable[[inference_pb2.GenerateRequest], inference_pb2.GenerateResponse]
ANSWER_MAX_TOKENS = 24


@dataclass(frozen=True)
class Call:
    answer: str
    latency_ms: float
    cost_usd: float


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def student_call(task: Task, student: str, adapter_path: str, text: str) -> inference_pb2.GenerateRequest:
    return inference_pb2.GenerateRequest(
        tenant="distill-eval",
        tier=common_pb2.TIER_SMALL,
        messages=student_prompt(task.instruction, text),
        sampling=common_pb2.SamplingParams(temperature=0.0, max_tokens=ANSWER_MAX_TOKENS),
        adapter=student,
        adapter_path=adapter_path,
    )


def teacher_call(task: Task, text: str) -> inference_pb2.GenerateRequest:
    request = teacher_request(task, text)
    return inference_pb2.GenerateRequest(
        tenant="distill-eval", tier=request.tier, messages=request.messages, sampling=request.sampling
    )


def timed(generate: Generate, request: inference_pb2.GenerateRequest) -> Call:
    started = time.perf_counter()
    response = generate(request)
    return Call(response.text.strip(), (time.perf_counter() - started) * 1000, response.cost.cost_usd)


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def evaluate(
    task: Task,
    student: str,
    adapter_path: str,
    test: list[Row],
    generate: Generate,
    teacher_sample: int = 20,
) -> dict[str, Any]:
    """The report `distill eval` writes: agreement, accuracies, worst intents, cost and latency."""
    student_calls = [
        timed(generate, student_call(task, student, adapter_path, row.text))
        for row in tqdm(test, desc=f"student {student}", unit="row", file=sys.stderr)
    ]
    sample = test[:: max(1, len(test) // max(1, teacher_sample))][:teacher_sample]
    teacher_calls = [
        timed(generate, teacher_call(task, row.text))
        for row in tqdm(sample, desc="teacher (latency sample)", unit="row", file=sys.stderr)
    ]
    return report(task, student, test, student_calls, teacher_calls)


def report(
    task: Task, student: str, test: list[Row], student_calls: list[Call], teacher_calls: list[Call]
) -> dict[str, Any]:
    n = len(test)
    agree = sum(
        normalise_answer(c.answer) == normalise_answer(r.teacher) for r, c in zip(test, student_calls, strict=True)
    )
    gold = [(r, c) for r, c in zip(test, student_calls, strict=True) if r.gold]
    student_right = sum(normalise_answer(c.answer) == normalise_answer(r.gold) for r, c in gold)
    teacher_right = sum(normalise_answer(r.teacher) == normalise_answer(r.gold) for r, _ in gold)
    misses: Counter[str] = Counter()
    confusions: Counter[tuple[str, str]] = Counter()
    for r, c in gold:
        if normalise_answer(c.answer) != normalise_answer(r.gold):
            misses[r.gold] += 1
            confusions[(r.gold, c.answer)] += 1
    per_gold = Counter(r.gold for r, _ in gold)
    out: dict[str, Any] = {
        "task": task.name,
        "student": student,
        "n_test": n,
        "agreement": agree / n if n else 0.0,
        "agreement_ci95": wilson(agree, n),
        "n_gold": len(gold),
        "student_accuracy": student_right / len(gold) if gold else None,
        "student_accuracy_ci95": wilson(student_right, len(gold)) if gold else None,
        "teacher_accuracy": teacher_right / len(gold) if gold else None,
        "teacher_accuracy_ci95": wilson(teacher_right, len(gold)) if gold else None,
        "worst": [
            {
                "gold": label,
                "missed": missed,
                "of": per_gold[label],
                "mostly_answered": [a for (g, a), _ in confusions.most_common() if g == label][:2],
            }
            for label, missed in misses.most_common(5)
        ],
        "student_usd_per_call": statistics.fmean(c.cost_usd for c in student_calls) if student_calls else 0.0,
        "teacher_usd_per_call": statistics.fmean(c.cost_usd for c in teacher_calls) if teacher_calls else 0.0,
        "student_p50_ms": percentile([c.latency_ms for c in student_calls], 0.5),
        "student_p99_ms": percentile([c.latency_ms for c in student_calls], 0.99),
        "teacher_p50_ms": percentile([c.latency_ms for c in teacher_calls], 0.5),
        "teacher_p99_ms": percentile([c.latency_ms for c in teacher_calls], 0.99),
        "n_teacher_latency": len(teacher_calls),
    }
    return out


def markdown(report: dict[str, Any]) -> str:
    def pct(value: Any) -> str:
        return "n/a" if value is None else f"{100 * value:.1f} %"

    lines = [
        f"# Evaluation of {report['student']} (task {report['task']})",
        "",
        f"- held-out rows: {report['n_test']} ({report['n_gold']} with gold labels)",
        f"- agreement with the teacher: {pct(report['agreement'])}",
        f"- gold accuracy: student {pct(report['student_accuracy'])}, teacher {pct(report['teacher_accuracy'])}",
        f"- cost per call: student ${report['student_usd_per_call']:.7f},"
        f" teacher ${report['teacher_usd_per_call']:.7f}",
        f"- latency p50/p99: student {report['student_p50_ms']:.0f}/{report['student_p99_ms']:.0f} ms,"
        f" teacher {report['teacher_p50_ms']:.0f}/{report['teacher_p99_ms']:.0f} ms"
        f" ({report['n_teacher_latency']} teacher calls)",
        "",
        "| gold label | missed | of | student answered |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {w['gold']} | {w['missed']} | {w['of']} | {', '.join(w['mostly_answered'])} |" for w in report["worst"]
    ]
    return "\n".join(lines) + "\n"
