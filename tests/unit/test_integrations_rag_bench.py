"""bench/rag_compress.py's pure parts: the gold option's text, the prompt, and the summary's figures."""

from __future__ import annotations

import argparse

from bench.rag_compress import Prompted, answer_text, prompt, summary
from bench.replay import Item

ITEM = Item(
    [("system", "Answer from the context."), ("user", "Which gas?\nA. Argon\nB. Oxygen\nC. Neon\nD. Xenon\nAnswer:")],
    gold="B",
    max_tokens=4,
    context=("Which gas do we breathe? The answer is: Oxygen.", "Noble gases are inert."),
)


def test_the_gold_options_text_is_read_from_the_prompt() -> None:
    assert answer_text(ITEM) == "Oxygen"
    assert answer_text(Item([("user", "no options")], gold="A")) == ""


def test_the_prompt_puts_the_passages_before_the_question() -> None:
    [(role, system), (_, user)] = prompt(ITEM, ["one", "two"])
    assert (role, system) == ("system", "Answer from the context.")
    assert user.startswith("Context:\none\n\ntwo\n\nQuestion: Which gas?")


def test_the_summary_adds_up_tokens_dollars_and_accuracy_with_intervals() -> None:
    full = Prompted(True, 100, 130, 140, 0.000325)
    short = Prompted(False, 40, 70, 75, 0.000175)
    rows = [(full, short, True, 0.5), (full, full, False, 1.5)]
    got = summary(rows, argparse.Namespace(passages=12, model="costmesh-large"))
    assert got["summary"] is True and got["questions"] == 2
    assert (got["context_tokens_before"], got["context_tokens_after"]) == (200, 140)
    assert got["input_saving"] == round(1 - 0.0005 / 0.00065, 4)
    assert (got["accuracy_before"], got["accuracy_after"], got["accuracy_delta_points"]) == (1.0, 0.5, -50.0)
    assert got["answer_kept_rate"] == 0.5 and got["answer_kept_ci95"] is not None
    ci = got["accuracy_after_ci95"]
    assert isinstance(ci, list) and ci[0] < 0.5 < ci[1]
