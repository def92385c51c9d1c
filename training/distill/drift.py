"""The drift signal as `costmesh distill drift` and `costmesh bench distill` read it: the router's counters.

The same rule as the CostmeshTaskDrift alert (deploy/prometheus/rules.yml): more than 20 % of a task's
requests beyond its training p95 distance, over at least 30 requests.
"""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

DRIFT_RATIO, DRIFT_MIN_REQUESTS = 0.20, 30


def drifted(beyond: float, count: float) -> bool:
    return count >= DRIFT_MIN_REQUESTS and beyond / count > DRIFT_RATIO


def router_counts(metrics_url: str, task: str) -> tuple[float, float]:
    """Since the router started: the task's requests beyond the training p95, and all of its measured ones."""
    with urllib.request.urlopen(metrics_url, timeout=10) as response:
        text = response.read().decode()
    beyond = count = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("task") != task:
                continue
            if sample.name == "costmesh_task_beyond_train_p95_total":
                beyond += sample.value
            elif sample.name == "costmesh_task_centroid_distance_count":
                count += sample.value
    return beyond, count
