"""Outcome records: grading each tier's answer, the label, the file round trip, workload files."""

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from services.inference.domain import Completion, Usage
from training import outcomes


def completion(text: str, first_alternatives: tuple[tuple[str, float], ...] = ()) -> Completion:
    return Completion(
        text, "m", "stop", Usage(40, 3), logprobs=(("x", -0.2),), top_logprobs=(first_alternatives or (("x", -0.2),),)
    )


def test_choice_is_graded_by_the_text_then_by_the_first_tokens_letters() -> None:
    task = outcomes.Task([("user", "q")], "C", "choice", 8)
    assert outcomes.answer(task, completion("The answer is C."), 0.1).correct
    assert outcomes.answer(task, completion("To determine", (("To", -0.1), (" C", -1.0))), 0.1).correct
    assert not outcomes.answer(task, completion("B"), 0.1).correct


def test_label_and_round_trip(tmp_path: Path) -> None:
    task = outcomes.Task([("user", "What is 2 + 2?")], "4", "number", 16, "add")
    small = outcomes.answer(task, completion("5"), 0.1)
    large = outcomes.answer(task, completion("4"), 2.0)
    record = outcomes.Outcome(task, small, large, {"small": "s", "large": "l"})
    assert not record.cheap_good  # the large tier was right and the small one not
    both_wrong = outcomes.Outcome(task, small, small, {})
    assert both_wrong.cheap_good  # the cheap answer is as good as a wrong large one
    path = tmp_path / "o.jsonl"
    path.write_text(json.dumps(asdict(record)) + "\n")
    [loaded] = outcomes.load(path)
    assert loaded == record and loaded.small.signals().tokens == 1
    assert outcomes.already_recorded(path) == {outcomes.key(task)}
    assert record.large.cost_usd("large") > record.small.cost_usd("small") > 0


def test_workload_files_need_gold_and_a_known_grader(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    line = {"messages": [{"role": "user", "content": "2+2?"}], "gold": "4", "grader": "number", "max_tokens": 8}
    path.write_text(json.dumps(line) + "\n")
    [task] = outcomes.file_tasks(path)
    assert task.messages == [("user", "2+2?")] and task.max_tokens == 8 and task.topic == "w"
    path.write_text(json.dumps({**line, "gold": ""}) + "\n")
    with pytest.raises(SystemExit, match="gold"):
        outcomes.file_tasks(path)
