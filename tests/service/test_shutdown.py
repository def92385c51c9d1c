"""SIGTERM: a real service process stops taking new work, finishes what is in flight, and exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from costmesh.v1 import common_pb2, summarizer_pb2, summarizer_pb2_grpc
from services.common.interceptors import client_channel
from services.inference.server import build_server as build_inference
from services.inference.settings import InferenceSettings
from tests.helpers import ROOT, free_port
from tests.service.fakes import EchoBackend
from tests.service.mesh import inference_core


async def wait_serving(address: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with client_channel(address) as channel:
        while time.monotonic() < deadline:
            try:
                reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError(f"{address} never became SERVING")


async def test_sigterm_finishes_in_flight_work_then_exits_zero(tmp_path: Path) -> None:
    # A slow model (1.5 s per call) behind a real inference server, so a Prune call is in flight.
    inference = await build_inference(
        InferenceSettings(port=0), inference_core([EchoBackend(delay_s=1.5)], [EchoBackend()])
    )
    await inference.server.start()
    await inference.refresh_health()
    port = free_port()
    log = (tmp_path / "summarizer.log").open("w")
    env = {
        **os.environ,
        "COSTMESH_SUMMARIZER_PORT": str(port),
        "COSTMESH_SUMMARIZER_INFERENCE_ADDR": f"127.0.0.1:{inference.port}",
        "COSTMESH_SUMMARIZER_GRACE_S": "10",
    }
    proc = subprocess.Popen(  # noqa: ASYNC220 - a child we signal and wait for
        [sys.executable, "-m", "services.summarizer"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    address = f"127.0.0.1:{port}"
    try:
        await wait_serving(address)
        history = [common_pb2.Message(role=common_pb2.ROLE_USER, content="tell me about orders " * 400)] * 3
        history.append(common_pb2.Message(role=common_pb2.ROLE_USER, content="latest"))
        async with client_channel(address) as channel:
            call = summarizer_pb2_grpc.SummarizerStub(channel).Prune(  # an awaitable call, already sent
                summarizer_pb2.PruneRequest(tenant="acme", messages=history, keep_last=1), timeout=20
            )
            await asyncio.sleep(0.5)  # the summary call to the slow model is under way
            proc.send_signal(signal.SIGTERM)
            reply = await call
        assert reply.report.applied
        assert reply.messages[-1].content == "latest"
        assert await asyncio.to_thread(proc.wait, 15) == 0
        text = (tmp_path / "summarizer.log").read_text()
        assert "shutting down" in text
        assert "summarizer stopped" in text
    finally:
        if proc.poll() is None:
            proc.kill()
        await inference.stop(0)
