import math

import pytest
from prometheus_client import CollectorRegistry

from services.cache.core import CacheCore, CacheMetrics, TenantPolicy, Tiers
from services.cache.domain import CachedAnswer, Controls, HitKind, KeyMaterial
from tests.unit.fakes import MemoryExactStore, MemorySemanticIndex

NOW = 1_800_000_000


def unit(*xs: float) -> list[float]:
    n = math.sqrt(sum(x * x for x in xs))
    return [x / n for x in xs]


def answer(text: str = "Use the app: Cards > Reset PIN.", created: int = NOW) -> CachedAnswer:
    return CachedAnswer(text, "m", "small", "stop", 20, 8, 1e-5, 3e-4, created)


def ask(text: str, tenant: str = "acme", system: str = "") -> KeyMaterial:
    messages = ((("system", system),) if system else ()) + (("user", text),)
    return KeyMaterial(tenant, messages)


@pytest.fixture
def index() -> MemorySemanticIndex:
    return MemorySemanticIndex()


def core(
    index: MemorySemanticIndex, now: float = NOW, registry: CollectorRegistry | None = None, **kw: object
) -> CacheCore:
    metrics = CacheMetrics(registry or CollectorRegistry())
    return CacheCore(MemoryExactStore(), index, metrics, 3600, 0.92, lambda: now, **kw)  # type: ignore[arg-type]


async def test_paraphrase_above_threshold_is_a_semantic_hit(index: MemorySemanticIndex) -> None:
    c = core(index)
    await c.store(ask("How do I reset my card PIN?"), Controls(), 0.0, unit(1, 0.1), answer())
    d = await c.lookup(ask("how can I change the PIN of my card"), Controls(), 0.0, unit(1, 0.2))
    assert d.kind is HitKind.SEMANTIC
    assert d.similarity == pytest.approx(0.995, abs=1e-3)
    assert d.answer is not None


async def test_below_threshold_is_a_miss_with_its_similarity(index: MemorySemanticIndex) -> None:
    c = core(index)
    await c.store(ask("How do I reset my card PIN?"), Controls(), 0.0, unit(1, 0.1), answer())
    d = await c.lookup(ask("What is my balance?"), Controls(), 0.0, unit(1, 1))
    assert d.kind is HitKind.MISS
    assert 0.7 < d.similarity < 0.92
    assert "threshold" in d.reason


@pytest.mark.parametrize(
    ("stored", "asked", "reason"),
    [
        ("Please cancel my card", "Please don't cancel my card", "negation"),
        ("Where is order 48213?", "Where is order 48231?", "numbers"),
        ("What is the capital of France?", "What is the capital of Spain?", "entities"),
    ],
)
async def test_guard_rejects_close_neighbours_that_change_the_answer(
    index: MemorySemanticIndex, stored: str, asked: str, reason: str
) -> None:
    c = core(index)
    await c.store(ask(stored), Controls(), 0.0, unit(1, 0.1), answer())
    d = await c.lookup(ask(asked), Controls(), 0.0, unit(1, 0.1))  # identical vectors: similarity 1.0
    assert d.kind is HitKind.MISS
    assert "false-hit guard" in d.reason
    assert reason in d.reason


async def test_guard_passes_over_a_bad_neighbour_to_a_good_one(index: MemorySemanticIndex) -> None:
    c = core(index)
    await c.store(ask("Where is order 48231?"), Controls(), 0.0, unit(1, 0.0), answer("wrong order"))
    await c.store(ask("Has order 48213 shipped?"), Controls(), 0.0, unit(1, 0.05), answer("right order"))
    d = await c.lookup(ask("Where is order 48213?"), Controls(), 0.0, unit(1, 0.0))
    assert d.kind is HitKind.SEMANTIC
    assert d.answer is not None
    assert d.answer.answer == "right order"


async def test_different_system_prompt_never_matches(index: MemorySemanticIndex) -> None:
    c = core(index)
    await c.store(ask("Reset my PIN", system="Answer in French."), Controls(), 0.0, unit(1, 0), answer())
    d = await c.lookup(ask("Reset my PIN", system="Answer in English."), Controls(), 0.0, unit(1, 0))
    assert d.kind is HitKind.MISS


async def test_tenants_are_isolated(index: MemorySemanticIndex) -> None:
    c = core(index)
    await c.store(ask("How do I reset my card PIN?", tenant="acme"), Controls(), 0.0, unit(1, 0), answer())
    d = await c.lookup(ask("How do I reset my card PIN?", tenant="globex"), Controls(), 0.0, unit(1, 0))
    assert d.kind is HitKind.MISS


async def test_thresholds_per_request_and_per_tenant(index: MemorySemanticIndex) -> None:
    strict = core(index, tenants={"acme": TenantPolicy(similarity_threshold=0.999)})
    await strict.store(ask("How do I reset my card PIN?"), Controls(), 0.0, unit(1, 0.1), answer())
    paraphrase = ask("how can I change the PIN of my card")
    assert (await strict.lookup(paraphrase, Controls(), 0.0, unit(1, 0.2))).kind is HitKind.MISS
    loose = Controls(similarity_threshold=0.9)
    assert (await strict.lookup(paraphrase, loose, 0.0, unit(1, 0.2))).kind is HitKind.SEMANTIC


async def test_ttl_per_tenant_and_sweep_with_size_cap(index: MemorySemanticIndex) -> None:
    registry = CollectorRegistry()
    c = core(index, registry=registry, tenants={"acme": TenantPolicy(ttl_s=60)}, max_entries_per_tenant=2)
    for i in range(3):
        await c.store(ask(f"question {i}"), Controls(), 0.0, unit(1, i), answer(created=NOW + i))
    held = index.entries["acme"]
    assert {e.expires_unix_s - e.answer.created_unix_s for e in held.values()} == {60}
    assert await c.sweep() == 1  # the oldest beyond the cap of 2
    assert sorted(e.query for e in held.values()) == ["question 1", "question 2"]
    held_by_tier = [registry.get_sample_value("costmesh_cache_entries", {"tier": t}) for t in ("exact", "semantic")]
    assert held_by_tier == [3, 2]  # the exact tier evicts by TTL only
    later = core(index, now=NOW + 3600, max_entries_per_tenant=2)
    assert await later.sweep() == 2  # both expired
    assert (await later.lookup(ask("question 2"), Controls(), 0.0, unit(1, 2))).kind is HitKind.MISS


def test_context_key_ignores_wording_but_not_settings() -> None:
    a = KeyMaterial("acme", (("system", "Be brief."), ("user", "Reset my PIN")), sampling=(("max_tokens", "64"),))
    b = KeyMaterial(
        "acme", (("system", "be  brief."), ("user", "How do I change my PIN?")), sampling=(("max_tokens", "64"),)
    )
    c = KeyMaterial("acme", (("system", "Be brief."), ("user", "Reset my PIN")), sampling=(("max_tokens", "65"),))
    assert a.context_key() == b.context_key()
    assert a.context_key() != c.context_key()
    assert a.query() == "Reset my PIN"


async def test_tier_selection(index: MemorySemanticIndex) -> None:
    c = core(index)
    await c.store(ask("How do I reset my card PIN?"), Controls(), 0.0, unit(1, 0.1), answer())
    same, paraphrase = ask("How do I reset my card PIN?"), ask("how can I change the PIN of my card")
    assert (await c.lookup(same, Controls(), 0.0, unit(1, 0.1), Tiers.EXACT)).kind is HitKind.EXACT
    assert (await c.lookup(paraphrase, Controls(), 0.0, unit(1, 0.2), Tiers.EXACT)).kind is HitKind.MISS
    # Semantic only: even the identical question is answered by the semantic tier.
    assert (await c.lookup(same, Controls(), 0.0, unit(1, 0.1), Tiers.SEMANTIC)).kind is HitKind.SEMANTIC
