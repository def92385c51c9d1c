"""Proto <-> domain adapter for the Summarizer service."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import grpc

from costmesh.v1 import common_pb2, inference_pb2_grpc, summarizer_pb2, summarizer_pb2_grpc
from services.common.contracts import role_pairs, to_messages
from services.common.deadlines import remaining_s
from services.common.errors import InvalidInput
from services.common.validation import check_enum, check_tenant
from services.summarizer.backends.base import SummaryStore
from services.summarizer.core import PruneLimits, prune
from services.summarizer.summarize import InferenceSummarizer


class SummarizerServicer(summarizer_pb2_grpc.SummarizerServicer):
    def __init__(
        self,
        inference: inference_pb2_grpc.InferenceAsyncStub,
        defaults: PruneLimits,
        timeout_s: float,
        store: SummaryStore | None = None,
    ) -> None:
        self._inference = inference
        self._defaults = defaults
        self._timeout_s = timeout_s
        self._store = store

    async def Prune(
        self, request: summarizer_pb2.PruneRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> summarizer_pb2.PruneResponse:
        check_tenant(request.tenant)
        check_enum(request.lane, common_pb2.Lane.DESCRIPTOR, "lane")
        if request.max_tokens < 0 or request.keep_last < 0:
            raise InvalidInput("max_tokens and keep_last must be >= 0 (0: the service default)")
        limits = replace(
            self._defaults,
            max_tokens=request.max_tokens or self._defaults.max_tokens,
            keep_last=request.keep_last or self._defaults.keep_last,
        )
        summarize = InferenceSummarizer(
            self._inference, request.tenant, remaining_s(context, self._timeout_s), request.lane
        )
        scope = json.dumps([request.tenant, request.conversation_id])  # summaries never cross tenants
        result = await prune(role_pairs(request.messages), limits, summarize, self._store, scope)
        return summarizer_pb2.PruneResponse(
            messages=to_messages(result.messages),
            report=common_pb2.PruningReport(
                applied=result.applied,
                tokens_before=result.tokens_before,
                tokens_after=result.tokens_after,
                messages_summarized=result.messages_summarized,
                summary_source=result.summary_source,
            ),
            cost=summarize.cost,
            usage=summarize.usage,
        )
