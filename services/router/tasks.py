"""Which distillation task a request belongs to, and the drift signals that come with knowing it.

Every request matched to a task (named by it, or assigned by nearest centroid) puts its distance to the
task's training centroid into a histogram; the Prometheus rule `CostmeshTaskDrift`
(deploy/prometheus/rules.yml) compares the last hour's share beyond the training p95 with the 5 % that
training-like traffic gives. Memory only: the registry snapshot is refreshed off the hot path.
"""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from costmesh.v1 import router_pb2
from services.common.tasks import Match, TaskTable, match_proto

DISTANCE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))  # cosine distance, 0.05 .. 1.0
LIVE_CENTROID_WEIGHT = 0.01  # each request's share of the live centroid: about the last 100 requests


class TaskMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.distance = Histogram(
            "costmesh_task_centroid_distance",
            "Cosine distance of a task's requests to the task's training centroid",
            ["task"],
            buckets=DISTANCE_BUCKETS,
            registry=registry,
        )
        self.beyond_p95 = Counter(
            "costmesh_task_beyond_train_p95",
            "Task requests farther from the centroid than 95 % of the training inputs",
            ["task"],
            registry=registry,
        )
        self.matched = Counter(
            "costmesh_task_requests", "Requests matched to a task", ["task", "how"], registry=registry
        )
        self.train_distance = Gauge(
            "costmesh_task_train_distance",
            "Quantiles of the training inputs' distances to their centroid",
            ["task", "quantile"],
            registry=registry,
        )
        self.centroid_norm = Gauge(
            "costmesh_task_centroid_norm",
            "Norm of the training centroid (mean of unit embeddings: 1 = identical inputs, 0 = spread out)",
            ["task"],
            registry=registry,
        )
        self.live_shift = Gauge(
            "costmesh_task_live_centroid_shift",
            "Cosine distance between the live requests' moving centroid and the training centroid",
            ["task"],
            registry=registry,
        )


class TaskRouting:
    def __init__(self, table: TaskTable, metrics: TaskMetrics) -> None:
        self._table = table
        self._metrics = metrics
        self._live: dict[str, np.ndarray] = {}  # task -> moving centroid of its live requests

    def export_training(self) -> None:
        """The training side of each task's drift comparison, as gauges (called after each refresh)."""
        for task in self._table.tasks.values():
            if task.centroid:
                self._metrics.train_distance.labels(task.name, "0.5").set(task.train_distance_p50)
                self._metrics.train_distance.labels(task.name, "0.95").set(task.train_distance_p95)
                self._metrics.centroid_norm.labels(task.name).set(float(np.linalg.norm(task.centroid)))

    def match(self, named: str, embedding: list[float]) -> router_pb2.TaskMatch | None:
        vector = np.asarray(embedding, dtype=np.float32)
        found = self._table.match(named, vector)
        if found is None:
            return None
        self._observe(found, vector)
        return match_proto(found)

    def _observe(self, found: Match, vector: np.ndarray) -> None:
        task = found.task
        self._metrics.matched.labels(task.name, "assigned" if found.assigned else "named").inc()
        if found.distance < 0:
            return
        self._metrics.distance.labels(task.name).observe(found.distance)
        if found.distance > task.train_distance_p95:
            self._metrics.beyond_p95.labels(task.name).inc()
        unit = vector / max(float(np.linalg.norm(vector)), 1e-12)
        live = self._live.get(task.name)
        live = unit if live is None else (1 - LIVE_CENTROID_WEIGHT) * live + LIVE_CENTROID_WEIGHT * unit
        self._live[task.name] = live
        self._metrics.live_shift.labels(task.name).set(self._table.distance(task, live))
