"""Labelled pair files, the calibration search, and the per-threshold rows of bench cache --pairs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench import cache_calibrate, cache_pairs
from bench.stats import wilson
from workloads import pairs
from workloads.pairs import Pair


def write(tmp_path: Path, *rows: object) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_reads_texts_and_conversations(tmp_path: Path) -> None:
    conversation = [{"role": "user", "content": "I have a gym plan."}, {"role": "user", "content": "Cancel it."}]
    path = write(
        tmp_path,
        {"a": "Is it open?", "b": "Is it closed?", "same_answer": False, "kind": "antonym"},
        "",
        {"a": conversation, "b": conversation, "same_answer": True},
    )
    first, second = pairs.read(path)
    assert first == Pair((("user", "Is it open?"),), (("user", "Is it closed?"),), False, "antonym")
    assert second.a[1] == ("user", "Cancel it.") and second.same_answer and second.kind == ""


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("{not json", "not a labelled pair"),
        ({"a": "x", "b": "y"}, "same_answer"),
        ({"a": "x", "b": "y", "same_answer": "yes"}, "same_answer"),
        ({"a": 3, "b": "y", "same_answer": True}, "a must be a text"),
        ({"a": [{"role": "robot", "content": "x"}], "b": "y", "same_answer": True}, "role"),
        ({"a": [{"role": "assistant", "content": "x"}], "b": "y", "same_answer": True}, "no user text"),
    ],
)
def test_a_bad_line_stops_with_its_number(tmp_path: Path, row: object, message: str) -> None:
    path = write(tmp_path, {"a": "x", "b": "y", "same_answer": True}, row)
    with pytest.raises(SystemExit, match=rf"pairs.jsonl:2: .*{message}"):
        pairs.read(path)


def test_an_empty_or_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no pairs"):
        pairs.read(write(tmp_path, ""))
    with pytest.raises(SystemExit, match="cannot read"):
        pairs.read(tmp_path / "absent.jsonl")


def scored(same: list[bool], similarity: list[float], verifier: list[float]) -> cache_calibrate.Scored:
    n = len(same)
    return cache_calibrate.Scored(
        same=np.array(same),
        exact=np.zeros(n, dtype=bool),
        eligible=np.ones(n, dtype=bool),
        similarity=np.array(similarity),
        verifier=np.array(verifier),
    )


def test_calibration_keeps_false_hits_under_the_bound_with_the_most_recall() -> None:
    # Two paraphrases and 200 traps; one trap scores like a paraphrase on both axes but lower.
    s = scored(
        [True, True, *([False] * 200)],
        [0.95, 0.80, 0.93, *([0.6] * 199)],
        [0.97, 0.90, 0.85, *([0.2] * 199)],
    )
    chosen = cache_calibrate.choose(s, 0.01, upper=False)
    assert chosen is not None
    assert chosen["recall"] == 1.0 and chosen["false_hit_rate"] == 0.0
    assert float(str(chosen["verifier_threshold"])) > 0.85  # the trap's score is refused
    # Bounding the interval's upper end is stricter: 200 traps cannot show a rate under 0.1 %.
    assert cache_calibrate.choose(s, 0.001, upper=True) is None


def test_an_exact_match_is_a_hit_whatever_the_thresholds() -> None:
    s = scored([True, False], [0.1, 0.99], [0.0, 0.99])
    s = cache_calibrate.Scored(s.same, np.array([True, False]), np.array([False, False]), s.similarity, s.verifier)
    assert list(cache_calibrate.hits(s, 0.99, 0.99)) == [True, False]


def outcome(same: bool, hit: bool, similarity: float, kind: str = "k") -> cache_pairs.Outcome:
    pair = Pair((("user", "a"),), (("user", "b"),), same, kind)
    return cache_pairs.Outcome(pair, hit, similarity, None, "", 0.01)


def test_rows_derive_each_threshold_from_the_lowest_lookup() -> None:
    outcomes = [outcome(True, True, 0.95), outcome(True, True, 0.86), outcome(True, False, 0.99),
                outcome(False, True, 0.88, "trap"), outcome(False, False, 0.97, "trap")]  # fmt: skip
    low, high = cache_pairs.row(outcomes, 0.85), cache_pairs.row(outcomes, 0.9)
    assert (low["recall"], low["false_hit_rate"], low["precision"]) == (round(2 / 3, 4), 0.5, round(2 / 3, 4))
    assert (high["recall"], high["false_hit_rate"], high["precision"]) == (round(1 / 3, 4), 0.0, 1.0)
    assert high["false_hit_ci95"] == wilson(0, 2)
    assert cache_pairs.by_kind(outcomes, 0.85)["different:trap"] == {"n": 2, "hit_rate": 0.5}


def test_wilson_interval() -> None:
    assert wilson(0, 0) is None
    low, high = wilson(0, 300) or [1.0, 0.0]
    assert low == 0.0 and 0.01 < high < 0.02
    low, high = wilson(50, 100) or [0.0, 0.0]
    assert low < 0.5 < high
