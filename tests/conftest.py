"""Shared test set-up: one in-memory span exporter for every in-process service, and the mesh token they
share."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.common.meshauth import MESH_TOKEN_ENV

TEST_MESH_TOKEN = "test-mesh-token"
_EXPORTER = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
trace.set_tracer_provider(_provider)


@pytest.fixture
def spans() -> InMemorySpanExporter:
    _EXPORTER.clear()
    return _EXPORTER


@pytest.fixture(autouse=True, scope="session")
def mesh_token() -> Iterator[str]:
    """In-process services expect, and their client channels send, this token (as `costmesh up` sets one).

    Tests against the running stack use the stack's own token (StackSettings.mesh_token()) instead.
    """
    before = os.environ.get(MESH_TOKEN_ENV)
    os.environ[MESH_TOKEN_ENV] = TEST_MESH_TOKEN
    yield TEST_MESH_TOKEN
    if before is None:
        os.environ.pop(MESH_TOKEN_ENV, None)
    else:
        os.environ[MESH_TOKEN_ENV] = before
