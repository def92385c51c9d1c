"""The batch lane's front door (the Batch service's RPCs): submit, status, results, cancel, list. No grpc.

Submission checks every item with the real-time lane's own validation. An item that fails gets its
error result at once; only valid items are queued for the consumer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from costmesh.v1 import batch_pb2, orchestrator_pb2
from services.batch.backends.base import Priority, WorkItem, WorkQueue
from services.batch.jobs import JobStore, JobSummary, UnknownBatch
from services.batch.lines import BadLine, Request, check_request, custom_id_of, parse_line
from services.common.errors import InvalidInput
from services.common.meshauth import KEY_ID_ENTRY
from services.common.openai_batch import CHAT_URL, EMBEDDINGS_URL
from services.common.openai_embeddings import check_inputs
from services.common.validation import check_tenant

MAX_ITEMS = 50_000  # OpenAI's Batch API limit per file
LIST_DEFAULT, LIST_MAX = 20, 100

STATES = {
    "queued": batch_pb2.BATCH_STATE_QUEUED,
    "running": batch_pb2.BATCH_STATE_RUNNING,
    "completed": batch_pb2.BATCH_STATE_COMPLETED,
    "cancelled": batch_pb2.BATCH_STATE_CANCELLED,
}


def state_of(job: JobSummary) -> str:
    if job.finished_ms:
        return "cancelled" if job.cancel_requested else "completed"
    return "running" if job.done else "queued"


def status_of(job: JobSummary) -> batch_pb2.BatchStatus:
    return batch_pb2.BatchStatus(
        batch_id=job.batch_id,
        state=STATES[state_of(job)],
        total=job.total,
        succeeded=job.succeeded,
        failed=job.failed,
        cancelled=job.cancelled,
        cost_usd=job.cost_usd,
        baseline_cost_usd=job.baseline_cost_usd,
        created_unix_ms=job.created_ms,
        finished_unix_ms=job.finished_ms,
    )


def error_result(index: int, custom_id: str, code: str, message: str) -> batch_pb2.BatchResult:
    return batch_pb2.BatchResult(
        custom_id=custom_id, index=index, error=batch_pb2.BatchError(code=code, message=message)
    )


def normalize(tenant: str, item: batch_pb2.BatchItem, key_id: str = "", endpoint: str = "") -> batch_pb2.BatchItem:
    """The item as the consumer will run it: an OpenAI line parsed, the batch's tenant and the key that
    pays for it filled in. Raises BadLine with the reason when it cannot run."""
    kind = item.WhichOneof("body")
    if kind == "openai_line":
        custom_id, request = parse_line(item.openai_line, tenant, endpoint)
        if item.custom_id and item.custom_id != custom_id:
            raise BadLine(f"custom_id {item.custom_id!r} differs from the line's {custom_id!r}")
        return as_item(custom_id, for_key(request, key_id))
    if kind == "embeddings":
        embeddings = orchestrator_pb2.EmbeddingsRequest()
        embeddings.CopyFrom(item.embeddings)
        own_batch_tenant(embeddings, tenant, item.custom_id)
        try:
            check_inputs(list(embeddings.input))
        except InvalidInput as e:
            raise BadLine(str(e)) from None
        return as_item(item.custom_id, for_key(embeddings, key_id))
    if kind != "request":
        raise BadLine("an item needs a request, an embeddings request or an openai_line")
    request = orchestrator_pb2.CompletionRequest()
    request.CopyFrom(item.request)
    own_batch_tenant(request, tenant, item.custom_id)
    check_request(request)
    return as_item(item.custom_id, for_key(request, key_id))


def own_batch_tenant(request: Request, tenant: str, custom_id: str) -> None:
    if request.tenant and request.tenant != tenant:
        raise BadLine(f"request.tenant {request.tenant!r} differs from the batch's {tenant!r}")
    request.tenant = tenant
    request.request_id = request.request_id or custom_id


def as_item(custom_id: str, request: Request) -> batch_pb2.BatchItem:
    if isinstance(request, orchestrator_pb2.EmbeddingsRequest):
        return batch_pb2.BatchItem(custom_id=custom_id, embeddings=request)
    return batch_pb2.BatchItem(custom_id=custom_id, request=request)


def for_key(request: Request, key_id: str) -> Request:
    """The request marked with the key the batch lane charges; a submitter cannot name another key."""
    request.metadata.pop(KEY_ID_ENTRY, None)
    if key_id:
        request.metadata[KEY_ID_ENTRY] = key_id
    return request


class BatchApi:
    def __init__(self, store: JobStore, queue: WorkQueue) -> None:
        self._store = store
        self._queue = queue

    async def submit(
        self,
        tenant: str,
        items: list[batch_pb2.BatchItem],
        key_id: str = "",
        priority: Priority = "normal",
        endpoint: str = "",
    ) -> batch_pb2.BatchStatus:
        check_tenant(tenant)
        if endpoint not in ("", CHAT_URL, EMBEDDINGS_URL):
            raise InvalidInput(f"endpoint must be {CHAT_URL} or {EMBEDDINGS_URL}, not {endpoint!r}")
        if not items:
            raise InvalidInput("a batch needs at least one item")
        if len(items) > MAX_ITEMS:
            raise InvalidInput(f"at most {MAX_ITEMS} items per batch")
        stored: list[batch_pb2.BatchItem] = []
        errors: list[batch_pb2.BatchResult] = []
        seen: set[str] = set()
        for index, item in enumerate(items):
            try:
                ready = normalize(tenant, item, key_id, endpoint)
                if ready.custom_id in seen:
                    raise BadLine(f"custom_id {ready.custom_id!r} appears twice in the batch")
            except BadLine as e:
                fallback = item.custom_id or (custom_id_of(item.openai_line) if item.openai_line else "")
                stored.append(batch_pb2.BatchItem(custom_id=fallback))
                errors.append(error_result(index, fallback, "INVALID_ARGUMENT", str(e)))
                continue
            if ready.custom_id:
                seen.add(ready.custom_id)
            stored.append(ready)
        batch_id = await self._store.create(tenant, stored)
        for result in errors:
            await self._store.record(batch_id, result)
        failed = {r.index for r in errors}
        await self._queue.publish([WorkItem(batch_id, i, priority) for i in range(len(stored)) if i not in failed])
        return status_of(await self._store.summary(batch_id, tenant))

    async def status(self, tenant: str, batch_id: str) -> batch_pb2.BatchStatus:
        return status_of(await self._store.summary(batch_id, tenant))

    async def results(self, tenant: str, batch_id: str) -> AsyncIterator[batch_pb2.BatchResult]:
        await self._store.summary(batch_id, tenant)  # unknown or another tenant's: NOT_FOUND before streaming
        async for result in self._store.results(batch_id, follow=True):
            yield result

    async def cancel(self, tenant: str, batch_id: str) -> batch_pb2.BatchStatus:
        job = await self._store.summary(batch_id, tenant)
        if not job.finished_ms:
            await self._store.request_cancel(batch_id)
            # Every item without a result is marked cancelled now; a consumer that answers one of them
            # meanwhile loses the race and its answer is dropped (first result wins).
            for index in range(job.total):
                if not await self._store.has_result(batch_id, index):
                    item = await self._store.item(batch_id, index)
                    custom_id = item.custom_id if item else ""
                    await self._store.record(batch_id, error_result(index, custom_id, "CANCELLED", "batch cancelled"))
        return status_of(await self._store.summary(batch_id, tenant))

    async def recent(self, tenant: str, limit: int = 0) -> list[batch_pb2.BatchStatus]:
        """The tenant's batches, newest first; expired ones are skipped."""
        check_tenant(tenant)
        if limit < 0:
            raise InvalidInput("limit must not be negative")
        statuses = []
        for batch_id in await self._store.batch_ids(tenant, min(limit or LIST_DEFAULT, LIST_MAX)):
            try:
                statuses.append(status_of(await self._store.summary(batch_id, tenant)))
            except UnknownBatch:
                continue
        return statuses

    async def close(self) -> None:
        await self._store.close()
        await self._queue.close()
