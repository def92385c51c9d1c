"""Batch-lane calls to OpenAI through its Batch API: half price, answered within 24 hours.

Requests arriving within `window_s` of each other (or `max_items` of them) are written to one JSONL file,
uploaded, and run as one batch job; each caller waits for its own line of the output. The batch consumer
keeps many items in flight, so jobs fill up. Self-hosted tiers do not need this: vLLM batches concurrent
requests in its engine (continuous batching), which the consumer's concurrency already feeds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Final

from openai import AsyncOpenAI

from services.common.errors import BackendUnavailable, InvalidInput
from services.inference.backends.openai_compatible import request_args
from services.inference.domain import ChatPrompt, Completion, Usage

log = logging.getLogger(__name__)
DONE = frozenset({"completed", "failed", "expired", "cancelled"})
ENDPOINT: Final = "/v1/chat/completions"


@dataclass
class _Pending:
    body: dict[str, Any]
    answer: asyncio.Future[Completion] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


def completion_from(body: dict[str, Any]) -> Completion:
    choice = body["choices"][0]
    usage = body.get("usage") or {}
    return Completion(
        text=choice["message"].get("content") or "",
        model=body.get("model", ""),
        finish_reason=choice.get("finish_reason") or "",
        usage=Usage(
            usage.get("prompt_tokens", 0),
            usage.get("completion_tokens", 0),
            (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0,
        ),
    )


class BatchApiCollector:
    def __init__(
        self, client: AsyncOpenAI, model: str, window_s: float = 5.0, max_items: int = 1000, poll_s: float = 30.0
    ) -> None:
        self._client = client
        self._model = model
        self._window_s = window_s
        self._max_items = max_items
        self._poll_s = poll_s
        self._open: dict[str, _Pending] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._jobs: set[asyncio.Task[None]] = set()

    async def complete(self, prompt: ChatPrompt) -> Completion:
        custom_id = f"costmesh-{uuid.uuid4().hex}"
        pending = _Pending(request_args(self._model, prompt))
        self._open[custom_id] = pending
        if len(self._open) >= self._max_items:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._window_s, self._flush)
        return await asyncio.shield(pending.answer)  # a caller that gives up does not cancel the job

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        items, self._open = self._open, {}
        if items:
            job = asyncio.create_task(self._run(items))
            self._jobs.add(job)
            job.add_done_callback(self._jobs.discard)

    async def _run(self, items: dict[str, _Pending]) -> None:
        try:
            answers, errors = await self._submit_and_wait(items)
        except Exception as exc:  # whatever went wrong, no caller may be left waiting forever
            log.warning("openai batch of %d requests failed", len(items), exc_info=True)
            for pending in items.values():
                if not pending.answer.done():
                    pending.answer.set_exception(BackendUnavailable(f"openai batch: {exc}"))
            return
        for custom_id, pending in items.items():
            if custom_id in answers:
                pending.answer.set_result(answers[custom_id])
            else:
                pending.answer.set_exception(errors.get(custom_id) or BackendUnavailable("openai batch: no output"))

    async def _submit_and_wait(self, items: dict[str, _Pending]) -> tuple[dict[str, Completion], dict[str, Exception]]:
        lines = [
            json.dumps({"custom_id": cid, "method": "POST", "url": ENDPOINT, "body": p.body})
            for cid, p in items.items()
        ]
        upload = await self._client.files.create(
            file=("costmesh-batch.jsonl", "\n".join(lines).encode()), purpose="batch"
        )
        batch = await self._client.batches.create(
            input_file_id=upload.id, endpoint=ENDPOINT, completion_window="24h", metadata={"source": "costmesh"}
        )
        log.info("openai batch %s: %d requests", batch.id, len(items))
        while batch.status not in DONE:
            await asyncio.sleep(self._poll_s)
            batch = await self._client.batches.retrieve(batch.id)
        answers: dict[str, Completion] = {}
        errors: dict[str, Exception] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            content = await self._client.files.content(file_id)
            for raw in content.text.splitlines():
                if not raw.strip():
                    continue
                line = json.loads(raw)
                response = line.get("response") or {}
                if line.get("error") is None and response.get("status_code") == 200:
                    answers[line["custom_id"]] = completion_from(response["body"])
                else:
                    message = json.dumps(line.get("error") or response.get("body"))[:300]
                    errors[line["custom_id"]] = InvalidInput(f"openai batch rejected the request: {message}")
        if batch.status != "completed" and not answers:
            raise BackendUnavailable(f"batch {batch.id} ended {batch.status}")
        return answers, errors

    async def close(self) -> None:
        for job in list(self._jobs):
            job.cancel()
        await asyncio.gather(*self._jobs, return_exceptions=True)
