"""Checks on an incoming CompletionRequest, before any stage runs."""

from __future__ import annotations

import json

import jsonschema

from costmesh.v1 import common_pb2, orchestrator_pb2
from services.common.contracts import role_pairs
from services.common.errors import InvalidInput
from services.common.validation import check_cache_control, check_tenant

MAX_MESSAGES = 1000
MAX_TEMPERATURE = 2.0


def validate(request: orchestrator_pb2.CompletionRequest) -> None:
    check_tenant(request.tenant)
    if not request.messages:
        raise InvalidInput("messages must not be empty")
    if len(request.messages) > MAX_MESSAGES:
        raise InvalidInput(f"at most {MAX_MESSAGES} messages per request")
    role_pairs(request.messages)  # every message has a role
    if request.messages[-1].role != common_pb2.ROLE_USER:
        raise InvalidInput("the last message must be the user's (ROLE_USER)")
    if not request.messages[-1].content.strip():
        raise InvalidInput("the user's message is empty")
    s = request.sampling
    if s.HasField("temperature") and not 0.0 <= s.temperature <= MAX_TEMPERATURE:
        raise InvalidInput(f"sampling.temperature must be within [0, {MAX_TEMPERATURE}]")
    if s.HasField("top_p") and not 0.0 < s.top_p <= 1.0:
        raise InvalidInput("sampling.top_p must be within (0, 1]")
    if s.max_tokens < 0:
        raise InvalidInput("sampling.max_tokens must be >= 0")
    check_cache_control(request.cache, "cache.")
    if request.response_format:
        check_schema(request.response_format)
    if request.tier not in (common_pb2.TIER_UNSPECIFIED, common_pb2.TIER_SMALL, common_pb2.TIER_LARGE):
        raise InvalidInput("tier must be TIER_UNSPECIFIED, TIER_SMALL or TIER_LARGE")


def check_schema(response_format: str) -> None:
    try:
        jsonschema.validators.validator_for(schema := json.loads(response_format)).check_schema(schema)
    except (json.JSONDecodeError, jsonschema.SchemaError) as exc:
        raise InvalidInput(f"response_format must be a JSON schema: {str(exc).splitlines()[0]}") from None
