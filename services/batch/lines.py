"""OpenAI batch input lines -> costmesh requests, checked one line at a time.

A line is {"custom_id": "...", "method": "POST", "url": "/v1/chat/completions", "body": {...}} with an
OpenAI chat-completions body, or the same with "url": "/v1/embeddings" and an embeddings body. A bad line
becomes that line's error result; it never fails the batch (vLLM's run_batch aborts the whole run on one bad
line, so lines are checked here before anything runs).
"""

from __future__ import annotations

import json
import re

from costmesh.v1 import orchestrator_pb2
from services.common.openai_batch import CHAT_URL, EMBEDDINGS_URL
from services.common.openai_embeddings import embeddings_request
from services.common.openai_wire import WireError, chat_request
from services.common.requests import validate

Request = orchestrator_pb2.CompletionRequest | orchestrator_pb2.EmbeddingsRequest
# A bad line's reason; the same error the gateway answers 400 with for the same body.
BadLine = WireError


def parse_line(line: str, tenant: str, endpoint: str = "") -> tuple[str, Request]:
    """(custom_id, request). Raises BadLine with the reason; the custom_id is recovered where possible.
    With an endpoint, a line naming another url is refused."""
    try:
        data = json.loads(line)
    except (ValueError, RecursionError) as e:
        raise BadLine(f"not JSON: {e}") from None
    if not isinstance(data, dict):
        raise BadLine("a line must be a JSON object")
    custom_id = data.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id or not printable(custom_id):
        raise BadLine("custom_id must be a non-empty string of valid Unicode")
    url = data.get("url", CHAT_URL)
    if data.get("method", "POST") != "POST" or url not in (CHAT_URL, EMBEDDINGS_URL):
        raise BadLine(f"only POST {CHAT_URL} and POST {EMBEDDINGS_URL} lines are supported")
    if endpoint and url != endpoint:
        raise BadLine(f"the line's url {url!r} differs from the batch's endpoint {endpoint!r}")
    if url == EMBEDDINGS_URL:
        embeddings, _ = embeddings_request(
            data.get("body"), tenant, strict_model=False
        )  # batch output is written as floats
        embeddings.request_id = custom_id
        return custom_id, embeddings
    request = chat_request(data.get("body"), tenant, strict_model=False)
    request.request_id = custom_id
    check_request(request)
    return custom_id, request


def check_request(request: orchestrator_pb2.CompletionRequest) -> None:
    """The real-time lane's own checks, so a request that would be refused there fails here, per line."""
    try:
        validate(request)
    except Exception as e:
        raise BadLine(str(e)) from None


_CUSTOM_ID = re.compile(r'"custom_id"\s*:\s*"((?:[^"\\]|\\.)*)"')


def printable(text: str) -> bool:
    """Encodable as UTF-8, as protobuf strings must be: JSON may carry lone surrogates."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def custom_id_of(line: str) -> str:
    """The custom_id of a line that failed to parse, if it has one, so its error result can be matched
    to the input; found even in a truncated line. Lone surrogates become "?"."""
    try:
        value = json.loads(line).get("custom_id")
    except (ValueError, AttributeError, RecursionError):
        found = _CUSTOM_ID.search(line)
        try:
            value = json.loads(f'"{found.group(1)}"') if found else ""
        except ValueError:
            value = ""
    return value.encode(errors="replace").decode() if isinstance(value, str) else ""
