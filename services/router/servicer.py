"""Proto <-> domain adapter for the Router service."""

from __future__ import annotations

from typing import Any

import grpc

from costmesh.v1 import common_pb2, router_pb2, router_pb2_grpc
from services.common.contracts import TIERS_BY_NAME, role_pairs
from services.common.validation import check_tenant
from services.router.core import RouterCore


class RouterServicer(router_pb2_grpc.RouterServicer):
    def __init__(self, core: RouterCore) -> None:
        self._core = core

    async def Route(
        self, request: router_pb2.RouteRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> router_pb2.RouteResponse:
        check_tenant(request.tenant)
        route = self._core.route(
            role_pairs(request.messages),
            list(request.embedding.values),
            request.threshold if request.HasField("threshold") else None,
            request.tenant,
        )
        return router_pb2.RouteResponse(
            decision=common_pb2.RouteDecision(
                tier=TIERS_BY_NAME[route.tier],
                confidence=route.confidence,
                reason=route.reason,
                classifier=route.classifier,
            ),
            needs_multi_step=route.multi_step,
            features=route.features.as_dict(),
        )
