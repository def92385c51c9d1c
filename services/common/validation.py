"""Input checks shared by the services: tenants, enums, sampling, documents, cache controls, JSON schemas.

Every value a servicer reads from a request passes one of these first, so bad input is INVALID_ARGUMENT
with a message that names the field, never a KeyError or a RecursionError that the caller sees as
INTERNAL.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

import jsonschema
from google.protobuf.descriptor import EnumDescriptor

from costmesh.v1 import common_pb2
from services.common.errors import InvalidInput

# Tenants become Redis key prefixes and Weaviate tenant names, so they keep to a safe alphabet. fullmatch,
# not `$`: `$` also matches before a trailing newline, and "demo\n" passed here and failed in Weaviate.
TENANT_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
MAX_TEMPERATURE = 2.0
MAX_STOP_SEQUENCES = 16
# response_format: a JSON schema is a small document; nesting past this is an attack, not a schema.
MAX_SCHEMA_BYTES = 256 * 1024
MAX_SCHEMA_DEPTH = 32


def check_tenant(tenant: str) -> str:
    if not TENANT_PATTERN.fullmatch(tenant):
        raise InvalidInput(
            f"tenant {tenant!r} is invalid: use 1-64 letters, digits, '_' or '-', starting with a letter or digit"
        )
    return tenant


def check_enum(value: int, enum: EnumDescriptor, field: str) -> None:
    """``value`` is one of the enum's (``common_pb2.Tier.DESCRIPTOR``): proto3 takes any int on the wire."""
    if value not in enum.values_by_number:
        names = ", ".join(v.name for v in enum.values)
        raise InvalidInput(f"{field} must be one of {names}; got {value}")


def check_finite(value: float, field: str, low: float = -math.inf, high: float = math.inf) -> None:
    """A finite number within [low, high] (NaN fails: every comparison with it is False)."""
    if not (math.isfinite(value) and low <= value <= high):
        raise InvalidInput(f"{field} must be a finite number within [{low}, {high}], got {value}")


def check_sampling(s: common_pb2.SamplingParams, prefix: str = "sampling.") -> None:
    if s.HasField("temperature"):
        check_finite(s.temperature, f"{prefix}temperature", 0.0, MAX_TEMPERATURE)
    if s.HasField("top_p") and not (math.isfinite(s.top_p) and 0.0 < s.top_p <= 1.0):
        raise InvalidInput(f"{prefix}top_p must be within (0, 1], got {s.top_p}")
    if s.max_tokens < 0:
        raise InvalidInput(f"{prefix}max_tokens must be >= 0")
    if len(s.stop) > MAX_STOP_SEQUENCES:
        raise InvalidInput(f"{prefix}stop has {len(s.stop)} sequences; at most {MAX_STOP_SEQUENCES}")


def check_documents(documents: Sequence[common_pb2.Document], prefix: str = "documents") -> None:
    for i, d in enumerate(documents):
        check_enum(d.kind, common_pb2.DocumentKind.DESCRIPTOR, f"{prefix}[{i}].kind")


def check_cache_control(c: common_pb2.CacheControl, prefix: str = "") -> None:
    """Ages and TTLs >= 0, the semantic cut-offs within [0, 1] (NaN fails too)."""
    if c.max_age_s < 0 or c.ttl_s < 0:
        raise InvalidInput(f"{prefix}max_age_s and {prefix}ttl_s must be >= 0")
    for name in ("similarity_threshold", "verifier_threshold"):
        if c.HasField(name) and not 0.0 <= getattr(c, name) <= 1.0:
            raise InvalidInput(f"{prefix}{name} must be within [0, 1], got {getattr(c, name)}")


def check_schema(response_format: str, field: str = "response_format") -> dict[str, Any]:
    """A JSON object, nested at most MAX_SCHEMA_DEPTH deep, that is a valid JSON schema (Draft 2020-12
    unless its `$schema` names another draft). Returns the parsed schema."""
    if len(response_format.encode()) > MAX_SCHEMA_BYTES:
        raise InvalidInput(f"{field} is over {MAX_SCHEMA_BYTES} bytes; a JSON schema is much smaller")
    try:
        schema = json.loads(response_format)
    except RecursionError:
        raise InvalidInput(f"{field} is nested more than {MAX_SCHEMA_DEPTH} levels deep") from None
    except ValueError as exc:
        raise InvalidInput(f"{field} must be a JSON schema: not JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(schema, dict):
        raise InvalidInput(f"{field} must be a JSON schema, a JSON object; got {json.dumps(schema)[:40]}")
    if json_depth(schema) > MAX_SCHEMA_DEPTH:
        raise InvalidInput(f"{field} is nested more than {MAX_SCHEMA_DEPTH} levels deep")
    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise InvalidInput(f"{field} is not a valid JSON schema: {str(exc).splitlines()[0]}") from None
    return schema


def json_depth(value: object) -> int:
    """How deeply containers nest in a parsed JSON value (a scalar is 0), without recursion."""
    depth, level = 0, [(value, 1)]
    while level:
        item, d = level.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        depth = max(depth, d)
        level.extend((child, d + 1) for child in children)
    return depth
