"""The whole mesh as `costmesh up` starts it, with spans exported to a receiver the tests read."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from launcher import stack as launcher
from launcher.components import SERVICES
from launcher.settings import StackSettings
from tests import stack
from tests.e2e import otlp


@dataclass
class RunningStack:
    settings: StackSettings
    receiver: otlp.Receiver

    @property
    def orchestrator(self) -> str:
        return f"127.0.0.1:{self.settings.orchestrator_port}"


@pytest.fixture(scope="session")
def running_stack() -> Iterator[RunningStack]:
    server, receiver, port = otlp.start()
    os.environ["OTEL_BSP_SCHEDULE_DELAY"] = "200"  # services flush spans every 200 ms (OTel SDK setting)
    infra_started = stack.start(StackSettings(), stack.INFRA)
    settings = StackSettings(otlp_endpoint=f"http://127.0.0.1:{port}")
    # The mesh services are (re)started so that they export to this receiver. They run without random
    # spot-checks of semantic hits (5 % by default): a check judged by the near-chance 0.5B stand-in can
    # evict the entry a test's next step expects (CI saw "no semantic neighbour" where the guard's verdict
    # was asserted); tests/service/test_spotcheck.py covers the checks. Set only while they start: this
    # process's own settings (later unit tests) must not see it.
    launcher.down(settings, only=list(SERVICES), say=lambda _: None)
    os.environ["COSTMESH_CACHE_VERIFY_SAMPLE"] = "0"
    try:
        services_started = stack.start(settings, list(SERVICES))
    finally:
        os.environ.pop("COSTMESH_CACHE_VERIFY_SAMPLE", None)
    try:
        yield RunningStack(settings, receiver)
    finally:
        stack.stop(settings, services_started)
        stack.stop(settings, infra_started)
        os.environ.pop("OTEL_BSP_SCHEDULE_DELAY", None)
        server.stop(0)
