"""`costmesh bench cache`: how fast the cache decides, and (`--pairs FILE`) how often it is wrong.

Latency, on the running stack's Redis and Weaviate (`costmesh up --only redis weaviate`), through the
cache core as the service runs it (rule guard and verifier from the service settings): exact lookups,
and semantic lookups with their embedding and verification, at 10k and 100k entries in the tenant.
The entries are real questions (banking77 and CLINC150 training sets) and the lookups their test sets,
so most lookups find candidates above the threshold and the verifier runs, as in production.

`--pairs FILE`: labelled pairs through the running cache service (bench/cache_pairs.py); the numbers
users choose a threshold by, and that `costmesh cache calibrate` optimises.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry

from bench import cache_pairs
from bench.output import emit
from bench.stats import summarize_ms
from launcher.settings import StackSettings
from services.cache.backends.base import SemanticEntry
from services.cache.backends.redis_store import RedisExactStore
from services.cache.backends.weaviate_index import WeaviateSemanticIndex
from services.cache.core import CacheCore, CacheMetrics
from services.cache.domain import CachedAnswer, Controls, HitKind, KeyMaterial
from services.cache.settings import CacheSettings
from services.cache.verifier import Verifier, load_verifier
from services.common.embedding import OnnxMiniLM, load_minilm
from services.orchestrator.settings import OrchestratorSettings
from workloads import datasets
from workloads import pairs as pair_file


class TimedVerifier:
    """The service's verifier, timing each call (one per lookup that reaches it)."""

    def __init__(self, inner: Verifier) -> None:
        self._inner = inner
        self.name = inner.name
        self.seconds: list[float] = []

    def scores(self, query: str, candidates: Sequence[str]) -> list[float]:
        started = time.perf_counter()
        try:
            return self._inner.scores(query, candidates)
        finally:
            self.seconds.append(time.perf_counter() - started)


def _texts(size: int) -> list[str]:
    """`size` real questions; past the ~25k distinct ones the pool repeats (same vectors, other keys)."""
    pool = list(dict.fromkeys([t for t, _ in datasets.clinc150("train")] + [t for t, _ in datasets.banking77("train")]))
    order = np.random.default_rng(2).permutation(len(pool))
    return [pool[order[i % len(pool)]] for i in range(size)]


async def _fill(
    index: WeaviateSemanticIndex, store: RedisExactStore, embedder: OnnxMiniLM, tenant: str, texts: list[str]
) -> None:
    now = int(time.time())
    answer = CachedAnswer("a", "m", "small", "stop", 1, 1, 0.0, 0.0, now)
    for start in range(0, len(texts), 500):
        chunk = texts[start : start + 500]
        vectors = np.vstack([embedder.embed(chunk[i : i + 64]) for i in range(0, len(chunk), 64)])
        entries = []
        for i, (text, vector) in enumerate(zip(chunk, vectors, strict=True)):
            material = KeyMaterial(tenant, (("user", text),))
            entries.append(
                SemanticEntry(f"k{start + i}", material.context_key(), text, vector.tolist(), answer, now + 3600)
            )
            await store.put(tenant, f"k{start + i}", answer, 3600)
        await index.add_many(tenant, entries)


async def latency(embedder: OnnxMiniLM, sizes: list[int], lookups: int) -> list[dict[str, object]]:
    stack, settings = StackSettings(), CacheSettings()
    store = RedisExactStore(stack.redis_url(), 1.0)
    index = await WeaviateSemanticIndex.connect(
        f"http://127.0.0.1:{stack.weaviate_port}", stack.weaviate_grpc_port, stack.weaviate_api_key()
    )
    loaded = load_verifier(settings.verifier_kind, settings.verifier_model_dir, settings.verifier_threads)
    verifier = TimedVerifier(loaded) if loaded else None
    metrics = CacheMetrics(CollectorRegistry())
    core = CacheCore(
        store,
        index,
        metrics,
        3600,
        settings.similarity_threshold,
        verifier=verifier,
        default_verifier_threshold=settings.verifier_threshold,
    )
    queries = [t for t, _ in datasets.clinc150("test")] + [t for t, _ in datasets.banking77("test")]
    queries = [queries[i] for i in np.random.default_rng(6).permutation(len(queries))]
    rows: list[dict[str, object]] = []
    tenant = f"bench{uuid.uuid4().hex[:8]}"
    texts = _texts(max(sizes))
    filled = 0
    try:
        for size in sorted(sizes):
            await _fill(index, store, embedder, tenant, texts[filled:size])
            filled = size
            if verifier:
                verifier.seconds.clear()
            exact, embedding, search, semantic, verified = [], [], [], [], 0
            for i in range(lookups):
                material = KeyMaterial(tenant, (("user", queries[i % len(queries)]),))
                started = time.perf_counter()
                await core.lookup(material, Controls(), 0.0, [])  # no embedding: exact tier only
                exact.append(time.perf_counter() - started)
                started = time.perf_counter()
                vector = embedder.embed([queries[i % len(queries)]])[0].tolist()
                embedded = time.perf_counter()
                decision = await core.lookup(material, Controls(), 0.0, vector)
                done = time.perf_counter()
                embedding.append(embedded - started)
                search.append(done - embedded)
                semantic.append(done - started)
                verified += decision.verifier_score is not None
                assert decision.kind is not HitKind.EXACT
            measured: list[tuple[str, list[float]]] = [
                ("exact", exact),
                ("embedding", embedding),
                ("semantic_lookup", search),  # both tiers asked, guard and verifier included, embedding excluded
                ("semantic_with_embedding", semantic),
            ]
            if verifier and verifier.seconds:
                measured.append(("verification", verifier.seconds))  # the lookups whose candidates reached it
            for tier, samples in measured:
                row = {"bench": "cache", "latency": tier, "entries": size, **summarize_ms(samples)}
                if tier == "semantic_lookup":
                    row["verified_share"] = round(verified / lookups, 4)
                emit(row)
                rows.append(row)
    finally:
        await core.invalidate(tenant, None, None)
        await core.close()
    return rows


def labelled_pairs(path: Path, thresholds_arg: str) -> int:
    """One JSON line per threshold, then the hit rate per kind and, last, the summary at the default."""
    try:
        thresholds = sorted({float(t) for t in thresholds_arg.split(",") if t.strip()})
    except ValueError:
        raise SystemExit(f"--thresholds: comma-separated numbers, got {thresholds_arg!r}") from None
    if not thresholds or not all(0.0 <= t <= 1.0 for t in thresholds):
        raise SystemExit("--thresholds: each within [0, 1]")
    default = cache_pairs.default_threshold()
    outcomes = asyncio.run(cache_pairs.run(pair_file.read(path), min([*thresholds, default])))
    for threshold in thresholds:
        emit({"bench": "cache", **cache_pairs.row(outcomes, threshold)})
    emit({"bench": "cache", "threshold": default, "by_kind": cache_pairs.by_kind(outcomes, default)})
    emit({"bench": "cache", "summary": True, **cache_pairs.row(outcomes, default)})
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="costmesh bench cache")
    parser.add_argument("--quick", action="store_true", help="10k entries only")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--lookups", type=int, default=500)
    parser.add_argument("--pairs", type=Path, help="labelled pairs (JSONL) to score through the running stack")
    parser.add_argument("--thresholds", default="0.85,0.9,0.92,0.95", help="with --pairs: cosine thresholds")
    args = parser.parse_args(argv)
    if args.pairs:
        return labelled_pairs(args.pairs, args.thresholds)
    settings = OrchestratorSettings()
    embedder = load_minilm(settings.embedding_model_dir, settings.embedding_threads)  # as the orchestrator runs it
    sizes = [10000] if args.quick else [int(s) for s in args.sizes.split(",")]
    rows = asyncio.run(latency(embedder, sizes, args.lookups))
    emit(
        {
            "bench": "cache",
            "summary": True,
            "latency": {f"{r['latency']}@{r['entries']}": {k: r[k] for k in ("p50_ms", "p99_ms")} for r in rows},
        }
    )
    return 0
