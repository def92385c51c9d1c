import json

import pytest

from services.orchestrator.escalation import EscalationPolicy, confidence, judge, schema_problem

POLICY = EscalationPolicy()
SURE = [-0.05, -0.1, -0.02]  # mean token probability ~0.95


@pytest.mark.parametrize(
    ("answer", "finish", "logprobs", "reason"),
    [
        ("Paris is the capital of France.", "stop", SURE, ""),
        ("   ", "stop", SURE, "empty"),
        ("Paris is the capital", "length", SURE, "truncated"),
        ("I'm sorry, I can't help with that.", "stop", SURE, "refusal"),
        ("As an AI language model I have no opinion.", "stop", SURE, "refusal"),
        ("I'm not sure, maybe Lyon.", "stop", SURE, "hedging"),
        ("Lyon.", "stop", [-1.2, -0.9, -1.5], "low_confidence"),  # mean prob ~0.3
        ("Paris, obviously.", "stop", [-0.01, -12.0, -0.01, -0.01, -0.01, -0.01, -0.01, -0.01], "low_confidence"),
        ("Paris.", "stop", [], ""),  # no logprobs: no confidence check
    ],
)
def test_reasons(answer: str, finish: str, logprobs: list[float], reason: str) -> None:
    assert judge(answer, finish, logprobs, "", POLICY)[0] == reason


def test_format_checked_against_the_requested_schema() -> None:
    schema = json.dumps({"type": "object", "required": ["intent"], "properties": {"intent": {"type": "string"}}})
    assert schema_problem('{"intent": "card_lost"}', schema) == ""
    assert schema_problem('```json\n{"intent": "card_lost"}\n```', schema) == ""  # a fenced block is fine
    assert schema_problem("card_lost", schema).startswith("not JSON")
    assert "required property" in schema_problem('{"label": 3}', schema)
    assert judge('{"label": 3}', "stop", SURE, schema, POLICY)[0] == "format"


def test_confidence_is_the_geometric_mean_probability() -> None:
    assert confidence([]) is None
    assert confidence([-0.5, -1.5]) == pytest.approx(0.3679, abs=1e-4)


def test_checks_can_be_turned_off() -> None:
    lenient = EscalationPolicy(check_hedging=False, min_mean_token_prob=0.0, min_token_logprob=-100)
    assert judge("I'm not sure, maybe Lyon.", "stop", [-3.0], "", lenient) == ("", "")
