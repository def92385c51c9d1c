import json

import pytest

from costmesh.v1 import batch_pb2, common_pb2, orchestrator_pb2
from services.batch.api import normalize
from services.batch.lines import BadLine, custom_id_of, parse_line
from services.batch.servicer import priority_of
from services.common.errors import InvalidInput


def line(custom_id: str = "r1", **body: object) -> str:
    payload = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], **body}
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": payload})


def test_a_chat_line_becomes_the_real_time_request_message() -> None:
    custom_id, request = parse_line(
        line(
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Hello "}, {"type": "text", "text": "there"}]},
            ],
            max_tokens=32,
            temperature=0.2,
            stop="\n",
        ),
        "acme",
    )
    assert custom_id == "r1"
    assert request.tenant == "acme" and request.request_id == "r1"
    assert [(m.role, m.content) for m in request.messages] == [
        (common_pb2.ROLE_SYSTEM, "Be brief."),
        (common_pb2.ROLE_USER, "Hello there"),
    ]
    assert request.sampling.max_tokens == 32 and request.sampling.temperature == pytest.approx(0.2)
    assert list(request.sampling.stop) == ["\n"]
    assert request.metadata["model"] == "gpt-4o-mini"


def test_json_schema_response_format_is_kept() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    _, request = parse_line(line(response_format={"type": "json_schema", "json_schema": {"schema": schema}}), "t")
    assert json.loads(request.response_format) == schema


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        (json.dumps({"custom_id": "x", "url": "/v1/files", "body": {}}), "only POST /v1/chat/completions"),
        (json.dumps({"custom_id": "x", "url": "/v1/embeddings", "body": {"model": "m"}}), "input"),
        (json.dumps({"custom_id": "x", "url": "/v1/embeddings", "body": {"model": "m", "input": [""]}}), "empty"),
        (json.dumps({"url": "/v1/chat/completions", "body": {}}), "custom_id"),
        (line(messages=[]), "non-empty list"),
        (line(messages=[{"role": "robot", "content": "x"}]), "role must be one of"),
        (line(messages=[{"role": "user", "content": [{"type": "image_url"}]}]), "only text content parts"),
        (line(messages=[{"role": "assistant", "content": "x"}]), "last message must be the user's"),
        (line(max_tokens="many"), "bad sampling parameter"),
        (line(temperature=9), "temperature"),
        (line(response_format={"type": "grammar"}), "response_format"),
        (line(tools=[{"type": "function"}]), "tools is not supported"),
        (line(n=2), "only n=1"),
    ],
)
def test_bad_lines_say_why(text: str, reason: str) -> None:
    with pytest.raises(BadLine, match=reason):
        parse_line(text, "t")


def test_custom_id_is_recovered_from_a_bad_line_when_present() -> None:
    assert custom_id_of(line("keep-me", messages=[])) == "keep-me"
    assert custom_id_of("{broken") == ""
    assert custom_id_of('{"custom_id": "cut-\\"off", "body": ') == 'cut-"off'  # a truncated line


def test_request_items_get_the_batch_tenant_and_are_validated() -> None:
    request = orchestrator_pb2.CompletionRequest(messages=[common_pb2.Message(role=common_pb2.ROLE_USER, content="q")])
    item = normalize("acme", batch_pb2.BatchItem(custom_id="a", request=request))
    assert item.request.tenant == "acme" and item.request.request_id == "a"
    other = orchestrator_pb2.CompletionRequest()
    other.CopyFrom(request)
    other.tenant = "someone-else"
    with pytest.raises(BadLine, match="differs from the batch"):
        normalize("acme", batch_pb2.BatchItem(custom_id="b", request=other))
    with pytest.raises(BadLine, match="needs a request"):
        normalize("acme", batch_pb2.BatchItem(custom_id="c"))


def test_lone_surrogates_and_deep_nesting_are_the_lines_own_errors() -> None:
    surrogate_id = json.dumps({"custom_id": "id-\ud800", "body": {"messages": [{"role": "user", "content": "q"}]}})
    with pytest.raises(BadLine, match="valid Unicode"):
        parse_line(surrogate_id, "t")
    assert custom_id_of(surrogate_id) == "id-?"  # its error result can still carry (and encode) it
    surrogate_text = line(messages=[{"role": "user", "content": "bad \udfff"}])
    with pytest.raises(BadLine, match="valid Unicode"):
        parse_line(surrogate_text, "t")
    with pytest.raises(BadLine, match="not JSON"):
        parse_line("[" * 60_000, "t")


def test_priorities_map_from_the_proto_and_an_unknown_one_is_refused() -> None:
    assert priority_of(batch_pb2.BATCH_PRIORITY_UNSPECIFIED) == "normal"
    assert priority_of(batch_pb2.BATCH_PRIORITY_HIGH) == "high"
    assert priority_of(batch_pb2.BATCH_PRIORITY_LOW) == "low"
    with pytest.raises(InvalidInput, match="unknown priority"):
        priority_of(99)
