"""The quality estimator through the in-process mesh: Route picks the cheap tier, Assess judges its answer.

The model file is made here (384-d, like the orchestrator's MiniLM embedding): the pre-call head always
trusts the cheap tier, the post-call head trusts it only when its tokens were likely. So the cheap answer's
logprobs alone decide whether the large tier is asked.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import numpy as np
import pytest

from costmesh.v1 import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc, router_pb2, router_pb2_grpc
from services.router.estimator import FEATURE_NAMES, SIGNAL_NAMES, Head, OperatingPoint, QualityModel
from services.router.settings import RouterSettings
from tests.service.fakes import EchoBackend, ScriptedBackend
from tests.service.mesh import Mesh, start_mesh
from tests.unit.fakes import MemoryExactStore

DIM = 384


def model_file(tmp_path: Path) -> Path:
    pre = np.zeros(DIM + len(FEATURE_NAMES))
    post = np.zeros(DIM + len(FEATURE_NAMES) + len(SIGNAL_NAMES))
    post[DIM + len(FEATURE_NAMES)] = 20.0  # the answer's mean logprob, scaled to [-1, 0]
    path = tmp_path / "quality.json"
    points = (OperatingPoint(1.0, 0.5, 0.5, 0.0, 0.5),)
    QualityModel(DIM, Head(pre, 5.0), Head(post, 5.0), points, {}).save(path)
    return path


async def mesh_with(tmp_path: Path, small: ScriptedBackend) -> Mesh:
    router = RouterSettings(port=0, classifier="estimator", model_path=str(model_file(tmp_path)))
    return await start_mesh([small], [EchoBackend("large")], MemoryExactStore(), router=router, router_budget_s=1.0)


def ask(text: str) -> orchestrator_pb2.CompletionRequest:
    return orchestrator_pb2.CompletionRequest(
        tenant="acme", messages=[common_pb2.Message(role=common_pb2.ROLE_USER, content=text)]
    )


def orchestrator(mesh: Mesh) -> orchestrator_pb2_grpc.OrchestratorAsyncStub:
    return orchestrator_pb2_grpc.OrchestratorStub(mesh.channel("orchestrator"))  # type: ignore[return-value]


@pytest.mark.parametrize(("logprob", "escalated"), [(-0.05, False), (-3.0, True)])
async def test_assess_keeps_a_likely_answer_and_escalates_an_unlikely_one(
    tmp_path: Path, logprob: float, escalated: bool
) -> None:
    small = ScriptedBackend("small", "Paris.", (("Paris", logprob), (".", logprob)))
    mesh = await mesh_with(tmp_path, small)
    try:
        reply = await orchestrator(mesh).Complete(ask("What is the capital of France?"))
        assert reply.route.classifier == "estimator" and small.prompts  # the cheap tier answered first
        assert reply.route.escalated is escalated
        if escalated:
            assert reply.route.escalation_reason.startswith("estimator: escalate")
            assert reply.answer.startswith("echo:")  # the large tier's
        else:
            assert reply.answer == "Paris."
    finally:
        await mesh.stop()


async def test_router_assess_rpc_validates_its_input(tmp_path: Path) -> None:
    mesh = await mesh_with(tmp_path, ScriptedBackend("small", "x"))
    stub = router_pb2_grpc.RouterStub(mesh.channel("router"))
    messages = [common_pb2.Message(role=common_pb2.ROLE_USER, content="q")]
    try:
        ok = await stub.Assess(
            router_pb2.AssessRequest(
                tenant="acme",
                messages=messages,
                embedding=common_pb2.Embedding(values=[0.0] * DIM),
                answer=router_pb2.AnswerSignals(tokens=2, mean_logprob=-0.01, min_logprob=-0.02, chars=5),
            )
        )
        assert ok.keep and 0.0 < ok.p_cheap_good <= 1.0 and ok.threshold == 0.5
        for bad in (
            router_pb2.AssessRequest(tenant="acme", messages=messages, embedding=common_pb2.Embedding(values=[0.0])),
            router_pb2.AssessRequest(
                tenant="acme",
                messages=messages,
                embedding=common_pb2.Embedding(values=[0.0] * DIM),
                answer=router_pb2.AnswerSignals(mean_logprob=float("nan")),
            ),
            router_pb2.AssessRequest(
                tenant="acme",
                messages=messages,
                embedding=common_pb2.Embedding(values=[0.0] * DIM),
                answer=router_pb2.AnswerSignals(first_logprob=float("-inf")),
            ),
            router_pb2.AssessRequest(
                tenant="acme", messages=messages, embedding=common_pb2.Embedding(values=[float("inf")] * DIM)
            ),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.Assess(bad)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        await mesh.stop()
