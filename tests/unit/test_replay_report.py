import json
from pathlib import Path

import pytest

from bench.replay import Item, correct, from_file, mixed_workload, rag, record, request, support
from bench.report import main as report_main
from bench.report import summarize
from costmesh.v1 import common_pb2, orchestrator_pb2


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
    assert len(items) == 40 and {i.kind for i in items} == {"capital", "intent", "add", "multiply", "mmlu"}
    assert all(i.gold and i.grader in ("choice", "number", "contains") for i in items)
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


def test_provider_label_comes_from_the_responses_not_the_replay_environment() -> None:
    local = [
        row(0, "miss", "small", 0.1, 1.0, {}, model="smollm2-135m-instruct", price_model="gpt-4o-mini"),
        row(1, "exact", "small", 0.0, 1.0, {}, model="smollm2-135m-instruct", price_model="cache"),
        row(2, "miss", "large", 0.8, 1.0, {}, model="qwen2.5-coder-1.5b-instruct", price_model="gpt-4o"),
    ]
    label = summarize({**META, "tiers": "OpenAI gpt-4o-mini / gpt-4o"}, local, None)["tiers"]
    assert label == (
        "local stand-ins qwen2.5-coder-1.5b-instruct priced as gpt-4o / smollm2-135m-instruct priced as gpt-4o-mini"
    )
    openai = [
        row(0, "miss", "small", 0.1, 1.0, {}, model="gpt-4o-mini-2024-07-18", price_model="gpt-4o-mini"),
        row(1, "miss", "large", 0.8, 1.0, {}, model="gpt-4o-2024-08-06", price_model="gpt-4o"),
    ]
    assert summarize(META, openai, None)["tiers"] == "OpenAI gpt-4o / gpt-4o-mini"
    # A run recorded before responses carried price_model keeps its own label.
    assert summarize(META, ROWS, None)["tiers"] == "local stand-ins"


def test_record_keeps_the_model_and_the_price_row() -> None:
    response = orchestrator_pb2.CompletionResponse(
        model="smollm2-135m-instruct", cost=common_pb2.CostReport(price_model="gpt-4o-mini")
    )
    recorded = record(Item(messages=[("user", "hi")]), response, 0.1)
    assert recorded["model"] == "smollm2-135m-instruct" and recorded["price_model"] == "gpt-4o-mini"
