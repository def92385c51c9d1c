"""Cache decisions: what to look up, what to store, and failing open when a tier is down."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from enum import Enum

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.cache.backends.base import ExactStore, SemanticEntry, SemanticIndex
from services.cache.domain import (
    CachedAnswer,
    Controls,
    Decision,
    HitKind,
    KeyMaterial,
    SemanticMatch,
    same_wording,
)
from services.cache.guard import mismatch
from services.cache.verifier import Verifier
from services.common.errors import InvalidInput
from services.common.telemetry import tenant_label
from services.common.validation import check_tenant

log = logging.getLogger(__name__)


class CacheMetrics:
    """The cache's metrics. Only ``tenants`` get a tenant label of their own; the rest share "other"."""

    def __init__(self, registry: CollectorRegistry, tenants: Collection[str] = ()) -> None:
        self._tenants = frozenset(tenants)
        self.lookups = Counter(
            "costmesh_cache_lookups",
            "Cache lookups by tier and result",
            ["tier", "tenant", "result"],
            registry=registry,
        )
        self.errors = Counter(
            "costmesh_cache_backend_errors",
            "Backend failures, each served as a miss",
            ["tier", "op"],
            registry=registry,
        )
        self.latency = Histogram(
            "costmesh_cache_lookup_seconds",
            "Lookup latency by tier",
            ["tier"],
            registry=registry,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25),
        )
        self.similarity = Histogram(
            "costmesh_cache_similarity",
            "Nearest neighbour cosine similarity",
            registry=registry,
            buckets=(0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.92, 0.94, 0.96, 0.98, 1.0),
        )
        self.stores = Counter("costmesh_cache_stores", "Entries stored by tier", ["tier"], registry=registry)
        self.guard_rejections = Counter(
            "costmesh_cache_guard_rejections",
            "Semantic neighbours the false-hit guard refused",
            ["tenant"],
            registry=registry,
        )
        self.verifier_rejections = Counter(
            "costmesh_cache_verifier_rejections",
            "Semantic candidates the verifier judged to need another answer",
            ["tenant"],
            registry=registry,
        )
        self.verify_latency = Histogram(
            "costmesh_cache_verify_seconds",
            "Verifier latency per lookup (all candidates in one batch)",
            registry=registry,
            buckets=(0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1),
        )
        self.entries = Gauge("costmesh_cache_entries", "Entries held, by tier", ["tier"], registry=registry)

    def tenant(self, tenant: str) -> str:
        return tenant_label(tenant, self._tenants)


class Tiers(Enum):
    BOTH = "both"
    EXACT = "exact"
    SEMANTIC = "semantic"


@dataclass(frozen=True)
class TenantPolicy:
    """Per-tenant overrides of the service defaults (None: the default applies)."""

    ttl_s: int | None = None
    similarity_threshold: float | None = None
    verifier_threshold: float | None = None


NEIGHBOURS = 3  # semantic candidates checked by the guard before giving up
# Of those the guard passes, how many the verifier reads: each costs ~5 ms (one pair, two threads, this
# machine), and a candidate further away is rarely right where a nearer one was not.
VERIFIED = 1


def cacheable_sampling(temperature: float, controls: Controls) -> str:
    """Empty when answers under this sampling may be cached, else the reason they may not."""
    if temperature > 0 and not controls.allow_sampled:
        return "sampled answer (temperature > 0) and allow_sampled is off"
    return ""


class CacheCore:
    def __init__(
        self,
        exact: ExactStore,
        semantic: SemanticIndex | None,
        metrics: CacheMetrics,
        default_ttl_s: int,
        default_threshold: float,
        clock: Callable[[], float] = time.time,
        tenants: Mapping[str, TenantPolicy] | None = None,
        max_entries_per_tenant: int = 0,
        verifier: Verifier | None = None,
        default_verifier_threshold: float = 0.93,
        verify_timeout_s: float = 0.5,
    ) -> None:
        self._exact = exact
        self._semantic = semantic
        self._metrics = metrics
        self._default_ttl_s = default_ttl_s
        self._default_threshold = default_threshold
        self._clock = clock
        self._tenants = tenants or {}
        self._max_entries = max_entries_per_tenant
        self._verifier = verifier
        self._default_verifier_threshold = default_verifier_threshold
        self._verify_timeout_s = verify_timeout_s
        self._verify_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="verifier")

    def _threshold(self, tenant: str, controls: Controls) -> float:
        return self._setting(tenant, controls.similarity_threshold, "similarity_threshold", self._default_threshold)

    def _verifier_threshold(self, tenant: str, controls: Controls) -> float:
        return self._setting(
            tenant, controls.verifier_threshold, "verifier_threshold", self._default_verifier_threshold
        )

    def _setting(self, tenant: str, requested: float | None, name: str, default: float) -> float:
        """The request's value, else the tenant's override, else the service default."""
        if requested is not None:
            return requested
        policy = self._tenants.get(tenant)
        value = getattr(policy, name) if policy is not None else None
        return default if value is None else float(value)

    def _ttl(self, tenant: str, controls: Controls) -> int:
        if controls.ttl_s:
            return controls.ttl_s
        policy = self._tenants.get(tenant)
        return policy.ttl_s if policy is not None and policy.ttl_s else self._default_ttl_s

    def _fresh(self, answer: CachedAnswer, controls: Controls) -> tuple[bool, int]:
        age = max(0, int(self._clock()) - answer.created_unix_s)
        return (controls.max_age_s <= 0 or age <= controls.max_age_s), age

    async def lookup(
        self,
        material: KeyMaterial,
        controls: Controls,
        temperature: float,
        embedding: list[float],
        tiers: Tiers = Tiers.BOTH,
    ) -> Decision:
        check_tenant(material.tenant)
        key = material.exact_key()
        if controls.no_cache:
            return Decision(HitKind.MISS, key, reason="no_cache requested", skipped=True)
        if reason := cacheable_sampling(temperature, controls):
            return Decision(HitKind.MISS, key, reason=reason, skipped=True)
        degraded = False
        if tiers is not Tiers.SEMANTIC:
            decision = await self._exact_lookup(material, key, controls)
            if decision.kind is HitKind.EXACT or tiers is Tiers.EXACT:
                return decision
            degraded = decision.degraded
        if self._semantic is None or not embedding:
            reason = "no embedding: semantic tier not consulted" if self._semantic else "semantic tier disabled"
            return Decision(HitKind.MISS, key, reason=reason, degraded=degraded)
        return await self._semantic_lookup(material, key, controls, embedding, degraded)

    async def _exact_lookup(self, material: KeyMaterial, key: str, controls: Controls) -> Decision:
        started = time.perf_counter()
        try:
            answer = await self._exact.get(material.tenant, key)
        except Exception as exc:
            log.warning("exact tier lookup failed, serving a miss: %s", exc)
            self._metrics.errors.labels("exact", "lookup").inc()
            return Decision(HitKind.MISS, key, reason="exact tier unavailable", degraded=True)
        finally:
            self._metrics.latency.labels("exact").observe(time.perf_counter() - started)
        if answer is not None:
            fresh, age = self._fresh(answer, controls)
            if fresh:
                self._metrics.lookups.labels("exact", self._metrics.tenant(material.tenant), "hit").inc()
                return Decision(HitKind.EXACT, key, similarity=1.0, age_s=age, answer=answer, entry_key=key)
        self._metrics.lookups.labels("exact", self._metrics.tenant(material.tenant), "miss").inc()
        return Decision(HitKind.MISS, key, reason="no exact match" if answer is None else "exact match too old")

    async def _semantic_lookup(
        self, material: KeyMaterial, key: str, controls: Controls, embedding: list[float], degraded: bool
    ) -> Decision:
        assert self._semantic is not None
        tenant = material.tenant
        threshold = self._threshold(tenant, controls)
        started = time.perf_counter()
        try:
            matches = await self._semantic.nearest(
                tenant, material.context_key(), embedding, NEIGHBOURS, int(self._clock())
            )
        except Exception as exc:
            log.warning("semantic tier lookup failed, serving a miss: %s", exc)
            self._metrics.errors.labels("semantic", "lookup").inc()
            return Decision(HitKind.MISS, key, reason="semantic tier unavailable", degraded=True)
        finally:
            self._metrics.latency.labels("semantic").observe(time.perf_counter() - started)
        if not matches:
            self._metrics.lookups.labels("semantic", self._metrics.tenant(tenant), "miss").inc()
            return Decision(HitKind.MISS, key, reason="no semantic neighbour", degraded=degraded)
        self._metrics.similarity.observe(matches[0].similarity)
        why = f"nearest similarity {matches[0].similarity:.3f} < threshold {threshold:.2f}"
        query = material.query()
        candidates: list[tuple[SemanticMatch, int]] = []
        for match in matches:
            if match.similarity < threshold or len(candidates) == VERIFIED:  # nearest first: the rest are not read
                break
            fresh, age = self._fresh(match.answer, controls)
            if not fresh:
                why = "nearest neighbour older than max_age_s"
            elif rejected := mismatch(query, match.query):
                self._metrics.guard_rejections.labels(self._metrics.tenant(tenant)).inc()
                why = f"false-hit guard: {rejected} (similarity {match.similarity:.3f})"
            else:
                candidates.append((match, age))
        decision = await self._verified(material, key, controls, candidates) if candidates else None
        if decision is not None and decision.kind is HitKind.SEMANTIC:
            self._metrics.lookups.labels("semantic", self._metrics.tenant(tenant), "hit").inc()
            return decision
        self._metrics.lookups.labels("semantic", self._metrics.tenant(tenant), "miss").inc()
        if decision is not None:  # every candidate refused by the verifier, or the verifier failed
            return replace(decision, degraded=decision.degraded or degraded)
        return Decision(HitKind.MISS, key, similarity=matches[0].similarity, reason=why, degraded=degraded)

    async def _verified(
        self, material: KeyMaterial, key: str, controls: Controls, candidates: list[tuple[SemanticMatch, int]]
    ) -> Decision:
        """The nearest candidate the verifier accepts as a hit, else a miss that says why."""
        query = material.query()
        best, age = candidates[0]
        # Rules only, or the same words bar case, punctuation and articles: nothing for a model to decide.
        if self._verifier is None or same_wording(best.query, query):
            return Decision(HitKind.SEMANTIC, key, best.similarity, age_s=age, answer=best.answer, entry_key=best.key)
        cut = self._verifier_threshold(material.tenant, controls)
        questions = [m.query for m, _ in candidates]
        started = time.perf_counter()
        try:
            # One verification at a time (each uses both cores); ONNX Runtime releases the GIL meanwhile.
            pending = asyncio.get_running_loop().run_in_executor(
                self._verify_pool, self._verifier.scores, query, questions
            )
            scores = [float(p) for p in await asyncio.wait_for(pending, self._verify_timeout_s)]
            if len(scores) != len(questions) or not all(0.0 <= p <= 1.0 for p in scores):
                raise ValueError(f"verifier returned {scores!r} for {len(questions)} candidates")
        except Exception as exc:
            log.warning("verifier failed, serving a miss: %r", exc)
            self._metrics.errors.labels("verifier", "lookup").inc()
            return Decision(HitKind.MISS, key, best.similarity, reason="verifier unavailable", degraded=True)
        finally:
            self._metrics.verify_latency.observe(time.perf_counter() - started)
        for (match, age), score in zip(candidates, scores, strict=True):
            if score >= cut:
                return Decision(
                    HitKind.SEMANTIC,
                    key,
                    match.similarity,
                    age_s=age,
                    answer=match.answer,
                    verifier_score=score,
                    entry_key=match.key,
                )
        self._metrics.verifier_rejections.labels(self._metrics.tenant(material.tenant)).inc()
        top = max(scores)
        reason = f"verifier: P(same answer) {top:.3f} < {cut:.2f} (similarity {best.similarity:.3f})"
        return Decision(HitKind.MISS, key, best.similarity, reason=reason, verifier_score=top)

    async def store(
        self,
        material: KeyMaterial,
        controls: Controls,
        temperature: float,
        embedding: list[float],
        answer: CachedAnswer,
    ) -> tuple[bool, str, str]:
        """Returns (stored, key, reason not stored)."""
        check_tenant(material.tenant)
        key = material.exact_key()
        if controls.no_store:
            return False, key, "no_store requested"
        if reason := cacheable_sampling(temperature, controls):
            return False, key, reason
        if not answer.answer.strip():
            return False, key, "empty answer"
        # An answer cut at the request's own max_tokens is what a repeat of that request gets (the limit is
        # in the key); one cut at a service or tier limit is incomplete.
        cut_by_request = answer.finish_reason == "length" and 0 < material.max_tokens() <= answer.completion_tokens
        if answer.finish_reason != "stop" and not cut_by_request:
            return False, key, f"answer not complete (finish_reason={answer.finish_reason!r})"
        if controls.ttl_s < 0:
            raise InvalidInput("ttl_s must be >= 0")
        ttl = self._ttl(material.tenant, controls)
        stored_any = False
        try:
            await self._exact.put(material.tenant, key, answer, ttl)
            self._metrics.stores.labels("exact").inc()
            stored_any = True
        except Exception as exc:
            log.warning("exact tier store failed: %s", exc)
            self._metrics.errors.labels("exact", "store").inc()
        if self._semantic is not None and embedding:
            try:
                entry = SemanticEntry(
                    key, material.context_key(), material.query(), embedding, answer, answer.created_unix_s + ttl
                )
                await self._semantic.add(material.tenant, entry)
                self._metrics.stores.labels("semantic").inc()
                stored_any = True
            except Exception as exc:
                log.warning("semantic tier store failed: %s", exc)
                self._metrics.errors.labels("semantic", "store").inc()
        return stored_any, key, "" if stored_any else "every cache tier failed"

    async def invalidate(self, tenant: str, key: str | None, older_than_s: int | None) -> int:
        check_tenant(tenant)
        if older_than_s is not None and older_than_s < 0:
            raise InvalidInput("older_than_s must be >= 0")
        cutoff = None if older_than_s is None else int(self._clock()) - older_than_s
        removed = await self._exact.invalidate(tenant, key, cutoff)
        if self._semantic is not None:
            removed += await self._semantic.invalidate(tenant, key, cutoff)
        return removed

    async def sweep(self) -> int:
        """Expires and evicts semantic entries (Redis expires its own); updates the entries gauges."""
        self._metrics.entries.labels("exact").set(await self._exact.count())
        if self._semantic is None:
            return 0
        removed, left = await self._semantic.sweep(int(self._clock()), self._max_entries)
        self._metrics.entries.labels("semantic").set(left)
        return removed

    async def exact_healthy(self) -> bool:
        return await self._exact.healthy()

    async def semantic_healthy(self) -> bool:
        return self._semantic is None or await self._semantic.healthy()

    async def close(self) -> None:
        self._verify_pool.shutdown(wait=False, cancel_futures=True)
        await self._exact.close()
        if self._semantic is not None:
            await self._semantic.close()
