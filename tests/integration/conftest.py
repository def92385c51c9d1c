from __future__ import annotations

from collections.abc import Iterator

import pytest

from launcher.settings import StackSettings
from tests import stack


@pytest.fixture(scope="session")
def infra() -> Iterator[StackSettings]:
    """Real Redis, Weaviate, the two vLLM servers and Ray Serve. Never skipped: if they cannot start, tests error."""
    settings = StackSettings()
    started = stack.start(settings, stack.INFRA)
    yield settings
    stack.stop(settings, started)
