"""The request pipeline: cache -> (summarizer || compressor) -> router -> inference [-> escalation] -> cache.

Independent stages run concurrently: the router is asked while the cache is consulted, and pruning
runs beside compression. Optional stages fail open (counted, marked degraded in the response); only
the model call can fail a request. No grpc here: stages are reached through the Stages Protocol.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

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
from services.common.errors import BudgetExceeded
from services.common.telemetry import current_trace_id
from services.orchestrator.escalation import EscalationPolicy, judge
from services.orchestrator.metrics import OrchestratorMetrics
from services.orchestrator.prompt import assemble
from services.orchestrator.stages import Generator, Stages
from services.orchestrator.validation import validate

log = logging.getLogger(__name__)
T = TypeVar("T")
tracer = trace.get_tracer("costmesh.orchestrator")
REPLAY_CHUNK_WORDS = 4  # a cached answer is replayed on CompleteStream a few words per chunk


@dataclass(frozen=True)
class Budgets:
    router_s: float = 0.015
    cache_lookup_s: float = 0.1
    cache_store_s: float = 0.25
    compressor_s: float = 2.0
    summarizer_s: float = 60.0


@dataclass
class Prepared:
    """A request after the cache, summarizer, compressor and router have had their say."""

    response: orchestrator_pb2.CompletionResponse
    key: cache_pb2.CacheKeyMaterial
    embedding: common_pb2.Embedding
    hit: cache_pb2.CachedAnswer | None = None
    generate: inference_pb2.GenerateRequest | None = None
    multi_step: bool = False  # the router's signal: the task needs multi-step reasoning


class Pipeline:
    def __init__(
        self,
        stages: Stages,
        generator: Generator,
        budgets: Budgets,
        default_tier: common_pb2.Tier.ValueType,
        metrics: OrchestratorMetrics,
        embedder: Embedder | None = None,
        escalation: EscalationPolicy | None = None,
    ) -> None:
        self._stages = stages
        self._generator = generator
        self._budgets = budgets
        self._default_tier = default_tier
        self._metrics = metrics
        self._embedder = embedder
        self._escalation = escalation  # None: the cheap tier's answers are never second-guessed

    # ---- public entry points -------------------------------------------------------------------------

    async def complete(
        self, request: orchestrator_pb2.CompletionRequest, timeout_s: float
    ) -> orchestrator_pb2.CompletionResponse:
        deadline = time.monotonic() + timeout_s
        prepared = await self._prepare(request, deadline)
        if prepared.generate is None:
            return prepared.response
        result = await self._generate(request, prepared, deadline)
        return await self._finish(request, prepared, result, deadline)

    async def stream(
        self, request: orchestrator_pb2.CompletionRequest, timeout_s: float
    ) -> AsyncIterator[orchestrator_pb2.CompletionChunk]:
        deadline = time.monotonic() + timeout_s
        prepared = await self._prepare(request, deadline)
        if prepared.generate is None:  # cache hit: replay it as a stream
            for chunk in _replay(prepared.response):
                yield chunk
            return
        if self._may_escalate(prepared):
            # The cheap answer must be judged before anyone sees it: generate, judge, then replay.
            result = await self._generate(request, prepared, deadline)
            for chunk in _replay(await self._finish(request, prepared, result, deadline)):
                yield chunk
            return
        started = time.perf_counter()
        final: inference_pb2.GenerateResponse | None = None
        with tracer.start_as_current_span("stage.inference"):
            async for item in self._generator.generate_stream(prepared.generate, _left(deadline)):
                if isinstance(item, str):
                    yield orchestrator_pb2.CompletionChunk(delta=item)
                else:
                    final = item
        self._record(prepared.response, "inference", started, "ok")
        if final is None:
            raise BudgetExceeded("the model stream ended without a final response")
        yield orchestrator_pb2.CompletionChunk(final=await self._finish(request, prepared, final, deadline))

    # ---- stages --------------------------------------------------------------------------------------

    async def _prepare(self, request: orchestrator_pb2.CompletionRequest, deadline: float) -> Prepared:
        validate(request)
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
        exact = await self._lookup(
            key, request, common_pb2.Embedding(), cache_pb2.LOOKUP_TIERS_EXACT_ONLY, deadline, response
        )
        if exact is not None and exact.HasField("answer"):
            response.cache.CopyFrom(exact.decision)
            return self._serve_hit(Prepared(response, key, common_pb2.Embedding(), hit=exact.answer))
        # Computed once, handed to the semantic tier, the router and the cache store.
        embedding = await self._embed(request, response)
        prepared = Prepared(response, key, embedding)

        # The router is cheap and independent of the cache: ask both at once.
        route_task = asyncio.create_task(self._route(request, embedding, deadline, response))
        semantic = exact
        if exact is not None and embedding.values:
            semantic = await self._lookup(
                key, request, embedding, cache_pb2.LOOKUP_TIERS_SEMANTIC_ONLY, deadline, response
            )
        if semantic is None:
            response.cache.CopyFrom(
                common_pb2.CacheDecision(kind=common_pb2.CACHE_HIT_KIND_MISS, degraded=True, reason="cache unavailable")
            )
        else:
            response.cache.CopyFrom(semantic.decision)
            # A failed exact tier stays visible even when the semantic tier answered.
            response.cache.degraded |= exact is not None and exact.decision.degraded
            if semantic.HasField("answer"):
                route_task.cancel()
                prepared.hit = semantic.answer
                return self._serve_hit(prepared)

        pruned, compressed = await asyncio.gather(
            self._prune(request, deadline, response), self._compress(request, deadline, response)
        )
        routed = await route_task
        route, prepared.multi_step = routed.decision, routed.needs_multi_step
        self._metrics.routes.labels(tier=common_pb2.Tier.Name(route.tier)).inc()
        messages = assemble(pruned, compressed)
        removed = {
            "pruning": response.pruning.tokens_before - response.pruning.tokens_after,
            "compression": response.compression.tokens_before - response.compression.tokens_after,
        }
        response.route.CopyFrom(route)
        prepared.generate = inference_pb2.GenerateRequest(
            tenant=request.tenant,
            request_id=response.request_id,
            tier=route.tier,
            messages=messages,
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
        return await self._timed_optional(
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

    async def _embed(
        self, request: orchestrator_pb2.CompletionRequest, response: orchestrator_pb2.CompletionResponse
    ) -> common_pb2.Embedding:
        """The request's embedding; empty (no semantic lookup) when off, skipped or failed."""
        embedder = self._embedder
        if embedder is None or request.cache.no_cache:
            return common_pb2.Embedding()
        started = time.perf_counter()
        text = embedding_text(role_pairs(request.messages))
        with tracer.start_as_current_span("stage.embed"):
            try:
                # ONNX Runtime releases the GIL: other requests proceed while this one embeds.
                vector = await asyncio.to_thread(embedder.embed, [text])
            except Exception as exc:
                log.warning("embedding failed, semantic cache skipped: %s", exc)
                self._metrics.degraded.labels(stage="embed", outcome="error").inc()
                self._record(response, "embed", started, "error")
                return common_pb2.Embedding()
        self._record(response, "embed", started, "ok")
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
        routed = await self._timed_optional(
            "router",
            lambda t: self._stages.route(
                router_pb2.RouteRequest(tenant=request.tenant, messages=request.messages, embedding=embedding), t
            ),
            self._budgets.router_s,
            deadline,
            response,
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
    ) -> list[common_pb2.Message]:
        pruned = await self._timed_optional(
            "summarizer",
            lambda t: self._stages.prune(
                summarizer_pb2.PruneRequest(
                    tenant=request.tenant, conversation_id=request.conversation_id, messages=request.messages
                ),
                t,
            ),
            self._budgets.summarizer_s,
            deadline,
            response,
        )
        if pruned is None:
            response.pruning.CopyFrom(common_pb2.PruningReport(degraded=True))
            return list(request.messages)
        response.pruning.CopyFrom(pruned.report)
        return list(pruned.messages)

    async def _compress(
        self,
        request: orchestrator_pb2.CompletionRequest,
        deadline: float,
        response: orchestrator_pb2.CompletionResponse,
    ) -> list[common_pb2.Document]:
        if not request.documents:
            return []
        compressed = await self._timed_optional(
            "compressor",
            lambda t: self._stages.compress(
                compressor_pb2.CompressRequest(
                    tenant=request.tenant, documents=request.documents, question=request.messages[-1].content
                ),
                t,
            ),
            self._budgets.compressor_s,
            deadline,
            response,
        )
        if compressed is None:
            response.compression.CopyFrom(common_pb2.CompressionReport(degraded=True))
            return list(request.documents)
        response.compression.CopyFrom(compressed.report)
        return list(compressed.documents)

    def _may_escalate(self, prepared: Prepared) -> bool:
        """Only the router's cheap-tier choices are second-guessed, never a tier the request set."""
        generate = prepared.generate
        return (
            self._escalation is not None
            and generate is not None
            and generate.tier == common_pb2.TIER_SMALL
            and prepared.response.route.classifier != "request"
        )

    async def _generate(
        self, request: orchestrator_pb2.CompletionRequest, prepared: Prepared, deadline: float
    ) -> inference_pb2.GenerateResponse:
        """The model call, with the cascade: cheap tier first, the large tier once if the answer fails."""
        generate, response = prepared.generate, prepared.response
        assert generate is not None  # a cache miss
        if self._may_escalate(prepared) and prepared.multi_step:
            self._escalated(response, "multi_step", "the router saw a multi-step task: the cheap tier was skipped")
            generate.tier = common_pb2.TIER_LARGE  # from here on nothing is left to escalate
        if not self._may_escalate(prepared):
            return await self._timed_required(
                "inference", lambda t: self._generator.generate(generate, t), deadline, response
            )
        cheap_request = inference_pb2.GenerateRequest()
        cheap_request.CopyFrom(generate)
        cheap_request.sampling.logprobs = True  # the confidence check needs them
        cheap = await self._timed_required(
            "inference", lambda t: self._generator.generate(cheap_request, t), deadline, response
        )
        assert self._escalation is not None  # checked by _may_escalate
        logprobs = [lp.logprob for lp in cheap.logprobs]
        reason, detail = judge(cheap.text, cheap.finish_reason, logprobs, request.response_format, self._escalation)
        if not reason:
            if not request.sampling.logprobs:
                del cheap.logprobs[:]
            return cheap
        self._escalated(response, reason, detail)
        generate.tier = common_pb2.TIER_LARGE
        large = await self._timed_required(
            "escalation", lambda t: self._generator.generate(generate, t), deadline, response
        )
        # The rejected cheap call was paid for too: it is the escalation's (negative) saving.
        large.cost.cost_usd += cheap.cost.cost_usd
        large.cost.savings_usd = large.cost.baseline_cost_usd - large.cost.cost_usd
        large.cost.savings_by_intervention["escalation"] = -cheap.cost.cost_usd
        return large

    def _escalated(self, response: orchestrator_pb2.CompletionResponse, reason: str, detail: str) -> None:
        response.route.tier = common_pb2.TIER_LARGE
        response.route.escalated = True
        response.route.escalation_reason = f"{reason}: {detail}"
        self._metrics.escalations.labels(reason=reason).inc()

    async def _finish(
        self,
        request: orchestrator_pb2.CompletionRequest,
        prepared: Prepared,
        result: inference_pb2.GenerateResponse,
        deadline: float,
    ) -> orchestrator_pb2.CompletionResponse:
        response = prepared.response
        response.answer = result.text
        response.model = result.model
        response.finish_reason = result.finish_reason
        response.usage.CopyFrom(result.usage)
        response.cost.CopyFrom(result.cost)
        tier_name = common_pb2.Tier.Name(response.route.tier)
        self._metrics.requests.labels(tier=tier_name, cache="miss").inc()
        self._metrics.count_savings(tier_name, result.cost)
        answer = cache_pb2.CachedAnswer(
            answer=result.text,
            model=result.model,
            tier=response.route.tier,
            finish_reason=result.finish_reason,
            usage=result.usage,
            cost_usd=result.cost.cost_usd,
            baseline_cost_usd=result.cost.baseline_cost_usd,
        )
        await self._timed_optional(
            "cache_store",
            lambda t: self._stages.store(
                cache_pb2.StoreRequest(
                    key=prepared.key, control=request.cache, answer=answer, embedding=prepared.embedding
                ),
                t,
            ),
            self._budgets.cache_store_s,
            deadline,
            response,
        )
        return response

    # ---- timing and failure policy -------------------------------------------------------------------

    async def _timed_optional(
        self,
        stage: str,
        call: Callable[[float], Awaitable[T]],
        budget_s: float,
        deadline: float,
        response: orchestrator_pb2.CompletionResponse,
    ) -> T | None:
        """Runs an optional stage within min(budget, time left); on any failure returns None (fail open)."""
        started = time.perf_counter()
        timeout = min(budget_s, _left(deadline))
        with tracer.start_as_current_span(f"stage.{stage}") as span:
            try:
                if timeout <= 0:
                    raise TimeoutError
                async with asyncio.timeout(timeout):
                    result = await call(timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                outcome = "timeout" if _is_timeout(exc) else "error"
                span.set_attribute("costmesh.outcome", outcome)
                log.warning("stage %s %s, degrading: %s", stage, outcome, exc)
                self._metrics.degraded.labels(stage=stage, outcome=outcome).inc()
                self._record(response, stage, started, outcome)
                return None
        self._record(response, stage, started, "ok")
        return result

    async def _timed_required(
        self,
        stage: str,
        call: Callable[[float], Awaitable[T]],
        deadline: float,
        response: orchestrator_pb2.CompletionResponse,
    ) -> T:
        started = time.perf_counter()
        timeout = _left(deadline)
        if timeout <= 0:
            raise BudgetExceeded(f"no time left for {stage}")
        with tracer.start_as_current_span(f"stage.{stage}"):
            result = await call(timeout)
        self._record(response, stage, started, "ok")
        return result

    def _record(self, response: orchestrator_pb2.CompletionResponse, stage: str, started: float, outcome: str) -> None:
        seconds = time.perf_counter() - started
        response.stages.append(common_pb2.StageTiming(stage=stage, duration_ms=seconds * 1000, outcome=outcome))
        self._metrics.stage_latency.labels(stage=stage).observe(seconds)


def _replay(response: orchestrator_pb2.CompletionResponse) -> Iterator[orchestrator_pb2.CompletionChunk]:
    """A finished answer as a stream: a few words per chunk, then the full response."""
    words = response.answer.split(" ")
    for i in range(0, len(words), REPLAY_CHUNK_WORDS):
        piece = " ".join(words[i : i + REPLAY_CHUNK_WORDS])
        yield orchestrator_pb2.CompletionChunk(delta=piece if i == 0 else " " + piece)
    yield orchestrator_pb2.CompletionChunk(final=response)


def _left(deadline: float) -> float:
    return deadline - time.monotonic()


def _is_timeout(exc: BaseException) -> bool:
    if isinstance(exc, TimeoutError):
        return True
    code = getattr(exc, "code", None)
    return callable(code) and getattr(code(), "name", "") == "DEADLINE_EXCEEDED"
