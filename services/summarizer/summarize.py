"""Writes summaries with the cheap tier, through the Inference service."""

from __future__ import annotations

from costmesh.v1 import common_pb2, inference_pb2, inference_pb2_grpc
from services.common.errors import BackendUnavailable

INSTRUCTION = (
    "Summarize the conversation below in at most {words} words. Keep names, numbers, decisions, "
    "open questions and user preferences. Write plain prose, no preamble."
)


class InferenceSummarizer:
    def __init__(self, stub: inference_pb2_grpc.InferenceAsyncStub, tenant: str, timeout_s: float) -> None:
        self._stub = stub
        self._tenant = tenant
        self._timeout_s = timeout_s

    async def __call__(self, text: str, budget_tokens: int) -> str:
        request = inference_pb2.GenerateRequest(
            tenant=self._tenant,
            tier=common_pb2.TIER_SMALL,
            messages=[
                common_pb2.Message(
                    role=common_pb2.ROLE_SYSTEM, content=INSTRUCTION.format(words=budget_tokens * 3 // 4)
                ),
                common_pb2.Message(role=common_pb2.ROLE_USER, content=text),
            ],
            sampling=common_pb2.SamplingParams(temperature=0.0, max_tokens=budget_tokens),
        )
        response = await self._stub.Generate(request, timeout=self._timeout_s)
        if not response.text.strip():
            raise BackendUnavailable("the cheap tier returned an empty summary")
        return str(response.text)
