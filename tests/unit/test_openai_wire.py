"""The OpenAI wire translation, checked against the openai SDK's own response types."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.chat import ChatCompletion

from costmesh.v1 import batch_pb2, common_pb2, orchestrator_pb2
from services.common.openai_batch import batch_output_line
from services.common.openai_wire import WireError, chat_completion, chat_request


def body(**overrides: Any) -> dict[str, Any]:
    return {"model": "costmesh-auto", "messages": [{"role": "user", "content": "hi"}], **overrides}


def test_models_pick_the_tier() -> None:
    assert chat_request(body()).tier == common_pb2.TIER_UNSPECIFIED
    assert chat_request(body(model="costmesh-small")).tier == common_pb2.TIER_SMALL
    assert chat_request(body(model="costmesh-large")).tier == common_pb2.TIER_LARGE


def test_an_unknown_model_is_refused_by_the_gateway_and_routed_on_the_batch_lane() -> None:
    with pytest.raises(WireError) as refused:
        chat_request(body(model="gpt-4o"))
    assert refused.value.code == "model_not_found" and refused.value.param == "model"
    assert chat_request(body(model="gpt-4o"), strict_model=False).tier == common_pb2.TIER_UNSPECIFIED


def test_sampling_and_formats_are_carried() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    request = chat_request(
        body(
            max_completion_tokens=12,
            temperature=0.5,
            top_p=0.9,
            seed=7,
            stop="END",
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
            messages=[
                {"role": "developer", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            ],
        )
    )
    s = request.sampling
    assert (s.max_tokens, round(s.temperature, 2), round(s.top_p, 2), s.seed, list(s.stop)) == (
        12,
        0.5,
        0.9,
        7,
        ["END"],
    )
    assert json.loads(request.response_format) == schema
    assert [(m.role, m.content) for m in request.messages] == [
        (common_pb2.ROLE_SYSTEM, "be brief"),
        (common_pb2.ROLE_USER, "ab"),
    ]
    assert json.loads(chat_request(body(response_format={"type": "json_object"})).response_format) == {"type": "object"}


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"n": 2}, "only n=1"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools is not supported"),
        ({"messages": []}, "non-empty list"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "role must be one of"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "only text content"),
        ({"max_tokens": 0}, "positive integer"),
        ({"max_tokens": 1.5}, "positive integer"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "at most 4"),
        ({"response_format": {"type": "grammar"}}, "response_format"),
    ],
)
def test_bad_bodies_say_why(overrides: dict[str, Any], reason: str) -> None:
    with pytest.raises(WireError, match=reason):
        chat_request(body(**overrides))


def response(**overrides: Any) -> orchestrator_pb2.CompletionResponse:
    r = orchestrator_pb2.CompletionResponse(
        request_id="r1",
        answer="Paris.",
        model="smollm2",
        finish_reason="stop",
        usage=common_pb2.TokenUsage(prompt_tokens=10, completion_tokens=2, cached_prompt_tokens=4),
        trace_id="ab" * 16,
    )
    r.route.tier = common_pb2.TIER_SMALL
    r.cache.kind = common_pb2.CACHE_HIT_KIND_EXACT
    r.cost.cost_usd = 0.0
    r.cost.baseline_cost_usd = 0.001
    for name, value in overrides.items():
        setattr(r, name, value)
    return r


def test_a_completion_is_what_the_sdk_parses() -> None:
    parsed = ChatCompletion.model_validate(chat_completion(response(), 1700000000))
    assert parsed.choices[0].message.content == "Paris."
    assert parsed.choices[0].finish_reason == "stop"
    assert parsed.usage is not None and parsed.usage.total_tokens == 12
    assert parsed.usage.prompt_tokens_details is not None and parsed.usage.prompt_tokens_details.cached_tokens == 4
    extra = parsed.model_extra or {}
    assert extra["costmesh"]["cache"] == "exact" and extra["costmesh"]["tier"] == "small"


def test_batch_output_lines_carry_the_answer_or_the_error() -> None:
    ok = batch_output_line(batch_pb2.BatchResult(custom_id="a", index=0, response=response()))
    assert ok["error"] is None and ok["response"]["status_code"] == 200
    assert ChatCompletion.model_validate(ok["response"]["body"]).choices[0].message.content == "Paris."
    failed = batch_output_line(
        batch_pb2.BatchResult(
            custom_id="b", index=1, error=batch_pb2.BatchError(code="INVALID_ARGUMENT", message="bad")
        )
    )
    assert failed["response"] is None and failed["error"] == {"code": "INVALID_ARGUMENT", "message": "bad"}
