"""OpenAI's /v1/embeddings wire format <-> EmbeddingsRequest / EmbeddingsResponse, for the gateway and for
batch lines whose url is /v1/embeddings.

Accepted: `model` "costmesh-embedding" (the stack's embedding model, whichever backend serves it), `input`
as a string or a list of strings, `encoding_format` "float" or "base64" (little-endian float32, what the
openai SDK asks for by default and decodes), `user` (ignored). Token-array inputs and `dimensions` are
refused with a message naming the field: the local model takes text and has one size.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import numpy as np

from costmesh.v1 import orchestrator_pb2
from services.common.errors import InvalidInput
from services.common.openai_wire import WireError

EMBEDDING_MODEL = "costmesh-embedding"
KNOWN = {"model", "input", "encoding_format", "user", "dimensions"}
MAX_INPUTS = 2048  # what OpenAI's /v1/embeddings takes in one call
MAX_CHARS = 32_000  # per input: ~8k tokens, OpenAI's limit for its embedding models


def check_inputs(texts: Sequence[str]) -> None:
    """What every embedding call must satisfy, checked where it enters (gateway, batch line, inference)."""
    if not texts:
        raise InvalidInput("input must hold at least one text")
    if len(texts) > MAX_INPUTS:
        raise InvalidInput(f"at most {MAX_INPUTS} inputs per call, got {len(texts)}")
    for i, text in enumerate(texts):
        if not text.strip():
            raise InvalidInput(f"input[{i}] is empty")
        if len(text) > MAX_CHARS:
            raise InvalidInput(f"input[{i}] has {len(text)} characters; at most {MAX_CHARS}")


def embeddings_request(
    body: Any, tenant: str = "", strict_model: bool = True
) -> tuple[orchestrator_pb2.EmbeddingsRequest, str]:
    """The request, and the encoding its response should use. Raises WireError. Batch lines are not strict
    about the model: a team's existing batch files name OpenAI's ("text-embedding-3-small"), and the
    stack's embedding model answers whatever they name."""
    if not isinstance(body, dict):
        raise WireError("the body must be a JSON object")
    unknown = sorted(set(body) - KNOWN)
    if unknown:
        raise WireError(f"unsupported field {unknown[0]!r}", unknown[0])
    model = body.get("model")
    if (strict_model and model != EMBEDDING_MODEL) or (not strict_model and not isinstance(model, str)):
        raise WireError(
            f"The model {body.get('model')!r} does not exist: use {EMBEDDING_MODEL!r}", "model", "model_not_found"
        )
    if body.get("dimensions") is not None:
        raise WireError("dimensions is not supported: the embedding model has one size", "dimensions")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise WireError("encoding_format must be 'float' or 'base64'", "encoding_format")
    raw = body.get("input")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not texts:
        raise WireError("input must be a string or a non-empty list of strings", "input")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise WireError(f"input[{i}] must be a string (token arrays are not supported)", "input")
        try:
            text.encode()
        except UnicodeEncodeError:
            raise WireError(f"input[{i}] is not valid Unicode (it has a lone surrogate)", "input") from None
    try:
        check_inputs(texts)
    except InvalidInput as e:
        raise WireError(str(e), "input") from None
    return orchestrator_pb2.EmbeddingsRequest(tenant=tenant, input=texts), encoding


def encode_vector(values: Any, encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(np.asarray(values, dtype="<f4").tobytes()).decode()
    return list(values)


def embeddings_body(response: orchestrator_pb2.EmbeddingsResponse, encoding: str = "float") -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": encode_vector(e.values, encoding)}
            for i, e in enumerate(response.data)
        ],
        "model": response.model,
        "usage": {"prompt_tokens": response.prompt_tokens, "total_tokens": response.prompt_tokens},
        "costmesh": {
            "cost_usd": response.cost.cost_usd,
            "baseline_cost_usd": response.cost.baseline_cost_usd,
            "trace_id": response.trace_id,
        },
    }
