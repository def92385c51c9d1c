"""bench lanes' batch flood: completion items, or embedding items of several texts each."""

from __future__ import annotations

from bench.lanes import batch_items


def test_embedding_items_carry_their_texts_in_chunks() -> None:
    texts = [f"text {i}" for i in range(10)]
    items = batch_items("embeddings", "t", texts, 8, per_item=4)
    assert [len(i.embeddings.input) for i in items] == [4, 4, 2]
    assert [t for i in items for t in i.embeddings.input] == texts
    assert all(i.WhichOneof("body") == "embeddings" and i.embeddings.tenant == "t" for i in items)


def test_completion_items_are_one_question_each() -> None:
    items = batch_items("completions", "t", ["a", "b"], 8, per_item=1)
    assert [i.request.messages[-1].content for i in items] == ["a", "b"]
    assert items[0].request.sampling.max_tokens == 8
