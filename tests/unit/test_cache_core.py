import pytest
from prometheus_client import CollectorRegistry

from services.cache.core import CacheCore, CacheMetrics
from services.cache.domain import CachedAnswer, Controls, HitKind, KeyMaterial
from services.common.errors import InvalidInput
from tests.unit.fakes import MemoryExactStore

NOW = 1_800_000_000


def answer(text: str = "Paris.", finish: str = "stop", created: int = NOW) -> CachedAnswer:
    return CachedAnswer(text, "small-model", "small", finish, 30, 3, 1e-5, 2e-4, created)


def core(store: MemoryExactStore, now: float = NOW) -> CacheCore:
    return CacheCore(store, None, CacheMetrics(CollectorRegistry()), 86400, 0.92, clock=lambda: now)


KEY = KeyMaterial("acme", (("user", "What is the capital of France?"),))


async def test_store_then_exact_hit_with_default_ttl() -> None:
    store = MemoryExactStore()
    stored, key, _ = await core(store).store(KEY, Controls(), 0.0, [], answer())
    assert stored
    assert store.entries[("acme", key)][1] == 86400
    decision = await core(store).lookup(KEY, Controls(), 0.0, [])
    assert decision.kind is HitKind.EXACT
    assert decision.similarity == 1.0
    assert decision.answer is not None
    assert decision.answer.answer == "Paris."


async def test_per_request_ttl_overrides_default() -> None:
    store = MemoryExactStore()
    _, key, _ = await core(store).store(KEY, Controls(ttl_s=60), 0.0, [], answer())
    assert store.entries[("acme", key)][1] == 60


async def test_other_tenant_never_hits() -> None:
    store = MemoryExactStore()
    await core(store).store(KEY, Controls(), 0.0, [], answer())
    other = KeyMaterial("globex", KEY.messages)
    assert (await core(store).lookup(other, Controls(), 0.0, [])).kind is HitKind.MISS


@pytest.mark.parametrize(
    ("controls", "temperature", "text", "finish", "reason_part"),
    [
        (Controls(no_store=True), 0.0, "Paris.", "stop", "no_store"),
        (Controls(), 0.7, "Paris.", "stop", "sampled"),
        (Controls(), 0.0, "The capital", "length", "not complete"),
        (Controls(), 0.0, "   ", "stop", "empty"),
    ],
)
async def test_uncacheable_answers_are_not_stored(
    controls: Controls, temperature: float, text: str, finish: str, reason_part: str
) -> None:
    store = MemoryExactStore()
    stored, _, reason = await core(store).store(KEY, controls, temperature, [], answer(text, finish))
    assert not stored
    assert reason_part in reason
    assert store.entries == {}


async def test_an_answer_cut_at_the_requests_own_max_tokens_is_stored_under_that_limit() -> None:
    store = MemoryExactStore()
    limited = KeyMaterial(KEY.tenant, KEY.messages, sampling=(("max_tokens", "3"),))
    cut = CachedAnswer("The capital is", "small-model", "small", "length", 30, 3, 1e-5, 2e-4, NOW)
    stored, _, reason = await core(store).store(limited, Controls(), 0.0, [], cut)
    assert stored, reason
    assert (await core(store).lookup(limited, Controls(), 0.0, [])).kind is HitKind.EXACT
    # The same prompt with another limit (or none) is another key: it misses.
    other = KeyMaterial(KEY.tenant, KEY.messages, sampling=(("max_tokens", "50"),))
    assert (await core(store).lookup(other, Controls(), 0.0, [])).kind is HitKind.MISS
    assert (await core(store).lookup(KEY, Controls(), 0.0, [])).kind is HitKind.MISS
    # Cut below the request's limit (a tier cap): incomplete, not stored.
    early = CachedAnswer("The capital", "small-model", "small", "length", 30, 2, 1e-5, 2e-4, NOW)
    stored, _, reason = await core(store).store(other, Controls(), 0.0, [], early)
    assert not stored and "not complete" in reason


async def test_sampled_answers_cached_when_the_request_opts_in() -> None:
    store = MemoryExactStore()
    stored, _, _ = await core(store).store(KEY, Controls(allow_sampled=True), 0.7, [], answer())
    assert stored
    decision = await core(store).lookup(KEY, Controls(allow_sampled=True), 0.7, [])
    assert decision.kind is HitKind.EXACT


async def test_no_cache_skips_lookup() -> None:
    store = MemoryExactStore()
    await core(store).store(KEY, Controls(), 0.0, [], answer())
    decision = await core(store).lookup(KEY, Controls(no_cache=True), 0.0, [])
    assert decision.kind is HitKind.MISS
    assert decision.skipped


async def test_max_age_rejects_older_entries() -> None:
    store = MemoryExactStore()
    await core(store).store(KEY, Controls(), 0.0, [], answer(created=NOW - 600))
    later = core(store, now=NOW)
    assert (await later.lookup(KEY, Controls(max_age_s=300), 0.0, [])).kind is HitKind.MISS
    assert (await later.lookup(KEY, Controls(max_age_s=900), 0.0, [])).kind is HitKind.EXACT


async def test_backend_failure_is_a_degraded_miss_not_an_error() -> None:
    store = MemoryExactStore(fail=True)
    decision = await core(store).lookup(KEY, Controls(), 0.0, [])
    assert decision.kind is HitKind.MISS
    assert decision.degraded
    stored, _, reason = await core(store).store(KEY, Controls(), 0.0, [], answer())
    assert not stored
    assert "failed" in reason


async def test_invalidate_by_key_tenant_and_age() -> None:
    store = MemoryExactStore()
    c = core(store)
    _, key, _ = await c.store(KEY, Controls(), 0.0, [], answer(created=NOW - 1000))
    await c.store(KeyMaterial("acme", (("user", "other"),)), Controls(), 0.0, [], answer(created=NOW))
    assert await c.invalidate("acme", None, 500) == 1  # only the older one
    assert await c.invalidate("acme", key, None) == 0  # already gone
    assert await c.invalidate("acme", None, None) == 1


async def test_bad_tenant_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        await core(MemoryExactStore()).lookup(KeyMaterial("bad tenant!", KEY.messages), Controls(), 0.0, [])


async def test_metrics_label_only_allow_listed_tenants() -> None:
    registry = CollectorRegistry()
    c = CacheCore(MemoryExactStore(), None, CacheMetrics(registry, {"acme"}), 86400, 0.92, clock=lambda: NOW)
    await c.lookup(KEY, Controls(), 0.0, [])
    for invented in ("t1", "t2", "t3"):
        await c.lookup(KeyMaterial(invented, KEY.messages), Controls(), 0.0, [])
    lookups = "costmesh_cache_lookups_total"
    assert registry.get_sample_value(lookups, {"tier": "exact", "tenant": "acme", "result": "miss"}) == 1
    assert registry.get_sample_value(lookups, {"tier": "exact", "tenant": "other", "result": "miss"}) == 3
    tenants = {s.labels["tenant"] for m in registry.collect() if m.name == "costmesh_cache_lookups" for s in m.samples}
    assert tenants == {"acme", "other"}  # one series per allowed tenant, one for the rest, however many call
