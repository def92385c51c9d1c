import pytest

from costmesh.v1 import common_pb2, orchestrator_pb2
from services.common.errors import InvalidInput
from services.common.requests import validate
from services.orchestrator.prompt import assemble

SYSTEM = common_pb2.ROLE_SYSTEM
USER = common_pb2.ROLE_USER
ASSISTANT = common_pb2.ROLE_ASSISTANT


def msg(role: int, content: str) -> common_pb2.Message:
    return common_pb2.Message(role=role, content=content)  # type: ignore[arg-type]


def test_static_content_first_then_history_then_question() -> None:
    messages = [msg(SYSTEM, "You are a support bot."), msg(USER, "hi"), msg(ASSISTANT, "hello"), msg(USER, "why?")]
    docs = [
        common_pb2.Document(id="c1", text="retrieved", kind=common_pb2.DOCUMENT_KIND_CONTEXT),
        common_pb2.Document(id="f1", text="policy", kind=common_pb2.DOCUMENT_KIND_FIXED),
        common_pb2.Document(id="e1", text="Q: a A: b", kind=common_pb2.DOCUMENT_KIND_EXAMPLE),
    ]
    out = assemble(messages, docs)
    assert [m.role for m in out] == [SYSTEM, SYSTEM, USER, ASSISTANT, USER]
    block = out[1].content
    # Fixed documents, then examples, then retrieved context: the most static first.
    assert block.index("policy") < block.index("Q: a") < block.index("retrieved")
    assert out[-1].content == "why?"


def test_documents_emptied_by_compression_are_left_out() -> None:
    docs = [
        common_pb2.Document(id="e1", text="Q: a\nA: b", kind=common_pb2.DOCUMENT_KIND_EXAMPLE),
        common_pb2.Document(id="e2", text="", kind=common_pb2.DOCUMENT_KIND_EXAMPLE),
    ]
    block = assemble([msg(USER, "q")], docs)[0].content
    assert "e1" in block and "e2" not in block


def test_assembly_is_byte_stable() -> None:
    messages = [msg(SYSTEM, "s"), msg(USER, "q")]
    docs = [common_pb2.Document(id="f", text="fixed text", kind=common_pb2.DOCUMENT_KIND_FIXED)]
    assert [m.SerializeToString() for m in assemble(messages, docs)] == [
        m.SerializeToString() for m in assemble(messages, docs)
    ]


def request(**overrides: object) -> orchestrator_pb2.CompletionRequest:
    r = orchestrator_pb2.CompletionRequest(tenant="acme", messages=[msg(USER, "hello?")])
    for name, value in overrides.items():
        if name == "messages":
            del r.messages[:]
            r.messages.extend(value)  # type: ignore[arg-type]
        else:
            setattr(r, name, value)
    return r


def test_valid_request_passes() -> None:
    validate(request())


@pytest.mark.parametrize(
    ("overrides", "message_part"),
    [
        ({"tenant": ""}, "tenant"),
        ({"tenant": "a b"}, "tenant"),
        ({"messages": []}, "messages must not be empty"),
        ({"messages": [msg(USER, "q"), msg(ASSISTANT, "a")]}, "last message"),
        ({"messages": [common_pb2.Message(content="no role")]}, "role"),
        ({"messages": [msg(USER, "   ")]}, "empty"),
    ],
)
def test_invalid_requests_are_rejected_with_a_reason(overrides: dict[str, object], message_part: str) -> None:
    with pytest.raises(InvalidInput, match=message_part):
        validate(request(**overrides))


def test_sampling_ranges_checked() -> None:
    r = request()
    r.sampling.temperature = 3.0
    with pytest.raises(InvalidInput, match="temperature"):
        validate(r)
    r = request()
    r.cache.similarity_threshold = 1.5
    with pytest.raises(InvalidInput, match="similarity_threshold"):
        validate(r)


@pytest.mark.parametrize("value", [float("nan"), -0.1, 5.0])
def test_the_verifier_cut_off_is_checked_before_the_cache_sees_it(value: float) -> None:
    r = request()
    r.cache.verifier_threshold = value
    with pytest.raises(InvalidInput, match=r"cache\.verifier_threshold"):
        validate(r)
