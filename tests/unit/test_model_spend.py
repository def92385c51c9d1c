"""What a failed request costs its key: the calls that answered, or its whole reservation when one was cut
off mid-generation; and a batch item over its key's budget fails instead of retrying until midnight."""

from __future__ import annotations

import asyncio
import contextvars

import grpc
import pytest

from services.batch.executor import retryable
from services.orchestrator.clients import charged
from services.orchestrator.servicer import spent_on_failure
from services.orchestrator.spend import Reservation, model_spend, track_model_spend

HOLD = Reservation("k", "costmesh:spend:k:20261203", 0.5)


async def test_answered_calls_are_charged_and_a_cut_off_one_makes_the_cost_uncertain() -> None:
    async def request() -> float:
        spend = track_model_spend()

        async def stage(usd: float) -> None:  # a stage task: it copies the request's context
            with charged() as charge:
                charge(usd)

        await asyncio.gather(stage(0.01), stage(0.02))
        with pytest.raises(grpc.RpcError), charged():
            raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata())
        assert not spend.uncertain  # refused: no tokens were generated
        with pytest.raises(TimeoutError), charged():
            raise TimeoutError
        return spend.usd if not spend.uncertain else -1.0

    assert await asyncio.create_task(request()) == -1.0
    assert model_spend() is None  # each request's tracker lives in its own task's context


def test_a_failed_request_settles_to_what_it_spent_unless_a_call_was_cut_off() -> None:
    def check() -> None:
        spend = track_model_spend()
        spend.usd = 0.02
        assert spent_on_failure(HOLD, spend) == 0.02
        spend.uncertain = True
        assert spent_on_failure(HOLD, spend) == 0.5
        assert spent_on_failure(None, spend) == 0.0

    contextvars.copy_context().run(check)  # the tracker must not leak into later tests' context


def rpc_error(code: grpc.StatusCode, *trailers: tuple[str, str]) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailers), "refused")


def test_the_batch_lane_waits_out_a_quota_but_not_a_daily_budget() -> None:
    assert retryable(rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED))
    assert retryable(rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, ("x-costmesh-limit", "rpm")))
    assert not retryable(rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, ("x-costmesh-limit", "budget")))
    assert not retryable(rpc_error(grpc.StatusCode.INVALID_ARGUMENT))
