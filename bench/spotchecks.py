"""The orchestrator's spot-checks of semantic hits over a replay, read from its /metrics before and after.

The counters are the orchestrator's, so the delta also counts any other traffic it served meanwhile, and
the checks are a sampled share (COSTMESH_CACHE_VERIFY_SAMPLE, 5 % by default: set 1 for a replay that is
meant to measure the false-hit rate). Checks run after their response: the replay waits for the ones in
flight before its last reading. An unreachable endpoint or a restart mid-run (a counter went down) gives
None, which the report shows as not measured.
"""

from __future__ import annotations

import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

OUTCOMES = ("agree", "disagree", "unclear", "error")
_COUNTERS = {
    "costmesh_cache_semantic_evicted_total": "evicted",
    "costmesh_cache_spotcheck_skipped_total": "skipped",
    "costmesh_cache_spotcheck_cost_usd_total": "cost_usd",
}
_IN_FLIGHT = "costmesh_cache_spotcheck_in_flight"


def read(url: str, timeout_s: float = 2.0) -> dict[str, float] | None:
    """The spot-check counters (by outcome, evicted, skipped, cost_usd) and in_flight; None if unreachable."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as reply:
            text = reply.read().decode()
    except OSError:
        return None
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "costmesh_cache_semantic_checked_total":
                values[sample.labels.get("outcome", "")] = sample.value
            elif sample.name in _COUNTERS:
                values[_COUNTERS[sample.name]] = sample.value
            elif sample.name == _IN_FLIGHT:
                values["in_flight"] = sample.value
    # An orchestrator without spot-checks exports none of these: nothing was measured.
    return values if "agree" in values else None


def settle(url: str, wait_s: float, poll_s: float = 1.0) -> dict[str, float] | None:
    """A reading once no check is in flight, or after wait_s (a check still running is then left out)."""
    deadline = time.monotonic() + wait_s
    while True:
        values = read(url)
        if values is None or values.get("in_flight", 0) == 0 or time.monotonic() >= deadline:
            return values
        time.sleep(poll_s)


def delta(before: dict[str, float] | None, after: dict[str, float] | None) -> dict[str, float] | None:
    """What the run added: counts as ints, cost in dollars; None when either reading is missing or a reset."""
    if before is None or after is None:
        return None
    keys = (*OUTCOMES, "evicted", "skipped", "cost_usd")
    added = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in keys}
    if any(v < 0 for v in added.values()):
        return None  # the orchestrator restarted during the run
    counts: dict[str, float] = {k: (round(v, 6) if k == "cost_usd" else int(v)) for k, v in added.items()}
    counts["unfinished"] = int(after.get("in_flight", 0))  # still running at the last reading: not counted
    return counts
