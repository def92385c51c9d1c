"""The stages before the model call: exact lookup -> embedding -> (semantic lookup || router) -> (summarizer ||
compressor). They end in a cache hit to serve, or in the routed request and the prompt to send.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass

from opentelemetry import trace

from costmesh.v1 import (
    cache_pb2,
    common_pb2,
    compressor_pb2,
    inference_pb2,
    orchestrator_pb2,
    router_pb2,
    summarizer_pb2,
)
from services.common.contracts import role_pairs
from services.common.embedding import Embedder, embedding_text
from services.common.requests import DEFAULT_MAX_PROMPT_TOKENS, validate
from services.common.telemetry import current_trace_id
from services.orchestrator.failopen import StageRunner, budget_span, is_timeout, left
from services.orchestrator.metrics import OrchestratorMetrics
from services.orchestrator.plan import QualityTarget
from services.orchestrator.prompt import assemble
from services.orchestrator.stages import Stages

log = logging.getLogger(__name__)
tracer = trace.get_tracer("costmesh.orchestrator")


@dataclass(frozen=True)
class Budgets:
    router_s: float = 0.015
    cache_lookup_s: float = 0.1
    cache_store_s: float = 0.25
    compressor_s: float = 2.0
    summarizer_s: float = 60.0
    assess_s: float = 0.015  # Assess is the router's post-call head: the router's budget by default
    max_prompt_tokens: int = DEFAULT_MAX_PROMPT_TOKENS  # a bigger prompt is refused before any stage runs


@dataclass
class Prepared:
    """A request after the cache, summarizer, compressor and router have had their say."""

    response: orchestrator_pb2.CompletionResponse
    key: cache_pb2.CacheKeyMaterial
    embedding: common_pb2.Embedding
    hit: cache_pb2.CachedAnswer | None = None
    route: router_pb2.RouteResponse | None = None  # None on a hit
    generate: inference_pb2.GenerateRequest | None = None  # None on a hit
    summary_cost_usd: float = 0.0  # what pruning's own model calls cost, charged to this request


class Preparer:
    def __init__(
        self,
        stages: Stages,
        runner: StageRunner,
        budgets: Budgets,
        default_tier: common_pb2.Tier.ValueType,
        metrics: OrchestratorMetrics,
        embedder: Embedder | None,
        quality: QualityTarget,
    ) -> None:
        self._stages = stages
        self._run = runner
        self._budgets = budgets
        self._default_tier = default_tier
        self._metrics = metrics
        self._embedder = embedder
        self._quality = quality

    async def prepare(self, request: orchestrator_pb2.CompletionRequest, deadline: float) -> Prepared:
        validate(request, self._budgets.max_prompt_tokens)
        response = orchestrator_pb2.CompletionResponse(
            request_id=request.request_id or uuid.uuid4().hex, trace_id=current_trace_id()
        )
        key = cache_pb2.CacheKeyMaterial(
            tenant=request.tenant,
            messages=request.messages,
            documents=request.documents,
            sampling=request.sampling,
            tier=request.tier,
            response_format=request.response_format,
        )
        # The exact tier needs no embedding and answers in about a millisecond: ask it first, so an
        # exact hit never pays for an embedding. (Embedding concurrently measured slower on 2 cores:
        # the embedding thread keeps running after a hit and competes for the CPU.)
        started = time.perf_counter()
        lookup = asyncio.create_task(self._exact(key, request, deadline))
        done, _ = await asyncio.wait({lookup}, timeout=max(0.0, min(self._budgets.cache_lookup_s, left(deadline))))
        if done:
            exact = self._exact_result(lookup, response, started, late=False)
            if exact is not None and exact.HasField("answer"):
                return self._exact_hit(Prepared(response, key, common_pb2.Embedding()), exact)
            return await self._after_exact(request, key, response, deadline, exact, reachable=exact is not None)
        return await self._late_exact(request, key, response, deadline, lookup, started)

    async def _late_exact(
        self,
        request: orchestrator_pb2.CompletionRequest,
        key: cache_pb2.CacheKeyMaterial,
        response: orchestrator_pb2.CompletionResponse,
        deadline: float,
        lookup: asyncio.Task[tuple[cache_pb2.LookupResponse | None, str]],
        started: float,
    ) -> Prepared:
        """The exact lookup missed its budget: the request proceeds (embedding, semantic lookup, routing,
        pruning) while the lookup is still awaited. A hit that comes back before the model call starts is
        served as an exact hit (its stage marked "late"); once the model call would start, it is moot."""
        rest = asyncio.create_task(self._after_exact(request, key, response, deadline, None, reachable=True))
        try:
            await asyncio.wait({lookup, rest}, return_when=asyncio.FIRST_COMPLETED)
            if not lookup.done():  # prepared first: the model call is next, the lookup is moot
                lookup.cancel()
                self._run.degraded(response, "cache_exact", started, "timeout")
                response.cache.degraded = True
                return rest.result()
            exact = self._exact_result(lookup, response, started, late=True)
            if exact is None:
                response.cache.degraded = True
            if exact is not None and exact.HasField("answer"):
                if rest.done() and rest.exception() is None and rest.result().hit is not None:
                    return rest.result()  # a semantic hit came first: also no model call
                rest.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await rest
                return self._exact_hit(Prepared(response, key, common_pb2.Embedding()), exact)
            return await rest
        finally:
            lookup.cancel()
            rest.cancel()

    async def _exact(
        self,
        key: cache_pb2.CacheKeyMaterial,
        request: orchestrator_pb2.CompletionRequest,
        deadline: float,
    ) -> tuple[cache_pb2.LookupResponse | None, str]:
        """The exact lookup and its outcome ("ok", "timeout", "error"), never raising: it may be awaited
        after its budget (the late-hit rule), so it gets the time the request has left."""
        lookup = cache_pb2.LookupRequest(key=key, control=request.cache, tiers=cache_pb2.LOOKUP_TIERS_EXACT_ONLY)
        # Its budget is cache_lookup_s; past it the request goes on without waiting (the late-hit rule).
        with budget_span("cache_exact", self._budgets.cache_lookup_s, deadline) as span:
            try:
                return await self._stages.lookup(lookup, max(0.001, left(deadline))), "ok"
            except Exception as exc:
                outcome = "timeout" if is_timeout(exc) else "error"
                span.set_attribute("costmesh.outcome", outcome)
                log.warning("stage cache_exact %s, degrading: %s", outcome, exc)
                return None, outcome

    def _exact_result(
        self,
        lookup: asyncio.Task[tuple[cache_pb2.LookupResponse | None, str]],
        response: orchestrator_pb2.CompletionResponse,
        started: float,
        late: bool,
    ) -> cache_pb2.LookupResponse | None:
        """The finished exact lookup, recorded; None when it failed (the request goes on without it)."""
        exact, outcome = lookup.result()
        if exact is None:
            self._run.degraded(response, "cache_exact", started, outcome)
        elif late:
            self._run.degraded(response, "cache_exact", started, "late")  # counted: it missed its budget
        else:
            self._run.record(response, "cache_exact", started, "ok")
        return exact

    def _exact_hit(self, prepared: Prepared, exact: cache_pb2.LookupResponse) -> Prepared:
        prepared.response.cache.CopyFrom(exact.decision)
        prepared.hit = exact.answer
        return self._serve_hit(prepared)

    async def _after_exact(
        self,
        request: orchestrator_pb2.CompletionRequest,
        key: cache_pb2.CacheKeyMaterial,
        response: orchestrator_pb2.CompletionResponse,
        deadline: float,
        exact: cache_pb2.LookupResponse | None,
        reachable: bool,
    ) -> Prepared:
        """Everything after an exact miss (or while a late exact lookup is still out)."""
        # Computed once, handed to the semantic tier, the router, Assess and the cache store.
        embedding = await self.embed(request, response)
        prepared = Prepared(response, key, embedding)
        # The router is cheap and independent of the cache: ask both at once.
        route_task = asyncio.create_task(self._route(request, embedding, deadline, response))
        try:
            return await self._after_embedding(request, prepared, deadline, exact, reachable, route_task)
        finally:
            route_task.cancel()  # a no-op once it answered; a hit does not wait for it

    async def _after_embedding(
        self,
        request: orchestrator_pb2.CompletionRequest,
        prepared: Prepared,
        deadline: float,
        exact: cache_pb2.LookupResponse | None,
        reachable: bool,
        route_task: asyncio.Task[router_pb2.RouteResponse],
    ) -> Prepared:
        response, embedding, key = prepared.response, prepared.embedding, prepared.key
        semantic = exact
        if reachable and embedding.values and not request.cache.no_cache:
            semantic = await self._lookup(
                key, request, embedding, cache_pb2.LOOKUP_TIERS_SEMANTIC_ONLY, deadline, response
            )
        if semantic is None and reachable:  # the exact lookup is late and the semantic tier not asked
            response.cache.CopyFrom(
                common_pb2.CacheDecision(kind=common_pb2.CACHE_HIT_KIND_MISS, reason="exact tier late")
            )
        elif semantic is None:
            response.cache.CopyFrom(
                common_pb2.CacheDecision(kind=common_pb2.CACHE_HIT_KIND_MISS, degraded=True, reason="cache unavailable")
            )
        else:
            response.cache.CopyFrom(semantic.decision)
            # A failed exact tier stays visible even when the semantic tier answered.
            response.cache.degraded |= exact is not None and exact.decision.degraded
            if semantic.HasField("answer"):
                prepared.hit = semantic.answer
                return self._serve_hit(prepared)

        (pruned, prepared.summary_cost_usd), compressed = await asyncio.gather(
            self._prune(request, deadline, response), self._compress(request, deadline, response)
        )
        prepared.route = await route_task
        route = prepared.route.decision
        self._metrics.routes.labels(tier=common_pb2.Tier.Name(route.tier)).inc()
        response.route.CopyFrom(route)
        removed = {
            "pruning": response.pruning.tokens_before - response.pruning.tokens_after,
            "compression": response.compression.tokens_before - response.compression.tokens_after,
        }
        prepared.generate = inference_pb2.GenerateRequest(
            tenant=request.tenant,
            request_id=response.request_id,
            tier=route.tier,  # the plan may change it
            messages=assemble(pruned, compressed),
            sampling=request.sampling,
            removed_tokens={name: n for name, n in removed.items() if n > 0},
            lane=request.lane,
        )
        return prepared

    async def _lookup(
        self,
        key: cache_pb2.CacheKeyMaterial,
        request: orchestrator_pb2.CompletionRequest,
        embedding: common_pb2.Embedding,
        tiers: cache_pb2.LookupTiers.ValueType,
        deadline: float,
        response: orchestrator_pb2.CompletionResponse,
    ) -> cache_pb2.LookupResponse | None:
        stage = "cache_exact" if tiers == cache_pb2.LOOKUP_TIERS_EXACT_ONLY else "cache_semantic"
        lookup = cache_pb2.LookupRequest(key=key, control=request.cache, embedding=embedding, tiers=tiers)
        return await self._run.optional(
            stage, lambda t: self._stages.lookup(lookup, t), self._budgets.cache_lookup_s, deadline, response
        )

    def _serve_hit(self, prepared: Prepared) -> Prepared:
        hit, response = prepared.hit, prepared.response
        assert hit is not None  # only called on a hit
        response.answer = hit.answer
        response.model = hit.model
        response.finish_reason = hit.finish_reason
        response.route.CopyFrom(
            common_pb2.RouteDecision(
                tier=hit.tier, confidence=1.0, classifier="cache", reason="answered from the cache; no model call"
            )
        )
        kind = common_pb2.CacheHitKind.Name(response.cache.kind).removeprefix("CACHE_HIT_KIND_").lower()
        # Nothing is billed; the whole baseline is what the hit avoided.
        response.cost.CopyFrom(
            common_pb2.CostReport(
                cost_usd=0.0,
                baseline_cost_usd=hit.baseline_cost_usd,
                savings_usd=hit.baseline_cost_usd,
                price_model="cache",
                savings_by_intervention={f"cache_{kind}": hit.baseline_cost_usd},
            )
        )
        tier = common_pb2.Tier.Name(hit.tier)
        self._metrics.requests.labels(tier=tier, cache=kind).inc()
        self._metrics.count_savings(tier, response.cost)
        return prepared

    async def embed(
        self, request: orchestrator_pb2.CompletionRequest, response: orchestrator_pb2.CompletionResponse
    ) -> common_pb2.Embedding:
        """The request's embedding; empty when off, failed, or read by nobody. The semantic lookup, the
        semantic store and the router's quality estimator read it, so it is skipped only when the cache is
        bypassed both ways and the request sets its own tier."""
        embedder = self._embedder
        control = request.cache
        if embedder is None or (control.no_cache and control.no_store and request.tier != common_pb2.TIER_UNSPECIFIED):
            return common_pb2.Embedding()
        started = time.perf_counter()
        text = embedding_text(role_pairs(request.messages))
        with tracer.start_as_current_span("stage.embed"):
            try:
                # ONNX Runtime releases the GIL: other requests proceed while this one embeds.
                vector = await asyncio.to_thread(embedder.embed, [text])
            except Exception as exc:
                log.warning("embedding failed, semantic cache skipped: %s", exc)
                self._run.degraded(response, "embed", started, "error")
                return common_pb2.Embedding()
        self._run.record(response, "embed", started, "ok")
        return common_pb2.Embedding(values=vector[0].tolist(), model=embedder.name)

    async def _route(
        self,
        request: orchestrator_pb2.CompletionRequest,
        embedding: common_pb2.Embedding,
        deadline: float,
        response: orchestrator_pb2.CompletionResponse,
    ) -> router_pb2.RouteResponse:
        if request.tier != common_pb2.TIER_UNSPECIFIED:
            return router_pb2.RouteResponse(
                decision=common_pb2.RouteDecision(
                    tier=request.tier, confidence=1.0, classifier="request", reason="tier set by the request"
                )
            )
        route = router_pb2.RouteRequest(
            tenant=request.tenant,
            messages=request.messages,
            embedding=embedding,
            max_quality_loss_pts=self._quality.for_tenant(request.tenant),
            task=request.task,
        )
        routed = await self._run.optional(
            "router", lambda t: self._stages.route(route, t), self._budgets.router_s, deadline, response
        )
        if routed is not None:
            return routed
        self._metrics.router_fallbacks.inc()
        return router_pb2.RouteResponse(
            decision=common_pb2.RouteDecision(
                tier=self._default_tier,
                classifier="default",
                fell_back=True,
                reason=f"router missed its {self._budgets.router_s * 1000:.0f} ms budget or failed; default route",
            )
        )

    async def _prune(
        self,
        request: orchestrator_pb2.CompletionRequest,
        deadline: float,
        response: orchestrator_pb2.CompletionResponse,
    ) -> tuple[list[common_pb2.Message], float]:
        """The history to send, and what the summaries written for it cost."""
        prune = summarizer_pb2.PruneRequest(
            tenant=request.tenant,
            conversation_id=request.conversation_id,
            messages=request.messages,
            lane=request.lane,  # batch items' summaries go on the batch lane, at batch prices
        )
        pruned = await self._run.optional(
            "summarizer", lambda t: self._stages.prune(prune, t), self._budgets.summarizer_s, deadline, response
        )
        if pruned is None:
            response.pruning.CopyFrom(common_pb2.PruningReport(degraded=True))
            return list(request.messages), 0.0
        response.pruning.CopyFrom(pruned.report)
        return list(pruned.messages), pruned.cost.cost_usd

    async def _compress(
        self,
        request: orchestrator_pb2.CompletionRequest,
        deadline: float,
        response: orchestrator_pb2.CompletionResponse,
    ) -> list[common_pb2.Document]:
        if not request.documents:
            return []
        compress = compressor_pb2.CompressRequest(
            tenant=request.tenant, documents=request.documents, question=request.messages[-1].content
        )
        compressed = await self._run.optional(
            "compressor", lambda t: self._stages.compress(compress, t), self._budgets.compressor_s, deadline, response
        )
        if compressed is None:
            response.compression.CopyFrom(common_pb2.CompressionReport(degraded=True))
            return list(request.documents)
        response.compression.CopyFrom(compressed.report)
        return list(compressed.documents)
