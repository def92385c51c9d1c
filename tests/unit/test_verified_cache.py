"""The semantic tier's verifier step and its conversation-aware context key (fake verifier, fake index)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from prometheus_client import CollectorRegistry

from services.cache.core import CacheCore, CacheMetrics, TenantPolicy
from services.cache.domain import Controls, HitKind, KeyMaterial, same_wording, wording
from tests.unit.fakes import MemoryExactStore, MemorySemanticIndex
from tests.unit.test_semantic_cache import NOW, answer, ask, unit


class ScriptedVerifier:
    """P(same answer) looked up by the cached question; records what it was asked."""

    name = "scripted"

    def __init__(self, scores: dict[str, float], fail: bool = False) -> None:
        self._scores = scores
        self.fail = fail
        self.calls: list[tuple[str, list[str]]] = []

    def scores(self, query: str, candidates: Sequence[str]) -> list[float]:
        self.calls.append((query, list(candidates)))
        if self.fail:
            raise RuntimeError("onnx session died")
        return [self._scores.get(c, 0.0) for c in candidates]


def core(verifier: ScriptedVerifier | None, registry: CollectorRegistry | None = None, **kw: object) -> CacheCore:
    metrics = CacheMetrics(registry or CollectorRegistry())
    return CacheCore(
        MemoryExactStore(),
        MemorySemanticIndex(),
        metrics,
        3600,
        0.80,
        lambda: NOW,
        verifier=verifier,
        default_verifier_threshold=0.5,
        **kw,  # type: ignore[arg-type]
    )


async def test_verifier_accepts_a_paraphrase_and_reports_its_score() -> None:
    verifier = ScriptedVerifier({"How do I reset my card PIN?": 0.93})
    c = core(verifier)
    await c.store(ask("How do I reset my card PIN?"), Controls(), 0.0, unit(1, 0.1), answer())
    d = await c.lookup(ask("how can I change my card's PIN"), Controls(), 0.0, unit(1, 0.2))
    assert d.kind is HitKind.SEMANTIC
    assert d.verifier_score == pytest.approx(0.93)
    assert d.entry_key == ask("How do I reset my card PIN?").exact_key() != d.key
    assert verifier.calls == [("how can I change my card's PIN", ["How do I reset my card PIN?"])]


async def test_verifier_refuses_a_close_neighbour_with_another_answer() -> None:
    registry = CollectorRegistry()
    c = core(ScriptedVerifier({"Can I bring my dog on the train?": 0.04}), registry)
    await c.store(ask("Can I bring my dog on the train?"), Controls(), 0.0, unit(1, 0.1), answer())
    d = await c.lookup(ask("Can I bring my cat on the train?"), Controls(), 0.0, unit(1, 0.11))
    assert d.kind is HitKind.MISS
    assert d.reason.startswith("verifier:") and d.verifier_score == pytest.approx(0.04)
    # acme is not on the metrics' tenant allow-list (empty here): counted under "other".
    assert registry.get_sample_value("costmesh_cache_verifier_rejections_total", {"tenant": "other"}) == 1


async def test_only_the_nearest_candidate_the_guard_passes_is_verified() -> None:
    verifier = ScriptedVerifier({"Transfer from savings to current": 0.1, "Move money from savings to current": 0.9})
    c = core(verifier)
    await c.store(ask("Transfer from savings to current"), Controls(), 0.0, unit(1, 0.05), answer("A"))
    await c.store(ask("Move money from savings to current"), Controls(), 0.0, unit(1, 0.3), answer("B"))
    d = await c.lookup(ask("Send money from savings to current"), Controls(), 0.0, unit(1, 0.06))
    assert d.kind is HitKind.MISS and d.verifier_score == pytest.approx(0.1)
    assert verifier.calls == [("Send money from savings to current", ["Transfer from savings to current"])]
    # A nearer neighbour the guard refuses does not use up the verifier's turn.
    await c.store(ask("Send money from current to savings"), Controls(), 0.0, unit(1, 0.061), answer("C"))
    verifier.calls.clear()
    d = await c.lookup(ask("Please send money from savings to current"), Controls(), 0.0, unit(1, 0.06))
    assert verifier.calls == [("Please send money from savings to current", ["Transfer from savings to current"])]


async def test_verifier_cut_off_per_request_and_per_tenant() -> None:
    verifier = ScriptedVerifier({"How do I reset my card PIN?": 0.7})
    c = core(verifier, tenants={"strict": TenantPolicy(verifier_threshold=0.9)})
    for tenant in ("acme", "strict"):
        await c.store(ask("How do I reset my card PIN?", tenant), Controls(), 0.0, unit(1, 0.1), answer())
    asked = "how can I change my card's PIN"
    assert (await c.lookup(ask(asked), Controls(), 0.0, unit(1, 0.2))).kind is HitKind.SEMANTIC
    assert (await c.lookup(ask(asked, "strict"), Controls(), 0.0, unit(1, 0.2))).kind is HitKind.MISS
    strict = Controls(verifier_threshold=0.8)
    assert (await c.lookup(ask(asked), strict, 0.0, unit(1, 0.2))).kind is HitKind.MISS


async def test_a_failing_verifier_is_a_degraded_miss_never_an_unverified_hit() -> None:
    registry = CollectorRegistry()
    c = core(ScriptedVerifier({}, fail=True), registry)
    await c.store(ask("How do I reset my card PIN?"), Controls(), 0.0, unit(1, 0.1), answer())
    d = await c.lookup(ask("how can I change my card's PIN"), Controls(), 0.0, unit(1, 0.2))
    assert d.kind is HitKind.MISS and d.degraded and "verifier unavailable" in d.reason
    assert registry.get_sample_value("costmesh_cache_backend_errors_total", {"tier": "verifier", "op": "lookup"}) == 1


async def test_guard_rejections_never_reach_the_verifier() -> None:
    verifier = ScriptedVerifier({"What is the status of order 48213?": 1.0})
    c = core(verifier)
    await c.store(ask("What is the status of order 48213?"), Controls(), 0.0, unit(1, 0.1), answer())
    d = await c.lookup(ask("What is the status of order 48231?"), Controls(), 0.0, unit(1, 0.1))
    assert d.kind is HitKind.MISS and "guard" in d.reason
    assert verifier.calls == []


def conversation(*turns: str) -> KeyMaterial:
    roles = ("user", "assistant")
    return KeyMaterial("acme", tuple((roles[i % 2], t) for i, t in enumerate(turns)))


def filler(n: int) -> list[str]:
    return [f"small talk {i}" for i in range(n)]


def test_context_key_carries_the_whole_earlier_conversation() -> None:
    # What "it" refers to was said 40 turns back; the last message is the same word for word.
    streaming = conversation("I pay for a video streaming plan.", "Noted.", *filler(40), "Please cancel it.")
    gym = conversation("I pay for a gym membership.", "Noted.", *filler(40), "Please cancel it.")
    assert streaming.query() == gym.query() == "Please cancel it."
    assert streaming.context_key() != gym.context_key()
    # A detail change far back, too.
    low = conversation("My limit is £5,000 and I spent £4,500.", "OK.", *filler(10), "Am I over my limit?")
    high = conversation("My limit is £5,000 and I spent £6,500.", "OK.", *filler(10), "Am I over my limit?")
    assert low.context_key() != high.context_key()


def test_context_key_ignores_only_the_wording_of_the_last_question() -> None:
    a = conversation("I pay for a gym membership.", "Noted.", "Please cancel it.")
    b = conversation("I pay for a gym  membership.", "Noted.", "Could you cancel it for me?")
    assert a.context_key() == b.context_key()
    assert a.exact_key() != b.exact_key()
    # The same earlier turns with the roles swapped are another conversation.
    swapped = KeyMaterial("acme", (("assistant", "I pay for a gym membership."), ("user", "Noted."), ("user", "x")))
    assert swapped.context_key() != a.context_key()


async def test_same_follow_up_after_another_conversation_never_hits() -> None:
    c = core(ScriptedVerifier({"Please cancel it.": 1.0}))
    stored = conversation("I pay for a video streaming plan.", "Noted.", *filler(40), "Please cancel it.")
    await c.store(stored, Controls(), 0.0, unit(1, 0.1), answer())
    other = conversation("I pay for a gym membership.", "Noted.", *filler(40), "Please cancel it.")
    assert (await c.lookup(other, Controls(), 0.0, unit(1, 0.1))).kind is HitKind.MISS
    same = conversation("I pay for a video streaming plan.", "Noted.", *filler(40), "Cancel it please.")
    assert (await c.lookup(same, Controls(), 0.0, unit(1, 0.1))).kind is HitKind.SEMANTIC


@pytest.mark.parametrize(
    ("cached", "asked"),
    [
        ("Is order 48213 delayed?", "is the order 48213 delayed??"),
        ("Hi, how do I reset my PIN?", "How do I reset my PIN, please"),
    ],
)
async def test_the_same_words_hit_without_the_verifier(cached: str, asked: str) -> None:
    verifier = ScriptedVerifier({})  # would refuse everything
    c = core(verifier)
    await c.store(ask(cached), Controls(), 0.0, unit(1, 0.1), answer())
    d = await c.lookup(ask(asked), Controls(), 0.0, unit(1, 0.1))
    assert d.kind is HitKind.SEMANTIC and d.verifier_score is None and verifier.calls == []


@pytest.mark.parametrize(
    ("cached", "asked"),
    [
        ("Is order 48213 delayed?", "Is order 48213 not delayed?"),  # a negation is a word that counts
        ("Can I cancel it?", "Can you cancel it?"),  # so are pronouns
        ("Is it refundable?", "Is it refundable for all?"),
    ],
)
def test_wording_keeps_every_word_that_can_change_the_answer(cached: str, asked: str) -> None:
    assert wording(cached) != wording(asked)


@pytest.mark.parametrize(
    ("cached", "asked"),
    [
        ("is 5 < 3", "is 5 > 3"),
        ("what is 10-3", "what is 10+3"),
        ("Do you teach C++?", "Do you teach C?"),
        ("hi", "thanks"),
    ],
)
def test_symbols_count_and_an_empty_wording_never_matches(cached: str, asked: str) -> None:
    assert not same_wording(cached, asked)


async def test_a_verifier_answering_the_wrong_shape_is_a_degraded_miss() -> None:
    class Broken(ScriptedVerifier):
        def scores(self, query: str, candidates: Sequence[str]) -> list[float]:
            return [0.99, 0.99]  # two scores for one candidate

    c = core(Broken({}))
    await c.store(ask("How do I reset my card PIN?"), Controls(), 0.0, unit(1, 0.1), answer())
    d = await c.lookup(ask("how can I change my card's PIN"), Controls(), 0.0, unit(1, 0.2))
    assert d.kind is HitKind.MISS and d.degraded and "verifier unavailable" in d.reason


def test_a_question_in_another_place_is_another_context() -> None:
    a = KeyMaterial("acme", (("user", "Q1"), ("assistant", "A1"), ("user", "Q2"), ("assistant", "P")))
    b = KeyMaterial("acme", (("user", "Q1"), ("assistant", "A1"), ("assistant", "P"), ("user", "Q2")))
    assert a.query() == b.query() and a.context_key() != b.context_key()


async def test_without_a_verifier_the_service_uses_the_stricter_rules_only_threshold() -> None:
    from services.cache.server import build_core
    from services.cache.settings import CacheSettings

    settings = CacheSettings(weaviate_url="", verifier_model_dir="", redis_url="redis://127.0.0.1:1/0")
    built = await build_core(settings, CacheMetrics(CollectorRegistry()))
    try:
        assert built._threshold("acme", Controls()) == settings.similarity_threshold_without_verifier == 0.90
    finally:
        await built.close()
