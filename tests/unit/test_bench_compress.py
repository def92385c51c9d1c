import math

import pytest

from bench.compress import input_usd, paired_ci95, predicted
from services.inference.domain import Usage


def rows(pairs: list[tuple[bool, bool]]) -> list[dict[str, object]]:
    return [
        {"gold": "a", "full_answer": "a" if full else "b", "compressed_answer": "a" if short else "b"}
        for full, short in pairs
    ]


def test_paired_interval_is_zero_when_both_prompts_agree_and_wide_when_they_do_not() -> None:
    assert paired_ci95(rows([(True, True), (False, False)] * 10)) == 0.0
    # Differences +1, -1, 0, 0: standard deviation sqrt(2/3), so 1.96 * 0.8165 / sqrt(4).
    assert paired_ci95(rows([(False, True), (True, False), (True, True), (False, False)])) == pytest.approx(
        0.8001, 1e-3
    )
    assert math.isnan(paired_ci95(rows([(True, True)])))


def test_cached_prompt_tokens_are_priced_at_the_cached_rate() -> None:
    # gpt-4o: $2.50 per million input tokens, $1.25 cached.
    assert input_usd(Usage(1000, 7, 0)) == pytest.approx(0.0025)
    assert input_usd(Usage(1000, 7, 1000)) == pytest.approx(0.00125)


def test_answers_map_to_labels() -> None:
    labels = ["card_arrival", "card_arrival_late", "refund"]
    assert predicted("card_arrival.", labels) == "card_arrival"
    assert predicted("It is card_arrival_late", labels) == "card_arrival_late"
    assert predicted("refu", labels) == "refund"  # cut by max_tokens
    assert predicted("something else", labels) == "something else"
