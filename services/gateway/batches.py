"""/v1/files and /v1/batches onto the Batch service (SubmitBatch, GetBatch, StreamBatchResults, CancelBatch),
as the openai SDK's `files.create`, `batches.create|retrieve|cancel` and `files.content` call them.

An uploaded file is kept per tenant (files.py); a batch is created from one, line by line, and the
lane's own checks decide per line (a bad line is that line's error, never the batch's). The output file
(`file-out-<batch id>`) is the batch's results in OpenAI's batch output format, read when downloaded.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Message

from costmesh.v1 import batch_pb2
from services.common.openai_batch import CHAT_URL, EMBEDDINGS_URL, batch_output_line
from services.gateway.context import Caller, Gateway, authenticate, gateway_of, read_body, read_json
from services.gateway.errors import ApiError, from_grpc
from services.gateway.files import OUTPUT_PREFIX, BatchRecord, output_file_id

WINDOW = "24h"  # OpenAI's only completion window
ENVELOPE_BYTES = 64 * 1024  # room for the multipart boundaries and headers around the file
STATES = {
    batch_pb2.BATCH_STATE_QUEUED: "in_progress",  # validated at submission, so never "validating"
    batch_pb2.BATCH_STATE_RUNNING: "in_progress",
    batch_pb2.BATCH_STATE_COMPLETED: "completed",
    batch_pb2.BATCH_STATE_CANCELLED: "cancelled",
}


def batch_object(status: batch_pb2.BatchStatus, record: BatchRecord | None) -> dict[str, Any]:
    created = status.created_unix_ms // 1000
    finished = status.finished_unix_ms // 1000 if status.finished_unix_ms else None
    state = STATES.get(status.state, "in_progress")
    return {
        "id": status.batch_id,
        "object": "batch",
        "endpoint": record.endpoint if record else CHAT_URL,
        "errors": None,
        "input_file_id": record.input_file_id if record else "",
        "completion_window": record.completion_window if record else WINDOW,
        "status": state,
        "output_file_id": output_file_id(status.batch_id) if finished else None,
        "error_file_id": None,  # failed items are in the output file, each with its error
        "created_at": created,
        "in_progress_at": created,
        "expires_at": created + 86_400,
        "completed_at": finished if state == "completed" else None,
        "cancelled_at": finished if state == "cancelled" else None,
        "request_counts": {
            "total": status.total,
            "completed": status.succeeded,
            "failed": status.failed + status.cancelled,
        },
        "metadata": record.metadata if record else None,
        "costmesh": {"cost_usd": status.cost_usd, "baseline_cost_usd": status.baseline_cost_usd},
    }


async def upload_file(request: Request) -> Response:
    gw = gateway_of(request)
    caller = await authenticate(request)
    if not caller.policy.allow_batch:  # files are only for batches: a key without the lane stores nothing
        raise ApiError(403, f"API key {caller.policy.key_id} may not use the batch lane (keys create --allow-batch)")
    limit = gw.settings.max_file_bytes
    # The whole body is read under the limit first: a chunked upload declares no length, and the multipart
    # parser would otherwise spool any size to disk before the file's own size is known.
    body = await read_body(request, limit + ENVELOPE_BYTES)
    try:
        form = await replayed(request, body).form(max_files=1, max_fields=8)
    except Exception as exc:  # multipart's own parse errors: a bad request, not a crash
        raise ApiError(400, f"expected multipart/form-data with `file` and `purpose`: {exc}") from None
    try:
        upload, purpose = form.get("file"), form.get("purpose")
        if not isinstance(upload, UploadFile):
            raise ApiError(400, "the form needs a `file` part", param="file")
        if purpose != "batch":
            raise ApiError(400, "only purpose=batch is supported", param="purpose")
        content = await upload.read(limit + 1)
        if len(content) > limit:
            raise ApiError(413, f"files are limited to {limit} bytes")
        stored = await gw.files.put(caller.policy.tenant, purpose, upload.filename or "input.jsonl", content)
    finally:
        await form.close()
    return JSONResponse(stored.as_openai())


def replayed(request: Request, body: bytes) -> Request:
    """The request again, its body already read, for Starlette's form parser."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(request.scope, receive)


async def _status(gw: Gateway, caller: Caller, batch_id: str) -> batch_pb2.BatchStatus:
    try:
        status: batch_pb2.BatchStatus = await gw.batches.GetBatch(
            batch_pb2.BatchRef(batch_id=batch_id), timeout=30, metadata=caller.metadata
        )
    except grpc.aio.AioRpcError as exc:
        raise from_grpc(exc) from None
    return status


async def get_file(request: Request) -> Response:
    gw = gateway_of(request)
    caller = await authenticate(request)
    file_id = request.path_params["file_id"]
    if file_id.startswith(OUTPUT_PREFIX):
        status = await _status(gw, caller, file_id.removeprefix(OUTPUT_PREFIX))
        if not status.finished_unix_ms:
            raise ApiError(404, f"batch {status.batch_id} is not finished; its output file appears when it is")
        return JSONResponse(
            {
                "id": file_id,
                "object": "file",
                "bytes": 0,  # unknown until read: the results are formatted as they are downloaded
                "created_at": status.finished_unix_ms // 1000,
                "filename": f"{status.batch_id}_output.jsonl",
                "purpose": "batch_output",
                "status": "processed",
            }
        )
    stored = await gw.files.get(caller.policy.tenant, file_id)
    if stored is None:
        raise ApiError(404, f"no file {file_id!r}", param="file_id")
    return JSONResponse(stored.as_openai())


async def file_content(request: Request) -> Response:
    gw = gateway_of(request)
    caller = await authenticate(request)
    file_id = request.path_params["file_id"]
    if file_id.startswith(OUTPUT_PREFIX):
        batch_id = file_id.removeprefix(OUTPUT_PREFIX)
        if not (await _status(gw, caller, batch_id)).finished_unix_ms:
            # As OpenAI: the output file exists once the batch is done (`costmesh batch results` streams
            # results as they land).
            raise ApiError(404, f"batch {batch_id} is not finished; its output file appears when it is")
        return await _results(gw, caller, batch_id)
    content = await gw.files.content(caller.policy.tenant, file_id)
    if content is None:
        raise ApiError(404, f"no file {file_id!r}", param="file_id")
    return Response(content, media_type="application/octet-stream")


async def _results(gw: Gateway, caller: Caller, batch_id: str) -> Response:
    call = gw.batches.StreamBatchResults(batch_pb2.BatchRef(batch_id=batch_id), metadata=caller.metadata)
    results = call.__aiter__()
    try:
        first: batch_pb2.BatchResult | None = await anext(results)  # unknown batch: 404 before any byte
    except grpc.aio.AioRpcError as exc:
        raise from_grpc(exc) from None
    except StopAsyncIteration:
        first = None

    async def lines() -> AsyncIterator[bytes]:
        try:
            if first is not None:
                yield (json.dumps(batch_output_line(first)) + "\n").encode()
            async for item in results:
                yield (json.dumps(batch_output_line(item)) + "\n").encode()
        finally:
            call.cancel()

    return StreamingResponse(lines(), media_type="application/jsonl")


async def create_batch(request: Request) -> Response:
    gw = gateway_of(request)
    caller = await authenticate(request)
    body = await read_json(request, gw.settings.max_body_bytes)
    if not isinstance(body, dict) or not isinstance(body.get("input_file_id"), str):
        raise ApiError(400, "input_file_id is required", param="input_file_id")
    endpoint = body.get("endpoint")
    if endpoint not in (CHAT_URL, EMBEDDINGS_URL):
        raise ApiError(400, f"endpoint must be {CHAT_URL} or {EMBEDDINGS_URL}", param="endpoint")
    if body.get("completion_window", WINDOW) != WINDOW:
        raise ApiError(400, f"completion_window must be {WINDOW!r}", param="completion_window")
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ApiError(400, "metadata must be an object of strings", param="metadata")
    content = await gw.files.content(caller.policy.tenant, body["input_file_id"])
    if content is None:
        raise ApiError(404, f"no file {body['input_file_id']!r}", param="input_file_id")
    try:
        # JSONL lines end at \n only: str.splitlines() would also split at U+2028 and U+0085, which JSON
        # strings may carry unescaped.
        lines = [text for line in content.split(b"\n") if (text := line.decode().strip())]
    except UnicodeDecodeError:
        raise ApiError(400, "the input file is not UTF-8 JSONL", param="input_file_id") from None
    items = [batch_pb2.BatchItem(openai_line=line) for line in lines]
    try:
        status: batch_pb2.BatchStatus = await gw.batches.SubmitBatch(
            batch_pb2.SubmitBatchRequest(items=items, endpoint=endpoint), timeout=120, metadata=caller.metadata
        )
    except grpc.aio.AioRpcError as exc:
        raise from_grpc(exc) from None
    record = BatchRecord(status.batch_id, caller.policy.tenant, body["input_file_id"], endpoint, WINDOW, {**metadata})
    await gw.files.record_batch(record)
    return JSONResponse(batch_object(status, record))


async def get_batch(request: Request) -> Response:
    gw = gateway_of(request)
    caller = await authenticate(request)
    status = await _status(gw, caller, request.path_params["batch_id"])
    return JSONResponse(batch_object(status, await gw.files.batch(caller.policy.tenant, status.batch_id)))


async def cancel_batch(request: Request) -> Response:
    gw = gateway_of(request)
    caller = await authenticate(request)
    try:
        status: batch_pb2.BatchStatus = await gw.batches.CancelBatch(
            batch_pb2.BatchRef(batch_id=request.path_params["batch_id"]), timeout=60, metadata=caller.metadata
        )
    except grpc.aio.AioRpcError as exc:
        raise from_grpc(exc) from None
    return JSONResponse(batch_object(status, await gw.files.batch(caller.policy.tenant, status.batch_id)))
