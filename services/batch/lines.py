"""OpenAI batch input lines -> costmesh requests, checked one line at a time.

A line is {"custom_id": "...", "method": "POST", "url": "/v1/chat/completions", "body": {...}} with an
OpenAI chat-completions body. A bad line becomes that line's error result; it never fails the batch
(vLLM's run_batch aborts the whole run on one bad line, so lines are checked here before anything runs).
"""

from __future__ import annotations

import json
import re
from typing import Any

from costmesh.v1 import common_pb2, orchestrator_pb2
from services.orchestrator.validation import validate

CHAT_URL = "/v1/chat/completions"
ROLES = {
    "system": common_pb2.ROLE_SYSTEM,
    "developer": common_pb2.ROLE_SYSTEM,
    "user": common_pb2.ROLE_USER,
    "assistant": common_pb2.ROLE_ASSISTANT,
}


class BadLine(ValueError):
    """Why a line cannot run; the message goes into the line's error result."""


def _content(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content parts: only text is supported
        texts = []
        for part in value:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise BadLine(f"{where}: only text content parts are supported")
            texts.append(part["text"])
        return "".join(texts)
    raise BadLine(f"{where}: content must be a string or a list of text parts")


def _sampling(body: dict[str, Any]) -> common_pb2.SamplingParams:
    sampling = common_pb2.SamplingParams()
    try:
        if body.get("temperature") is not None:
            sampling.temperature = float(body["temperature"])
        if body.get("top_p") is not None:
            sampling.top_p = float(body["top_p"])
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        if max_tokens is not None:
            sampling.max_tokens = int(max_tokens)
        if body.get("seed") is not None:
            sampling.seed = int(body["seed"])
    except (TypeError, ValueError) as e:
        raise BadLine(f"body: bad sampling parameter: {e}") from None
    stop = body.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise BadLine("body.stop must be a string or a list of strings")
        sampling.stop.extend(stops)
    return sampling


def _response_format(body: dict[str, Any]) -> str:
    fmt = body.get("response_format")
    if fmt is None or fmt == {"type": "text"}:
        return ""
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        if isinstance(schema, dict):
            return json.dumps(schema)
    raise BadLine("body.response_format: only {'type': 'json_schema', 'json_schema': {'schema': {...}}} is supported")


def parse_line(line: str, tenant: str) -> tuple[str, orchestrator_pb2.CompletionRequest]:
    """(custom_id, request). Raises BadLine with the reason; the custom_id is recovered where possible."""
    try:
        data = json.loads(line)
    except ValueError as e:
        raise BadLine(f"not JSON: {e}") from None
    if not isinstance(data, dict):
        raise BadLine("a line must be a JSON object")
    custom_id = data.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise BadLine("custom_id must be a non-empty string")
    if data.get("method", "POST") != "POST" or data.get("url", CHAT_URL) != CHAT_URL:
        raise BadLine(f"only POST {CHAT_URL} lines are supported")
    body = data.get("body")
    if not isinstance(body, dict):
        raise BadLine("body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadLine("body.messages must be a non-empty list")
    request = orchestrator_pb2.CompletionRequest(
        tenant=tenant, request_id=custom_id, sampling=_sampling(body), response_format=_response_format(body)
    )
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise BadLine(f"body.messages[{i}].role must be one of {sorted(ROLES)}")
        request.messages.append(
            common_pb2.Message(
                role=ROLES[message["role"]], content=_content(message.get("content"), f"body.messages[{i}]")
            )
        )
    if isinstance(body.get("model"), str):
        request.metadata["model"] = body["model"]
    check_request(request)
    return custom_id, request


def check_request(request: orchestrator_pb2.CompletionRequest) -> None:
    """The real-time lane's own checks, so a request that would be refused there fails here, per line."""
    try:
        validate(request)
    except Exception as e:
        raise BadLine(str(e)) from None


_CUSTOM_ID = re.compile(r'"custom_id"\s*:\s*"((?:[^"\\]|\\.)*)"')


def custom_id_of(line: str) -> str:
    """The custom_id of a line that failed to parse, if it has one, so its error result can be matched
    to the input; found even in a truncated line."""
    try:
        value = json.loads(line).get("custom_id")
    except (ValueError, AttributeError):
        found = _CUSTOM_ID.search(line)
        return json.loads(f'"{found.group(1)}"') if found else ""
    return value if isinstance(value, str) else ""
