"""Routing policies replayed offline on outcome records: what each would have cost and answered.

Every record holds both tiers' real answers, so any policy's outcome on it is known without calling a
model again (the RouteLLM / RouterBench method). The cascade: the cheap tier first when P_pre >= the route
threshold; its answer kept when P_post >= the keep threshold, else the large tier answers too (both paid).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959964


@dataclass(frozen=True)
class Row:
    p_pre: float
    p_post: float
    small_correct: bool
    large_correct: bool
    small_cost: float
    large_cost: float


@dataclass(frozen=True)
class PolicyResult:
    """A policy on a set of rows: per row whether it answered right and what it paid."""

    correct: tuple[bool, ...]
    cost: tuple[float, ...]
    answered_cheap: int
    tried_cheap: int

    @property
    def n(self) -> int:
        return len(self.correct)

    @property
    def accuracy(self) -> float:
        return sum(self.correct) / max(1, self.n)

    @property
    def total_cost(self) -> float:
        return sum(self.cost)

    @property
    def cheap_share(self) -> float:
        return self.answered_cheap / max(1, self.n)

    @property
    def escalation_rate(self) -> float:
        """Share of cheap-tier attempts whose answer was replaced by the large tier's."""
        return (self.tried_cheap - self.answered_cheap) / max(1, self.tried_cheap)


def cascade(rows: Sequence[Row], route_threshold: float, keep_threshold: float) -> PolicyResult:
    correct, cost = [], []
    tried = kept = 0
    for r in rows:
        if r.p_pre < route_threshold:
            correct.append(r.large_correct)
            cost.append(r.large_cost)
            continue
        tried += 1
        if r.p_post >= keep_threshold:
            kept += 1
            correct.append(r.small_correct)
            cost.append(r.small_cost)
        else:
            correct.append(r.large_correct)
            cost.append(r.small_cost + r.large_cost)
    return PolicyResult(tuple(correct), tuple(cost), kept, tried)


def all_large(rows: Sequence[Row]) -> PolicyResult:
    return PolicyResult(tuple(r.large_correct for r in rows), tuple(r.large_cost for r in rows), 0, 0)


def all_small(rows: Sequence[Row]) -> PolicyResult:
    return PolicyResult(tuple(r.small_correct for r in rows), tuple(r.small_cost for r in rows), len(rows), len(rows))


def oracle(rows: Sequence[Row]) -> PolicyResult:
    """Knows which answer is good enough before calling: the ceiling any router aims at."""
    cheap = [r.small_correct or not r.large_correct for r in rows]
    return PolicyResult(
        tuple(r.small_correct if c else r.large_correct for r, c in zip(rows, cheap, strict=True)),
        tuple(r.small_cost if c else r.large_cost for r, c in zip(rows, cheap, strict=True)),
        sum(cheap),
        sum(cheap),
    )


def random_expected(rows: Sequence[Row], share: float) -> tuple[list[float], float]:
    """Random routing answering `share` of requests on the cheap tier: per-row expected correctness, and
    its expected total cost (no escalation: a random router has nothing to judge with)."""
    expected = [share * r.small_correct + (1 - share) * r.large_correct for r in rows]
    return expected, sum(share * r.small_cost + (1 - share) * r.large_cost for r in rows)


def paired_delta(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """Mean of a - b in points with a normal 95 % interval over the paired per-row differences."""
    d = [100.0 * (x - y) for x, y in zip(a, b, strict=True)]
    n = len(d)
    if n == 0:
        return 0.0, 0.0, 0.0
    mean = sum(d) / n
    var = sum((x - mean) ** 2 for x in d) / max(1, n - 1)
    half = Z95 * math.sqrt(var / n)
    return mean, mean - half, mean + half


def wilson(successes: int, n: int) -> tuple[float, float]:
    """95 % Wilson interval of a proportion."""
    if n == 0:
        return 0.0, 0.0
    p = successes / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    return centre - half, centre + half


def cheapest_within(
    rows: Sequence[Row], max_loss_pts: float, grid: Sequence[float]
) -> tuple[float, float, PolicyResult] | None:
    """The (route, keep) thresholds from the grid that cost least while losing at most `max_loss_pts`
    accuracy points against all-large on these rows; None when no point does (all-large then)."""
    baseline = all_large(rows).accuracy
    best: tuple[float, float, PolicyResult] | None = None
    for route in grid:
        for keep in grid:
            outcome = cascade(rows, route, keep)
            if 100 * (baseline - outcome.accuracy) > max_loss_pts + 1e-9:
                continue
            if best is None or outcome.total_cost < best[2].total_cost - 1e-15:
                best = (route, keep, outcome)
    return best
