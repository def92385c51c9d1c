"""Percentiles over latency samples."""

from __future__ import annotations

import math
import statistics


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile, q in [0, 100]."""
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summarize_ms(samples_s: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "max_ms": round(max(ms), 3),
    }


def wilson(successes: int, n: int, z: float = 1.96) -> list[float] | None:
    """95 % Wilson score interval of a rate (None without trials): honest at 0 and at small n."""
    if n == 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def hit_rates(good: int, same: int, bad: int, different: int) -> dict[str, object]:
    """A cache's figures on labelled pairs: recall = good hits / same-answer pairs, false-hit rate = bad
    hits / different-answer pairs (each with its 95 % interval), precision = good / all hits."""
    return {
        "recall": round(good / same, 4) if same else None,
        "recall_ci95": wilson(good, same),
        "false_hit_rate": round(bad / different, 4) if different else None,
        "false_hit_ci95": wilson(bad, different),
        "precision": round(good / (good + bad), 4) if good + bad else None,
    }
