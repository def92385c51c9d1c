"""Graders read an answer the way a person would, by the kind of gold answer."""

from __future__ import annotations

import pytest

from workloads.graders import chosen_letter, grade


@pytest.mark.parametrize(
    ("answer", "letter"),
    [
        ("B", "B"),
        ("B. Paris", "B"),
        ("(C) because it is", "C"),
        ("Answer: D", "D"),
        ("The answer is A.", "A"),
        ("The correct option is (B)", "B"),
        ("A lot of people think so", ""),  # the article "A" is not a choice
        ("I think so", ""),
    ],
)
def test_chosen_letter(answer: str, letter: str) -> None:
    assert chosen_letter(answer) == letter


def test_letter_by_top_logprobs_when_the_text_names_none() -> None:
    assert chosen_letter("To determine", [("To", -0.2), (" C", -1.5), ("B", -2.0)]) == "C"
    assert chosen_letter("B", [(" C", -0.1)]) == "B"  # the text wins when it names one


def test_number_grader_reads_the_result_not_the_prefix() -> None:
    assert grade("The answer is 18.", "18", "number")
    assert grade("17 * 23 = 391", "391", "number")
    assert not grade("17 * 23 = 381", "391", "number")
    assert grade("1,234", "1234", "number") and not grade("no idea", "4", "number")


def test_exact_and_contains() -> None:
    assert grade(" Paris. ", "paris", "exact") and not grade("Paris, France", "Paris", "exact")
    assert grade("It is Paris, France", "Paris", "contains") and not grade("Parisian", "Paris", "contains")
    with pytest.raises(ValueError, match="unknown grader"):
        grade("x", "y", "vibes")
