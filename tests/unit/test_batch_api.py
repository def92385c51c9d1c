"""The OpenAI Batch API path, with the official SDK talking to an in-memory stand-in for OpenAI's files
and batches endpoints (no network here; the request and file formats are OpenAI's documented ones)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from openai import AsyncOpenAI
from prometheus_client import CollectorRegistry

from services.common.errors import BackendUnavailable, InvalidInput
from services.inference.batch_api import BatchApiCollector
from services.inference.core import InferenceCore, InferenceMetrics, TierConfig
from services.inference.domain import ChatMessage, ChatPrompt, Sampling, Tier
from tests.service.fakes import EchoBackend


class FakeBatchApi:
    """Files and batches as OpenAI serves them: upload, create, in_progress on the first poll, then done."""

    def __init__(self, refuse: str = "") -> None:
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, object]] = {}
        self.polls = 0
        self.refuse = refuse  # questions answered with a per-line error

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/v1")
        if request.method == "POST" and path == "/files":
            body = request.content  # multipart: the part with a filename holds the JSONL
            part = body.index(b"filename=")
            start = body.index(b"\r\n\r\n", part) + 4
            content = body[start : body.index(b"\r\n--", start)]
            file_id = f"file-{len(self.files)}"
            self.files[file_id] = content
            return httpx.Response(
                200,
                json={
                    "id": file_id,
                    "object": "file",
                    "bytes": len(content),
                    "created_at": 0,
                    "filename": "costmesh-batch.jsonl",
                    "purpose": "batch",
                    "status": "processed",
                },
            )
        if request.method == "POST" and path == "/batches":
            spec = json.loads(request.content)
            assert spec["endpoint"] == "/v1/chat/completions" and spec["completion_window"] == "24h"
            batch_id = f"batch-{len(self.batches)}"
            self.batches[batch_id] = {"input": spec["input_file_id"], "status": "validating"}
            return httpx.Response(200, json=self._batch(batch_id))
        if request.method == "GET" and path.startswith("/batches/"):
            batch_id = path.rsplit("/", 1)[1]
            self.polls += 1
            state = self.batches[batch_id]
            state["status"] = "in_progress" if state["status"] == "validating" else "completed"
            if state["status"] == "completed":
                self._answer(batch_id)
            return httpx.Response(200, json=self._batch(batch_id))
        if request.method == "GET" and path.startswith("/files/") and path.endswith("/content"):
            return httpx.Response(200, content=self.files[path.split("/")[2]])
        return httpx.Response(404, json={"error": {"message": f"no route {request.method} {path}"}})

    def _answer(self, batch_id: str) -> None:
        state = self.batches[batch_id]
        out, err = [], []
        for raw in self.files[str(state["input"])].decode().splitlines():
            line = json.loads(raw)
            question = line["body"]["messages"][-1]["content"]
            if question == self.refuse:
                err.append(
                    {
                        "custom_id": line["custom_id"],
                        "response": None,
                        "error": {"code": "invalid_request", "message": "refused"},
                    }
                )
                continue
            body = {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": line["body"]["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": f"re: {question}"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13},
            }
            out.append({"custom_id": line["custom_id"], "response": {"status_code": 200, "body": body}, "error": None})
        self.files[f"out-{batch_id}"] = "\n".join(json.dumps(x) for x in out).encode()
        state["output_file_id"] = f"out-{batch_id}"
        if err:
            self.files[f"err-{batch_id}"] = "\n".join(json.dumps(x) for x in err).encode()
            state["error_file_id"] = f"err-{batch_id}"

    def _batch(self, batch_id: str) -> dict[str, object]:
        state = self.batches[batch_id]
        return {
            "id": batch_id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
            "input_file_id": state["input"],
            "status": state["status"],
            "created_at": 0,
            "output_file_id": state.get("output_file_id"),
            "error_file_id": state.get("error_file_id"),
        }


def collector(api: FakeBatchApi, **kwargs: float) -> BatchApiCollector:
    client = AsyncOpenAI(
        max_retries=0,
        api_key="test",
        base_url="https://api.openai.test/v1",
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(api.handle)),
    )
    return BatchApiCollector(client, "gpt-4o-mini", poll_s=0.01, **kwargs)  # type: ignore[arg-type]


def prompt(question: str) -> ChatPrompt:
    return ChatPrompt((ChatMessage("user", question),), Sampling(max_tokens=5))


async def test_concurrent_requests_go_out_as_one_batch_job() -> None:
    api = FakeBatchApi(refuse="bad")
    batcher = collector(api, window_s=0.05)
    results = await asyncio.gather(
        *(batcher.complete(prompt(q)) for q in ("one", "two", "bad")), return_exceptions=True
    )
    assert len(api.batches) == 1  # one upload, one job
    uploaded = [json.loads(line) for line in api.files["file-0"].decode().splitlines()]
    assert [line["body"]["messages"][-1]["content"] for line in uploaded] == ["one", "two", "bad"]
    assert {line["url"] for line in uploaded} == {"/v1/chat/completions"}
    assert [r.text for r in results[:2]] == ["re: one", "re: two"]  # type: ignore[union-attr]
    assert results[0].usage.prompt_tokens == 10  # type: ignore[union-attr]
    assert isinstance(results[2], InvalidInput)
    assert api.polls == 2
    await batcher.close()


async def test_a_full_batch_is_sent_without_waiting_for_the_window() -> None:
    api = FakeBatchApi()
    batcher = collector(api, window_s=3600, max_items=2)
    answers = await asyncio.wait_for(asyncio.gather(batcher.complete(prompt("a")), batcher.complete(prompt("b"))), 5)
    assert [a.text for a in answers] == ["re: a", "re: b"]
    await batcher.close()


@pytest.mark.parametrize("status", ["failed", "expired"])
async def test_a_batch_that_ends_without_output_fails_its_requests(status: str) -> None:
    api = FakeBatchApi()
    original = api._answer

    def broken(batch_id: str) -> None:
        api.batches[batch_id]["status"] = status

    api._answer = broken  # type: ignore[method-assign]
    batcher = collector(api, window_s=0.01)
    with pytest.raises(Exception, match=f"ended {status}"):
        await batcher.complete(prompt("x"))
    api._answer = original  # type: ignore[method-assign]
    await batcher.close()


async def test_an_unreadable_output_fails_the_callers_instead_of_leaving_them_waiting() -> None:
    api = FakeBatchApi()
    original = api._answer

    def garbage(batch_id: str) -> None:
        original(batch_id)
        api.files[f"out-{batch_id}"] = b"this is not JSON"

    api._answer = garbage  # type: ignore[method-assign]
    batcher = collector(api, window_s=0.01)
    with pytest.raises(BackendUnavailable, match="openai batch"):
        await asyncio.wait_for(batcher.complete(prompt("x")), 5)
    await batcher.close()


async def test_batch_lane_calls_of_an_openai_backend_go_through_the_batch_api() -> None:
    api = FakeBatchApi()
    realtime_backend = EchoBackend("openai")
    tiers = {
        Tier.SMALL: TierConfig([realtime_backend], "gpt-4o-mini"),
        Tier.LARGE: TierConfig([EchoBackend()], "gpt-4o"),
    }
    core = InferenceCore(
        tiers, InferenceMetrics(CollectorRegistry()), batch_apis={(Tier.SMALL, 0): collector(api, window_s=0.01)}
    )
    batch = await core.generate(Tier.SMALL, prompt("via batch"), 10, lane="batch")
    assert batch.completion.text == "re: via batch" and len(api.batches) == 1
    assert batch.cost.by_intervention["batch"] > 0
    realtime = await core.generate(Tier.SMALL, prompt("now"), 10)
    assert realtime.completion.text.startswith("echo") and len(api.batches) == 1
    await core.close()
