"""Checks on an incoming CompletionRequest, before any stage runs: the orchestrator's (the real-time lane)
and the batch lane's (each line at submission), so a request refused by one is refused by the other."""

from __future__ import annotations

from collections.abc import Sequence

from costmesh.v1 import common_pb2, orchestrator_pb2
from services.common.contracts import ROLE_NAMES, role_pairs
from services.common.errors import InvalidInput
from services.common.tasks import check_name
from services.common.tokens import count_messages, count_text
from services.common.validation import (
    check_cache_control,
    check_documents,
    check_enum,
    check_sampling,
    check_schema,
    check_tenant,
)

MAX_MESSAGES = 1000
DEFAULT_MAX_PROMPT_TOKENS = 32_000
# No o200k token is shorter than one byte, so a prompt of at most `cap` bytes is within the cap uncounted.
# Past this many bytes per token allowed, it is refused uncounted: real text runs 3-5 bytes a token.
MAX_BYTES_PER_TOKEN = 16
_MESSAGE_OVERHEAD_TOKENS = 8  # role and separators (tokens.py counts 4 + the role's); 3 for the reply


def validate(request: orchestrator_pb2.CompletionRequest, max_prompt_tokens: int = DEFAULT_MAX_PROMPT_TOKENS) -> None:
    """Raises InvalidInput naming the first bad field. The size check comes first: it is the cheap one
    that keeps a multi-megabyte prompt from reaching anything slower. ``max_prompt_tokens`` is
    COSTMESH_ORCHESTRATOR_MAX_PROMPT_TOKENS in the orchestrator."""
    check_prompt_size(request, max_prompt_tokens)
    check_tenant(request.tenant)
    check_messages(request.messages)
    check_documents(request.documents)
    check_sampling(request.sampling)
    check_cache_control(request.cache, "cache.")
    check_enum(request.tier, common_pb2.Tier.DESCRIPTOR, "tier")
    check_enum(request.lane, common_pb2.Lane.DESCRIPTOR, "lane")
    if request.response_format:
        check_schema(request.response_format)
    if request.task:
        check_name(request.task)


def check_messages(messages: Sequence[common_pb2.Message]) -> None:
    if not messages:
        raise InvalidInput("messages must not be empty")
    if len(messages) > MAX_MESSAGES:
        raise InvalidInput(f"at most {MAX_MESSAGES} messages per request")
    role_pairs(messages)  # every message has a role
    if messages[-1].role != common_pb2.ROLE_USER:
        raise InvalidInput("the last message must be the user's (ROLE_USER)")
    if not messages[-1].content.strip():
        raise InvalidInput("the user's message is empty")


def check_prompt_size(request: orchestrator_pb2.CompletionRequest, max_tokens: int) -> None:
    """The prompt (messages and documents) within ``max_tokens`` o200k tokens. Bytes are counted first;
    tokens only when the bytes could be over the cap and are not far over it."""
    texts = [m.content for m in request.messages] + [d.text for d in request.documents]
    size = sum(len(t.encode()) for t in texts)
    if size + _MESSAGE_OVERHEAD_TOKENS * (len(request.messages) + 1) <= max_tokens:
        return
    cap = "COSTMESH_ORCHESTRATOR_MAX_PROMPT_TOKENS"
    if size > MAX_BYTES_PER_TOKEN * max_tokens:
        most = MAX_BYTES_PER_TOKEN * max_tokens
        raise InvalidInput(f"the prompt is {size} bytes, over the {max_tokens}-token cap ({cap}): {most} bytes at most")
    pairs = [(ROLE_NAMES.get(m.role, "user"), m.content) for m in request.messages]
    tokens = count_messages(pairs) + sum(count_text(d.text) for d in request.documents)
    if tokens > max_tokens:
        raise InvalidInput(f"the prompt is {tokens} tokens, over the {max_tokens}-token cap ({cap})")
