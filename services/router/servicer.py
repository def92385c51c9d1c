"""Proto <-> domain adapter for the Router service."""

from __future__ import annotations

import math
from typing import Any

import grpc

from costmesh.v1 import common_pb2, router_pb2, router_pb2_grpc
from services.common.contracts import TIERS_BY_NAME, role_pairs
from services.common.errors import InvalidInput
from services.common.signals import Signals
from services.common.validation import check_tenant
from services.router.core import RouterCore
from services.router.tasks import TaskRouting


def _target(request: router_pb2.RouteRequest | router_pb2.AssessRequest) -> float | None:
    return request.max_quality_loss_pts if request.HasField("max_quality_loss_pts") else None


class RouterServicer(router_pb2_grpc.RouterServicer):
    def __init__(self, core: RouterCore, tasks: TaskRouting | None = None) -> None:
        self._core = core
        self._tasks = tasks

    async def Route(
        self, request: router_pb2.RouteRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> router_pb2.RouteResponse:
        check_tenant(request.tenant)
        route = self._core.route(
            role_pairs(request.messages),
            list(request.embedding.values),
            request.threshold if request.HasField("threshold") else None,
            request.tenant,
            _target(request),
        )
        task = self._tasks.match(request.task, list(request.embedding.values)) if self._tasks else None
        return router_pb2.RouteResponse(
            task=task,
            decision=common_pb2.RouteDecision(
                tier=TIERS_BY_NAME[route.tier],
                confidence=route.confidence,
                reason=route.reason,
                classifier=route.classifier,
            ),
            needs_multi_step=route.multi_step,
            features=route.features.as_dict(),
            p_cheap_good=route.p_cheap_good,
            assess_after=route.assess_after,
        )

    async def Assess(
        self, request: router_pb2.AssessRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> router_pb2.AssessResponse:
        check_tenant(request.tenant)
        signals = Signals.from_proto(request.answer)
        floats = (signals.mean_logprob, signals.min_logprob, signals.first_logprob, signals.mean_margin)
        if not all(map(math.isfinite, (*floats, signals.mean_entropy))) or signals.tokens < 0 or signals.chars < 0:
            raise InvalidInput("answer signals must be finite, and counts >= 0")
        verdict = self._core.assess(
            role_pairs(request.messages), list(request.embedding.values), signals, _target(request)
        )
        return router_pb2.AssessResponse(
            keep=verdict.keep, p_cheap_good=verdict.p_cheap_good, threshold=verdict.threshold, reason=verdict.reason
        )
