import json
from pathlib import Path

import pytest

from bench.replay import Item, correct, from_file, mixed_workload, rag, request, support
from bench.report import main as report_main
from bench.report import summarize
from costmesh.v1 import common_pb2


def row(
    index: int, cache: str, tier: str, cost: float, baseline: float, savings: dict[str, float], **extra: object
) -> dict[str, object]:
    return {
        "index": index,
        "latency_ms": 100.0 + index,
        "mesh_added_ms": 5.0 + index,
        "cache": cache,
        "tier": tier,
        "escalated": False,
        "cost_usd": cost,
        "baseline_cost_usd": baseline,
        "savings_by_intervention": savings,
        "correct": None,
        **extra,
    }


ROWS = [
    row(0, "miss", "small", 0.1, 1.0, {"routing": 0.95, "escalation": -0.05}, correct=True),
    row(1, "exact", "small", 0.0, 1.0, {"cache_exact": 1.0}, correct=True),
    row(2, "miss", "large", 0.8, 1.0, {"compression": 0.2}, correct=False, escalated=True),
    {"index": 3, "error": "UNAVAILABLE: down"},
]
META = {"run_id": "r1", "workload": "support", "tiers": "local stand-ins"}


def test_waterfall_adds_up_from_the_baseline_to_what_was_spent() -> None:
    report = summarize(META, ROWS, None)
    assert report["baseline_usd"] == pytest.approx(3.0) and report["cost_usd"] == pytest.approx(0.9)
    steps = report["waterfall_usd"]
    assert steps["cache_exact"] == pytest.approx(1.0) and steps["escalation"] == pytest.approx(-0.05)
    assert report["baseline_usd"] - sum(steps.values()) == pytest.approx(report["cost_usd"])
    assert report["saved_share"] == pytest.approx(0.7)
    assert report["errors"] == 1
    assert report["cache_hit_rate"]["exact"] == pytest.approx(1 / 3, abs=1e-4)
    assert report["escalation_rate"] == pytest.approx(0.5)  # of the two requests a model answered
    assert report["accuracy"] == pytest.approx(2 / 3, abs=1e-4)


def test_report_writes_json_and_html_with_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "run.json").write_text(json.dumps(META))
    (tmp_path / "requests.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS))
    assert report_main([str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "routed_small_share: " in printed and "small_tier_share: " in printed
    assert json.loads((tmp_path / "report.json").read_text())["run_id"] == "r1"
    page = (tmp_path / "report.html").read_text()
    assert page.count("<svg") == 2 and "Savings waterfall" in page


def test_workload_file_and_scoring(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    line = {"messages": [{"role": "user", "content": "2+2?"}], "gold": "4", "grader": "number"}
    path.write_text(json.dumps(line) + "\n")
    [item] = from_file(path)
    assert item.messages == [("user", "2+2?")] and item.gold == "4" and item.grader == "number"
    assert correct("The answer is 4.", item) is True and correct("5", item) is False
    path.write_text('{"messages": "nope"}\n')
    with pytest.raises(SystemExit, match=r"w\.jsonl:1"):
        from_file(path)
    path.write_text(json.dumps({**line, "grader": "vibes"}) + "\n")
    with pytest.raises(SystemExit, match="unknown grader"):
        from_file(path)
    choice = Item([("user", "q")], gold="B")
    assert correct("(B) because", choice) is True and correct("C", choice) is False
    assert correct("x", Item([("user", "q")])) is None


def test_mixed_workload_has_every_kind_with_gold_and_a_grader() -> None:
    items = mixed_workload(40, seed=3)
    assert len(items) == 40 and {i.kind for i in items} == {"intent", "add", "multiply", "mmlu"}
    assert all(i.gold and i.grader in ("choice", "number") for i in items)
    assert mixed_workload(40, seed=3) == items  # seeded


def test_support_stream_repeats_queries_like_a_faq() -> None:
    stream = [item.messages[-1][1] for item in support(60, seed=1)]
    assert len(stream) == 60 and len(set(stream)) < 60


def test_rag_prompts_carry_the_answering_passage_as_context() -> None:
    items = rag(5, seed=2)
    assert len(items) == 5
    for item in items:
        assert item.gold in "ABCD" and len(item.context) >= 2
        question = item.messages[-1][1]
        assert any(passage.startswith(question.split("\n")[0].strip()) for passage in item.context)
        sent = request(item, "t", "auto", False)
        assert [d.kind for d in sent.documents] == [common_pb2.DOCUMENT_KIND_CONTEXT] * len(item.context)
