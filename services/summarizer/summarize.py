"""Writes summaries with the cheap tier, through the Inference service."""

from __future__ import annotations

from costmesh.v1 import common_pb2, inference_pb2, inference_pb2_grpc
from services.common.errors import BackendUnavailable

INSTRUCTION = (
    "Summarize the conversation below in at most {words} words. Keep names, numbers, decisions, "
    "open questions and user preferences. Write plain prose, no preamble."
)


class InferenceSummarizer:
    """One per Prune request: it adds up what its calls cost, so the orchestrator can charge the request."""

    def __init__(
        self,
        stub: inference_pb2_grpc.InferenceAsyncStub,
        tenant: str,
        timeout_s: float,
        lane: common_pb2.Lane.ValueType = common_pb2.LANE_UNSPECIFIED,
    ) -> None:
        self._stub = stub
        self._tenant = tenant
        self._timeout_s = timeout_s
        self._lane = lane  # a batch item's summary is batch work: batch quota, batch prices
        self.cost = common_pb2.CostReport()  # cost_usd and price_model only: summaries have no baseline
        self.usage = common_pb2.TokenUsage()

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
            lane=self._lane,
        )
        response = await self._stub.Generate(request, timeout=self._timeout_s)
        self.cost.cost_usd += response.cost.cost_usd  # paid for even when the summary is unusable
        self.cost.price_model = response.cost.price_model
        self.usage.prompt_tokens += response.usage.prompt_tokens
        self.usage.completion_tokens += response.usage.completion_tokens
        self.usage.cached_prompt_tokens += response.usage.cached_prompt_tokens
        if not response.text.strip():
            raise BackendUnavailable("the cheap tier returned an empty summary")
        return str(response.text)
