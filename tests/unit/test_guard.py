import pytest

from services.cache.guard import facts, mismatch


@pytest.mark.parametrize(
    ("query", "cached"),
    [
        ("How do I reset my card PIN?", "how can I change the PIN of my card"),
        ("What is the capital of France?", "what's the capital city of France"),
        ("Where is order 48213?", "Has order 48213 shipped yet?"),
        ("I do not recognise this payment", "I don't recognise this payment on my account"),
        ("Can I top up by card today?", "is topping up by card possible today"),
    ],
)
def test_paraphrases_pass(query: str, cached: str) -> None:
    assert mismatch(query, cached) == ""


@pytest.mark.parametrize(
    ("query", "cached", "reason"),
    [
        ("Please cancel my order", "Please don't cancel my order", "negation"),
        ("I want to reset my card PIN", "I do not want to reset my card PIN", "negation"),
        ("Where is order 48213?", "Where is order 48231?", "numbers"),
        ("Transfer 100 euros to savings", "Transfer 1000 euros to savings", "numbers"),
        ("Status of ticket AB12CD", "Status of ticket AB13CD", "identifiers"),
        ("Book a table for Friday", "Book a table for Saturday", "dates"),
        ("What is the capital of France?", "What is the capital of Spain?", "entities"),
        ("Flights from Paris to Berlin", "Flights from Paris to Rome", "entities"),
    ],
)
def test_answer_changing_differences_are_caught(query: str, cached: str, reason: str) -> None:
    assert reason in mismatch(query, cached)


def test_double_negation_cancels() -> None:
    assert not facts("It is not true that I did not pay").negated
    assert facts("I did not pay").negated


def test_sentence_initial_capitals_are_not_entities() -> None:
    assert facts("Where is my card? Please help.").entities == frozenset()
