"""Warming every stage at start-up, so the first real request meets the budgets.

A cold first call pays for the channel's connection and the far side's lazy set-up: the first demo
request's Route missed its 15 ms budget and took the default route. Run as a health check, so SERVING
waits for it; a stage that is not up yet is tried again at the next health refresh. Failures are logged,
never raised: warming is an optimisation, not a dependency.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from costmesh.v1 import cache_pb2, common_pb2, compressor_pb2, router_pb2, summarizer_pb2
from services.common.embedding import Embedder
from services.orchestrator.stages import Stages

log = logging.getLogger(__name__)
WARM_UP_TENANT = "costmesh-warmup"  # reserved: no real tenant's cache entries or summaries are touched
WARM_UP_TIMEOUT_S = 5.0  # per call; a cold stage is slow, not this slow
_TEXT = "costmesh warm-up"


class WarmUp:
    def __init__(self, stages: Stages, embedder: Embedder | None) -> None:
        self._stages = stages
        self._embedder = embedder
        self._pending = {"embed", "router", "cache", "summarizer", "compressor"}
        if embedder is None:
            self._pending.discard("embed")

    @property
    def pending(self) -> frozenset[str]:
        return frozenset(self._pending)

    async def __call__(self) -> bool:
        """Warms what has not answered yet; always True (a health check that never holds SERVING back)."""
        if not self._pending:
            return True
        embedding = await self._embed()
        messages = [common_pb2.Message(role=common_pb2.ROLE_USER, content=_TEXT)]
        route = router_pb2.RouteRequest(tenant=WARM_UP_TENANT, messages=messages, embedding=embedding)
        lookup = cache_pb2.LookupRequest(
            key=cache_pb2.CacheKeyMaterial(tenant=WARM_UP_TENANT, messages=messages),
            tiers=cache_pb2.LOOKUP_TIERS_EXACT_ONLY,
        )
        prune = summarizer_pb2.PruneRequest(tenant=WARM_UP_TENANT, messages=messages)  # too short to summarize
        compress = compressor_pb2.CompressRequest(tenant=WARM_UP_TENANT, question=_TEXT)
        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "router": lambda: self._stages.route(route, WARM_UP_TIMEOUT_S),
            "cache": lambda: self._stages.lookup(lookup, WARM_UP_TIMEOUT_S),
            "summarizer": lambda: self._stages.prune(prune, WARM_UP_TIMEOUT_S),
            "compressor": lambda: self._stages.compress(compress, WARM_UP_TIMEOUT_S),
        }
        names = [name for name in calls if name in self._pending]
        results = await asyncio.gather(*(calls[name]() for name in names), return_exceptions=True)
        for name, result in zip(names, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("warm-up of %s failed (retried at the next health check): %s", name, result)
            else:
                self._pending.discard(name)
        if not self._pending:
            log.info("every stage warmed up")
        return True

    async def _embed(self) -> common_pb2.Embedding:
        if self._embedder is None:
            return common_pb2.Embedding()
        try:
            vector = await asyncio.to_thread(self._embedder.embed, [_TEXT])
        except Exception as exc:
            log.warning("warm-up of the embedder failed: %s", exc)
            return common_pb2.Embedding()
        self._pending.discard("embed")
        return common_pb2.Embedding(values=vector[0].tolist(), model=self._embedder.name)
