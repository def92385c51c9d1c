"""The batch lane end to end: the CLI, the batch service's RPCs, its consumer, real vLLM.

The consumer is killed with SIGKILL in the middle of the job and started again; every item must still be
answered exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from launcher.process import ProcessTable
from tests.e2e.conftest import RunningStack
from tests.helpers import api_key, costmesh

pytestmark = pytest.mark.e2e
QUESTIONS = [
    "Name a primary colour.",
    "What is 2 + 2?",
    "Name a fruit that is yellow.",
    "What is the opposite of hot?",
    "Name a day of the week.",
    "What animal says moo?",
]


def batch_file(tmp_path: Path) -> Path:
    lines = [
        json.dumps(
            {
                "custom_id": f"q{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": q}], "max_tokens": 12},
            }
        )
        for i, q in enumerate(QUESTIONS)
    ]
    lines.insert(2, '{"custom_id": "broken", "body": ')  # one bad line: its own error, not a failed job
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def status_of(tenant: str, batch_id: str) -> str:
    done = costmesh("batch", "status", batch_id, "--key", api_key(tenant, "--allow-batch"))
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_submit_crash_restart_results_exactly_once(running_stack: RunningStack, tmp_path: Path) -> None:
    tenant = f"e2e{uuid.uuid4().hex[:8]}"
    submitted = costmesh("batch", "submit", str(batch_file(tmp_path)), "--key", api_key(tenant, "--allow-batch"))
    assert submitted.returncode == 0, submitted.stderr
    batch_id = submitted.stdout.strip()
    assert batch_id.startswith("batch_")

    # Kill the consumer as soon as it has answered something, then start it again.
    deadline = time.monotonic() + 300
    while " 1/" in status_of(tenant, batch_id) and time.monotonic() < deadline:  # only the bad line so far
        time.sleep(0.5)
    pid = ProcessTable(running_stack.settings.run_dir).pid("batch")
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)
    restarted = costmesh("up", "--only", "batch")
    assert restarted.returncode == 0, restarted.stderr

    watched = costmesh("batch", "status", batch_id, "--key", api_key(tenant, "--allow-batch"), "--watch", timeout_s=900)
    assert watched.returncode == 0, watched.stderr
    assert "7/7 completed" in watched.stderr

    results = costmesh("batch", "results", batch_id, "--key", api_key(tenant, "--allow-batch"))
    assert results.returncode == 0, results.stderr
    lines = [json.loads(line) for line in results.stdout.splitlines()]
    by_id = {line["custom_id"]: line for line in lines}
    assert len(lines) == 7 and len(by_id) == 7  # every item exactly once, the crash notwithstanding
    assert by_id["broken"]["error"]["code"] == "INVALID_ARGUMENT"
    for i in range(len(QUESTIONS)):
        line = by_id[f"q{i}"]
        assert line["error"] is None, line
        body = line["response"]["body"]
        assert body["choices"][0]["message"]["content"].strip()
        costs = line["response"]["costmesh"]
        if costs["cost_usd"] > 0:  # answered by a model (not a cache hit): priced at batch prices
            assert costs["savings_by_intervention"]["batch"] > 0


def test_unknown_batch_is_not_found_and_a_malformed_id_is_invalid(running_stack: RunningStack) -> None:
    key = api_key("someone", "--allow-batch")
    done = costmesh("batch", "status", "batch_" + "0" * 32, "--key", key)
    assert done.returncode == 2
    assert "NOT_FOUND" in done.stderr
    malformed = costmesh("batch", "status", "queue", "--key", key)
    assert malformed.returncode == 2
    assert "INVALID_ARGUMENT" in malformed.stderr
