import asyncio
from collections.abc import Sequence

import httpx
import numpy as np
import pytest

from services.common.errors import BackendUnavailable, InvalidInput
from services.compressor.backends.dedupe import DedupeCompressor
from services.compressor.backends.llmlingua import LLMLinguaCompressor
from services.compressor.blocks import BlockCache
from services.compressor.core import CompressorCore, Doc, select_examples, split_answer
from services.compressor.nearest import ExampleIndex

BOILERPLATE = "This document is confidential. Do not share it outside the company."


class HalvingCompressor:
    """Keeps every other word and counts its calls; optionally waits on a gate first."""

    name = "halving"

    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.calls: list[list[str]] = []
        self.questions: list[str] = []
        self.gate = gate

    async def compress(self, texts: list[str], target_ratio: float, question: str = "") -> list[str]:
        self.calls.append(list(texts))
        self.questions.append(question)
        if self.gate is not None:
            await self.gate.wait()
        return [" ".join(t.split()[::2]) for t in texts]

    async def close(self) -> None:
        pass


def long_text(n: int = 60) -> str:
    return " ".join(f"word{i}" for i in range(n))


async def test_repeated_boilerplate_removed_and_fixed_docs_untouched() -> None:
    docs = [
        Doc("a", f"{BOILERPLATE} Refunds take 5 days.   {BOILERPLATE}", "context"),
        Doc("b", f"{BOILERPLATE} Cards ship in 3 days.", "context"),
        Doc("f", f"{BOILERPLATE} Fixed policy text.", "fixed"),
    ]
    result = await CompressorCore(DedupeCompressor(), 2.0).compress(docs, "q", 0)
    assert result.applied
    assert result.tokens_after < result.tokens_before
    assert "Refunds take 5 days." in result.documents[0].text
    assert result.documents[0].text.count("confidential") == 1
    assert "confidential" not in result.documents[1].text
    assert "Cards ship in 3 days." in result.documents[1].text
    assert result.documents[2] == docs[2]
    assert [d.id for d in result.documents] == ["a", "b", "f"]


async def test_deterministic() -> None:
    docs = [Doc("a", f"{BOILERPLATE} x. {BOILERPLATE}", "context")]
    core = CompressorCore(DedupeCompressor(), 2.0)
    assert (await core.compress(docs, "q", 0)).documents == (await core.compress(docs, "q", 0)).documents


async def test_ratio_below_one_rejected() -> None:
    with pytest.raises(InvalidInput):
        await CompressorCore(DedupeCompressor(), 2.0).compress([], "q", 0.5)


def test_split_answer_keeps_the_last_line() -> None:
    assert split_answer("Query: where is my card?\nIntent: card_arrival") == (
        "Query: where is my card?",
        "\nIntent: card_arrival",
    )
    assert split_answer("one line only") == ("one line only", "")
    assert split_answer("\nonly an answer") == ("\nonly an answer", "")


async def test_examples_keep_answers_and_blocks_are_compressed_separately() -> None:
    backend = HalvingCompressor()
    core = CompressorCore(backend, 2.0, examples="tokens")
    examples = [Doc(f"e{i}", f"{long_text(10)}\nIntent: label_{i}", "example") for i in range(3)]
    context = Doc("c", long_text(), "context")
    fixed = Doc("f", long_text(), "fixed")
    result = await core.compress([*examples, context, fixed], "q", 0)
    # One call per block: examples (without their answers), then context; fixed text never reaches it.
    assert backend.calls == [[long_text(10)] * 3, [long_text()]]
    assert backend.questions == ["", "q"]  # static examples never depend on the question
    for i, doc in enumerate(result.documents[:3]):
        assert doc.text.endswith(f"\nIntent: label_{i}")
    assert result.documents[4] == fixed
    assert result.tokens_after < result.tokens_before


async def test_static_block_is_cached_byte_identical_across_contexts() -> None:
    backend = HalvingCompressor()
    core = CompressorCore(backend, 2.0, examples="tokens")
    examples = [Doc("e", f"{long_text(30)}\nIntent: x", "example")]
    first = await core.compress([*examples, Doc("c", long_text(40), "context")], "one question", 0)
    second = await core.compress([*examples, Doc("c", long_text(40), "context")], "another question", 0)
    assert first.documents[0].text == second.documents[0].text
    assert second.cached_blocks == 1  # the examples; the context is compressed for each question
    assert len(backend.calls) == 3


def test_example_selection_keeps_every_label_and_the_same_share_of_each() -> None:
    examples = [f"Query: q{i}\nIntent: a" for i in range(8)] + [f"Query: r{i}\nIntent: b" for i in range(3)]
    kept = select_examples(examples, 2.0)
    assert sum(kept[:8]) == 4 and sum(kept[8:]) == 2  # round(3 / 2) = 2
    assert kept[0] and kept[8]  # evenly spread from the first one
    assert select_examples(examples, 2.0) == kept  # deterministic
    assert sum(select_examples(examples, 100.0)) == 2  # never a label without a demonstration


async def test_selected_examples_stay_intact_and_dropped_ones_are_emptied() -> None:
    backend = HalvingCompressor()
    core = CompressorCore(backend, 2.0)  # examples="select" is the default
    docs = [Doc(f"e{i}", f"Query: {long_text(10)} {i}\nIntent: label_{i % 2}", "example") for i in range(8)]
    result = await core.compress([*docs, Doc("c", long_text(), "context")], "q", 0)
    kept = [d for d in result.documents[:8] if d.text]
    assert len(kept) == 4 and all(d.text == docs[int(d.id[1:])].text for d in kept)
    assert {d.text.rsplit(": ", 1)[1] for d in kept} == {"label_0", "label_1"}
    assert backend.calls == [[long_text()]]  # only the context went to the model-based method
    assert result.method == "select-examples+halving"


async def test_small_blocks_are_passed_through() -> None:
    backend = HalvingCompressor()
    docs = [Doc("c", "A short passage.", "context")]
    result = await CompressorCore(backend, 2.0, min_tokens=100).compress(docs, "q", 0)
    assert backend.calls == []
    assert result.documents == docs and not result.applied


async def test_abandoned_compression_finishes_and_fills_the_cache() -> None:
    gate = asyncio.Event()
    backend = HalvingCompressor(gate)
    core = CompressorCore(backend, 2.0)
    docs = [Doc("c", long_text(), "context")]
    with pytest.raises(TimeoutError):  # the caller's deadline passes while the model works
        await asyncio.wait_for(core.compress(docs, "q", 0), 0.05)
    gate.set()
    for _ in range(100):
        if len(core.blocks):
            break
        await asyncio.sleep(0.01)
    result = await core.compress(docs, "q", 0)
    assert result.cached_blocks == 1 and result.applied
    assert len(backend.calls) == 1


async def test_concurrent_requests_share_one_compression() -> None:
    gate = asyncio.Event()
    backend = HalvingCompressor(gate)
    core = CompressorCore(backend, 2.0)
    docs = [Doc("c", long_text(), "context")]
    tasks = [asyncio.create_task(core.compress(docs, "q", 0)) for _ in range(3)]
    await asyncio.sleep(0.01)
    gate.set()
    results = await asyncio.gather(*tasks)
    assert len(backend.calls) == 1
    assert len({r.documents[0].text for r in results}) == 1


async def test_failed_compression_is_retried_by_the_next_request() -> None:
    attempts = 0

    async def flaky() -> list[str]:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise BackendUnavailable("down")
        return ["ok"]

    cache = BlockCache(4)
    with pytest.raises(BackendUnavailable):
        await cache.get_or_compute("k", flaky)
    assert await cache.get_or_compute("k", flaky) == (["ok"], False)
    assert await cache.get_or_compute("k", flaky) == (["ok"], True)


def test_block_cache_evicts_least_recently_used() -> None:
    cache = BlockCache(2)

    async def fill() -> None:
        for key in ("a", "b"):
            await cache.get_or_compute(key, lambda key=key: asyncio.sleep(0, [key]))  # type: ignore[misc]
        cache.get("a")
        await cache.get_or_compute("c", lambda: asyncio.sleep(0, ["c"]))

    asyncio.run(fill())
    assert cache.get("a") == ["a"] and cache.get("b") is None and cache.get("c") == ["c"]


def lingua(handler: httpx.MockTransport) -> LLMLinguaCompressor:
    backend = LLMLinguaCompressor("http://lingua", 5.0)
    backend._client = httpx.AsyncClient(base_url="http://lingua", transport=handler)
    return backend


async def test_llmlingua_backend_sends_the_rate_and_checks_the_reply() -> None:
    seen = {}

    def answer(request: httpx.Request) -> httpx.Response:
        import json

        seen.update(json.loads(request.content))
        return httpx.Response(200, json={"texts": ["short a", "short b"], "seconds": 0.1})

    assert await lingua(httpx.MockTransport(answer)).compress(["long a", "long b"], 4.0) == ["short a", "short b"]
    assert seen == {"texts": ["long a", "long b"], "rate": 0.25, "question": ""}


@pytest.mark.parametrize(
    "response",
    [httpx.Response(500, json={"error": "boom"}), httpx.Response(200, json={"texts": ["only one"]})],
)
async def test_llmlingua_backend_errors_are_unavailable(response: httpx.Response) -> None:
    backend = lingua(httpx.MockTransport(lambda _: response))
    with pytest.raises(BackendUnavailable):
        await backend.compress(["a", "b"], 2.0)


class WordEmbedder:
    """A stand-in for MiniLM: unit bag-of-words vectors, so 'nearest' means 'shares the most words'."""

    name = "words"
    dimensions = 256  # more than the tests' vocabulary: one slot per word

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.vocabulary: dict[str, int] = {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.batches.append(list(texts))
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().replace("query:", "").split():
                out[row, self.vocabulary.setdefault(word, len(self.vocabulary))] += 1
        return out / np.clip(np.linalg.norm(out, axis=1, keepdims=True), 1e-9, None)


def intent_examples() -> list[Doc]:
    topics = {"card_arrival": "card arrive post", "refund": "refund money back", "top_up": "top up wallet"}
    return [
        Doc(f"{label}{i}", f"Query: {words.split()[i % 3]} example {label} number {i}\nIntent: {label}", "example")
        for label, words in topics.items()
        for i in range(8)
    ]


async def test_nearest_examples_follow_a_static_share_that_is_the_same_for_every_question() -> None:
    embedder = WordEmbedder()
    core = CompressorCore(DedupeCompressor(), 2.0, examples="nearest", nearest=ExampleIndex(embedder))
    docs = [Doc("policy", "Fixed text.", "fixed"), *intent_examples()]
    refund = await core.compress(docs, "how do I get a refund of my money", 0)
    card = await core.compress(docs, "when will my card arrive", 0)

    for result in (refund, card):
        assert sorted(d.id for d in result.documents) == sorted(d.id for d in docs)  # each id once
        kept = [d for d in result.documents if d.kind == "example" and d.text]
        assert len(kept) == 12  # 24 examples at ratio 2
        assert all(d.text == next(o.text for o in docs if o.id == d.id) for d in kept)  # intact
        assert result.method == "nearest-examples"
        assert result.tokens_after < result.tokens_before
    static = [d.id for d in refund.documents[:-3] if d.text]
    # 0.75 of the 12 kept, 3 per label, spread evenly; the same whatever the question: a cacheable prefix.
    assert static == [d.id for d in card.documents[:-3] if d.text]
    assert static == ["policy"] + [f"{label}{i}" for label in ("card_arrival", "refund", "top_up") for i in (0, 2, 5)]
    refund_tail, card_tail = refund.documents[-3:], card.documents[-3:]
    assert all(d.id.startswith("refund") for d in refund_tail)
    assert all(d.id.startswith("card_arrival") for d in card_tail)
    assert len(embedder.batches) == 1 + 2  # the examples once, then one question per request


async def test_nearest_without_a_question_keeps_the_static_selection() -> None:
    core = CompressorCore(DedupeCompressor(), 2.0, examples="nearest", nearest=ExampleIndex(WordEmbedder()))
    docs = intent_examples()
    result = await core.compress(docs, "  ", 0)
    assert [d.text for d in result.documents] == [
        d.text if keep else "" for d, keep in zip(docs, select_examples([d.text for d in docs], 2.0), strict=True)
    ]
    assert result.method == "select-examples"


async def test_nearest_fills_what_a_high_ratio_leaves_after_one_example_per_label() -> None:
    core = CompressorCore(DedupeCompressor(), 4.0, examples="nearest", nearest=ExampleIndex(WordEmbedder()))
    result = await core.compress(intent_examples(), "top up my wallet", 0)
    kept = [d for d in result.documents if d.text]
    assert len(kept) == 6  # round(24 / 4): one static example per label, three picked for the question
    assert [d.id for d in kept[:3]] == ["card_arrival0", "refund0", "top_up0"]
    assert all(d.id.startswith("top_up") for d in kept[3:])


def test_nearest_needs_an_index_and_a_sensible_share() -> None:
    with pytest.raises(InvalidInput, match="embedding"):
        CompressorCore(DedupeCompressor(), 2.0, examples="nearest")
    with pytest.raises(InvalidInput, match="static_share"):
        index = ExampleIndex(WordEmbedder())
        CompressorCore(DedupeCompressor(), 2.0, examples="nearest", nearest=index, static_share=0)
