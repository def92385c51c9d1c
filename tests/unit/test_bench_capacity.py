"""bench capacity's arithmetic: CPU read from /proc per process group, charged per request net of idle."""

from __future__ import annotations

import os
import time

from bench.capacity import group_cpu_s, per_request


def test_group_cpu_counts_this_process_group_and_grows_with_work() -> None:
    before = group_cpu_s(os.getpgrp())
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    assert group_cpu_s(os.getpgrp()) - before >= 0.25
    assert group_cpu_s(2**22 + 12345) == 0.0  # no such group


def test_per_request_subtracts_idle_cpu_and_inverts_to_requests_per_core() -> None:
    before, after = {"cache": 10.0, "router": 5.0}, {"cache": 12.5, "router": 5.1}
    out = per_request(before, after, {"cache": 0.5, "router": 0.2}, 100)
    assert out["cache"] == {"cpu_ms": 20.0, "rps_per_core": 50.0}  # (2.5 - 0.5) s over 100 requests
    assert out["router"] == {"cpu_ms": 0.0, "rps_per_core": None}  # less than its idle work: not measurable
