"""A Kafka queue whose broker is not there: UNAVAILABLE (not INTERNAL), and nothing left open between tries."""

from __future__ import annotations

import pytest

from services.batch.backends.base import WorkItem
from services.batch.backends.kafka import KafkaOptions, KafkaQueue
from services.common.errors import BackendUnavailable
from tests.helpers import free_port


async def test_no_broker_is_backend_unavailable_and_leaves_no_clients_behind() -> None:
    queue = KafkaQueue(KafkaOptions(f"127.0.0.1:{free_port()}", "costmesh.test", "costmesh-test"))
    for _ in range(2):  # the consumer loop and SubmitBatch retry: each failed start closes what it opened
        with pytest.raises(BackendUnavailable, match="Kafka at"):
            await queue.publish([WorkItem("b", 0)])
        assert queue._admin is None and queue._producer is None and queue._probe is None
    await queue.close()
