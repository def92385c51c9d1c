"""One line of OpenAI's batch output file, for chat-completion and embedding items alike."""

from __future__ import annotations

from typing import Any

from costmesh.v1 import batch_pb2
from services.common.openai_embeddings import embeddings_body
from services.common.openai_wire import chat_completion

# The endpoints a batch may run (OpenAI's Batch API names one per batch, and every line repeats it).
CHAT_URL = "/v1/chat/completions"
EMBEDDINGS_URL = "/v1/embeddings"


def batch_output_line(result: batch_pb2.BatchResult) -> dict[str, Any]:
    """A failed item carries its error instead of a response; embeddings are written as floats."""
    line_id = f"costmesh_req_{result.index}"
    if result.HasField("error"):
        error = {"code": result.error.code, "message": result.error.message}
        return {"id": line_id, "custom_id": result.custom_id, "response": None, "error": error}
    if result.HasField("embeddings"):
        e = result.embeddings
        body = embeddings_body(e)
        response = {"status_code": 200, "request_id": e.request_id, "body": body, "costmesh": body["costmesh"]}
        return {"id": line_id, "custom_id": result.custom_id, "response": response, "error": None}
    r = result.response
    body = chat_completion(r, 0)
    return {
        "id": line_id,
        "custom_id": result.custom_id,
        "response": {"status_code": 200, "request_id": r.request_id, "body": body, "costmesh": body["costmesh"]},
        "error": None,
    }
