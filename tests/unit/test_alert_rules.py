"""The Prometheus rules in deploy/prometheus, checked and unit-tested with promtool (Debian's prometheus)."""

from __future__ import annotations

import shutil
import subprocess

from tests.helpers import ROOT

RULES = ROOT / "deploy" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: run `make setup` (it installs Debian's prometheus package)"
    return subprocess.run([binary, *args], cwd=RULES, capture_output=True, text=True, timeout=60, check=False)


def test_rules_are_valid() -> None:
    run = promtool("check", "rules", "rules.yml")
    assert run.returncode == 0, run.stdout + run.stderr


def test_escalation_alert_fires_only_above_baseline_for_ten_minutes() -> None:
    tests = sorted(p.name for p in (RULES / "tests").glob("*.yml"))
    assert {"escalation_test.yml", "cache_test.yml"} <= set(tests)  # CostmeshCacheSemanticFalseHits too
    run = promtool("test", "rules", *(f"tests/{t}" for t in tests))
    assert run.returncode == 0, run.stdout + run.stderr
