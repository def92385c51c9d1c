"""OpenAI's chat-completions wire format <-> costmesh's protos: one translation for the HTTP gateway and
for the batch lane's input and output lines, so both accept and answer exactly the same bodies.

The format is the one the openai SDK sends and parses (openai-python's `types/chat`): messages with
string or text-part content, `max_tokens` or `max_completion_tokens`, `stop` as a string or a list,
`response_format` as text, json_object or json_schema. Unsupported features (tools, several choices,
images) are refused by name rather than dropped silently.
"""

from __future__ import annotations

import json
from typing import Any

from costmesh.v1 import common_pb2, orchestrator_pb2
from services.common.contracts import TIER_NAMES

ROLES = {
    "system": common_pb2.ROLE_SYSTEM,
    "developer": common_pb2.ROLE_SYSTEM,
    "user": common_pb2.ROLE_USER,
    "assistant": common_pb2.ROLE_ASSISTANT,
}
# The models costmesh serves: a tier alias each, and the router's choice.
MODELS = {
    "costmesh-auto": common_pb2.TIER_UNSPECIFIED,
    "costmesh-small": common_pb2.TIER_SMALL,
    "costmesh-large": common_pb2.TIER_LARGE,
}
UNSUPPORTED = ("tools", "tool_choice", "functions", "function_call", "audio", "modalities", "prediction")


class WireError(ValueError):
    """A body costmesh cannot run; the message names the field. `param` is OpenAI's error.param."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.code = code


def content(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content parts: only text is supported
        texts = []
        for part in value:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise WireError(f"{where}: only text content parts are supported", where)
            texts.append(part["text"])
        return "".join(texts)
    raise WireError(f"{where}: content must be a string or a list of text parts", where)


def sampling(body: dict[str, Any]) -> common_pb2.SamplingParams:
    out = common_pb2.SamplingParams()
    try:
        if body.get("temperature") is not None:
            out.temperature = float(body["temperature"])
        if body.get("top_p") is not None:
            out.top_p = float(body["top_p"])
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        if max_tokens is not None:
            if isinstance(max_tokens, bool) or int(max_tokens) != max_tokens or max_tokens < 1:
                raise ValueError(f"max_tokens must be a positive integer, got {max_tokens!r}")
            out.max_tokens = int(max_tokens)
        if body.get("seed") is not None:
            out.seed = int(body["seed"])
    except (TypeError, ValueError, OverflowError) as e:
        raise WireError(f"body: bad sampling parameter: {e}") from None
    stop = body.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops) or len(stops) > 4:
            raise WireError("body.stop must be a string or a list of at most 4 strings", "stop")
        out.stop.extend(stops)
    return out


def response_format(body: dict[str, Any]) -> str:
    """The JSON schema the answer must satisfy ("" for text); json_object is any JSON object."""
    fmt = body.get("response_format")
    if fmt is None or fmt == {"type": "text"}:
        return ""
    if isinstance(fmt, dict) and fmt.get("type") == "json_object":
        return json.dumps({"type": "object"})
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        if isinstance(schema, dict):
            return json.dumps(schema)
    raise WireError(
        "body.response_format must be {'type': 'text'}, {'type': 'json_object'} or "
        "{'type': 'json_schema', 'json_schema': {'schema': {...}}}",
        "response_format",
    )


def tier_of(model: Any, strict: bool) -> common_pb2.Tier.ValueType:
    """The tier a model name asks for. Strict (the gateway): an unknown model is refused; lenient (batch
    lines written for another provider): it leaves the choice to the router."""
    if isinstance(model, str) and model in MODELS:
        return MODELS[model]
    if strict:
        raise WireError(
            f"The model {model!r} does not exist; costmesh serves {', '.join(MODELS)}", "model", "model_not_found"
        )
    return common_pb2.TIER_UNSPECIFIED


def chat_request(body: Any, tenant: str = "", strict_model: bool = True) -> orchestrator_pb2.CompletionRequest:
    """A /v1/chat/completions body as a CompletionRequest (its model picks the tier). Raises WireError."""
    try:
        return _chat_request(body, tenant, strict_model)
    except UnicodeEncodeError:  # JSON may carry lone surrogates ("\ud800"); protobuf strings cannot
        raise WireError("the body's text must be valid Unicode (it has a lone surrogate)") from None


def _chat_request(body: Any, tenant: str, strict_model: bool) -> orchestrator_pb2.CompletionRequest:
    if not isinstance(body, dict):
        raise WireError("the body must be a JSON object")
    for name in UNSUPPORTED:
        if body.get(name) not in (None, [], {}):
            raise WireError(f"{name} is not supported by costmesh", name)
    if body.get("n") not in (None, 1):
        raise WireError("only n=1 is supported", "n")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise WireError("body.messages must be a non-empty list", "messages")
    request = orchestrator_pb2.CompletionRequest(
        tenant=tenant,
        sampling=sampling(body),
        response_format=response_format(body),
        tier=tier_of(body.get("model"), strict_model),
    )
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise WireError(f"body.messages[{i}].role must be one of {sorted(ROLES)}", f"messages[{i}].role")
        request.messages.append(
            common_pb2.Message(role=ROLES[message["role"]], content=content(message.get("content"), f"messages[{i}]"))
        )
    if isinstance(body.get("model"), str):
        request.metadata["model"] = body["model"]
    if isinstance(body.get("user"), str):
        request.metadata["user"] = body["user"][:256]
    return request


def cache_kind(response: orchestrator_pb2.CompletionResponse) -> str:
    kind = common_pb2.CacheHitKind.Name(response.cache.kind).removeprefix("CACHE_HIT_KIND_").lower()
    return "miss" if kind in ("miss", "unspecified") else kind


def finish_reason(response: orchestrator_pb2.CompletionResponse) -> str:
    return "length" if response.finish_reason == "length" else "stop"


def usage(response: orchestrator_pb2.CompletionResponse) -> dict[str, Any]:
    u = response.usage
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens + u.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_prompt_tokens},
    }


def decisions(response: orchestrator_pb2.CompletionResponse) -> dict[str, Any]:
    """costmesh's side of the answer, beside OpenAI's fields (SDKs keep unknown fields)."""
    return {
        "cache": cache_kind(response),
        "tier": TIER_NAMES.get(response.route.tier, ""),
        "escalated": response.route.escalated,
        "task": response.route.task,
        "student": response.route.student,
        "cost_usd": response.cost.cost_usd,
        "baseline_cost_usd": response.cost.baseline_cost_usd,
        "savings_by_intervention": dict(response.cost.savings_by_intervention),
        "trace_id": response.trace_id,
    }


def chat_completion(response: orchestrator_pb2.CompletionResponse, created: int) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{response.request_id}",
        "object": "chat.completion",
        "created": created,
        "model": response.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": response.answer, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason(response),
            }
        ],
        "usage": usage(response),
        "costmesh": decisions(response),
    }
