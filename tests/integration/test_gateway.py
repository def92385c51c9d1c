"""The OpenAI-compatible gateway, driven by the real openai SDK and httpx, in front of a real in-process mesh
(scripted model backends), a real batch consumer and a real Redis. tests/e2e/test_gateway.py repeats the
main paths against the whole running stack and its models."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import openai
import pytest
import redis.asyncio as redis
import uvicorn

from launcher.settings import StackSettings
from services.batch.server import build_server as build_batch
from services.batch.settings import BatchSettings
from services.common.apikeys import KeyStore
from services.gateway.server import create_app
from services.gateway.settings import GatewaySettings
from services.orchestrator.spend import SpendLedger
from tests import stack
from tests.helpers import ROOT, free_port
from tests.service.fakes import EchoBackend, ScriptedBackend
from tests.service.mesh import Mesh, start_mesh
from tests.unit.fakes import MemoryExactStore

DB = 5  # a database of its own: the running stack's batch consumer must not take this test's batches


class SlowStream(EchoBackend):
    """Streams one word every 0.15 s, so a test can tell chunks that arrive early from a buffered answer."""

    async def stream(self, prompt, timeout_s):  # type: ignore[no-untyped-def,override]
        async for part in super().stream(prompt, timeout_s):
            if isinstance(part, str):
                await asyncio.sleep(0.15)
            yield part


@dataclass
class Front:
    base_url: str
    keys: KeyStore
    mesh: Mesh

    async def key(self, **policy: object) -> str:
        key, _ = await self.keys.create(policy.pop("tenant", "gw-tenant"), **policy)  # type: ignore[arg-type]
        return key

    def sdk(self, key: str) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=f"{self.base_url}/v1", api_key=key, max_retries=0)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    settings = StackSettings()
    started = stack.start(settings, ["redis"])
    yield settings.redis_url(DB)
    stack.stop(settings, started)


@pytest.fixture(scope="module")
async def front(redis_url: str) -> AsyncIterator[Front]:
    small = ScriptedBackend("small", '{"answer": 4}')
    large = SlowStream("large", model="large-model")
    mesh = await start_mesh([small], [large], MemoryExactStore(), keys_redis_url=redis_url)
    orchestrator = mesh.address("orchestrator")
    batch = await build_batch(
        BatchSettings(port=0, redis_url=redis_url, keys_redis_url=redis_url, orchestrator_addr=orchestrator)
    )
    await mesh.start("batch", batch)
    consumers = [asyncio.create_task(job()) for job in batch.background]
    port = free_port()
    settings = GatewaySettings(
        port=port,
        orchestrator_addr=orchestrator,
        batch_addr=mesh.address("batch"),
        redis_url=redis_url,
        max_body_bytes=64_000,
    )
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.05)
    client = redis.Redis.from_url(redis_url)
    try:
        yield Front(f"http://127.0.0.1:{port}", KeyStore(client), mesh)
    finally:
        server.should_exit = True
        await serving
        for task in consumers:
            task.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)
        await mesh.stop()
        await client.aclose()


async def test_a_completion_through_the_sdk_carries_costmesh_decisions(front: Front) -> None:
    sdk = front.sdk(await front.key())
    raw = await sdk.chat.completions.with_raw_response.create(
        model="costmesh-small", messages=[{"role": "user", "content": "What is 2 + 2?"}], max_tokens=16
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == '{"answer": 4}'
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert raw.headers["x-costmesh-tier"] == "small"
    assert raw.headers["x-costmesh-cache"] == "miss"
    assert float(raw.headers["x-costmesh-baseline-usd"]) > float(raw.headers["x-costmesh-cost-usd"]) > 0
    assert len(raw.headers["x-costmesh-trace-id"]) == 32
    again = await sdk.chat.completions.with_raw_response.create(
        model="costmesh-small", messages=[{"role": "user", "content": "What is 2 + 2?"}], max_tokens=16
    )
    assert again.headers["x-costmesh-cache"] == "exact" and float(again.headers["x-costmesh-cost-usd"]) == 0
    bypass = await sdk.chat.completions.with_raw_response.create(
        model="costmesh-small",
        messages=[{"role": "user", "content": "What is 2 + 2?"}],
        max_tokens=16,
        extra_headers={"x-costmesh-cache-control": "no-cache"},
    )
    assert bypass.headers["x-costmesh-cache"] == "miss"


async def test_a_json_schema_response_format_is_enforced_by_escalation(front: Front) -> None:
    key, policy = await front.keys.create("gw-tenant", budget_usd_per_day=1.0)
    sdk = front.sdk(key)
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    raw = await sdk.chat.completions.with_raw_response.create(
        model="costmesh-auto",
        messages=[{"role": "user", "content": "Give me a name as JSON, please, with a short explanation."}],
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema}},
        max_tokens=16,
    )
    # The cheap tier's {"answer": 4} misses the required "name": the large tier answers instead.
    assert raw.headers["x-costmesh-escalated"] == "true" and raw.headers["x-costmesh-tier"] == "large"
    # The key pays both calls: the reservation settled to the whole cost, rejected cheap answer included.
    spent = await SpendLedger(front.keys.client).spent_today(policy.key_id)
    assert spent == pytest.approx(float(raw.headers["x-costmesh-cost-usd"]), rel=1e-6)


async def test_a_stream_reserves_and_settles_like_a_plain_call(front: Front) -> None:
    key, policy = await front.keys.create("gw-tenant", budget_usd_per_day=1.0)
    stream = await front.sdk(key).chat.completions.create(
        model="costmesh-large",
        messages=[{"role": "user", "content": "count with me"}],
        stream=True,
        max_tokens=8,
        stream_options={"include_usage": True},
    )
    chunks = [c async for c in stream]
    cost = chunks[-2].model_extra["costmesh"]["cost_usd"]  # type: ignore[index]
    assert cost > 0
    assert await SpendLedger(front.keys.client).spent_today(policy.key_id) == pytest.approx(cost, rel=1e-6)
    broke, _ = await front.keys.create("gw-tenant", budget_usd_per_day=1e-9)
    with pytest.raises(openai.RateLimitError, match="over its budget"):
        await front.sdk(broke).chat.completions.create(
            model="costmesh-large", messages=[{"role": "user", "content": "x"}], stream=True
        )


async def test_streaming_sends_chunks_before_the_answer_ends_and_usage_last(front: Front) -> None:
    key = await front.key()
    body = {
        "model": "costmesh-large",
        "messages": [{"role": "user", "content": "one two three four five six"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 32,
    }
    arrivals: list[tuple[float, str]] = []
    started = time.perf_counter()
    async with (
        httpx.AsyncClient(base_url=front.base_url, timeout=30) as client,
        client.stream("POST", "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}) as r,
    ):
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                arrivals.append((time.perf_counter() - started, line.removeprefix("data: ")))
    assert arrivals[-1][1] == "[DONE]"
    events = [json.loads(data) for _, data in arrivals[:-1]]
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])
    assert text.strip() == "echo: one two three four five six"
    content_times = [
        t
        for (t, _), e in zip(arrivals, events, strict=False)
        if e["choices"] and e["choices"][0]["delta"].get("content")
    ]
    assert content_times[0] < arrivals[-1][0] - 0.5  # the first words came ~1 s before the last
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] > 0
    assert events[-2]["choices"][0]["finish_reason"] == "stop" and events[-2]["costmesh"]["tier"] == "large"
    # The SDK reads the same stream; a cache hit streams too.
    stream = await front.sdk(key).chat.completions.create(
        model="costmesh-large",
        messages=body["messages"],
        stream=True,
        max_tokens=32,  # type: ignore[arg-type]
    )
    parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert "".join(parts).strip() == text.strip()


async def test_keys_decide_who_may_call_and_what(front: Front) -> None:
    messages = [{"role": "user", "content": "hello"}]
    with pytest.raises(openai.AuthenticationError):
        await front.sdk("cmk-wrong").chat.completions.create(model="costmesh-small", messages=messages)  # type: ignore[arg-type]
    key = await front.key(tiers=frozenset({"small"}))
    with pytest.raises(openai.PermissionDeniedError, match="large tier"):
        await front.sdk(key).chat.completions.create(model="costmesh-large", messages=messages)  # type: ignore[arg-type]
    models = [m.id async for m in front.sdk(key).models.list()]
    assert models == ["costmesh-auto", "costmesh-small"]
    routed = await front.sdk(key).chat.completions.with_raw_response.create(
        model="costmesh-auto",
        messages=messages,  # type: ignore[arg-type]
    )
    assert routed.headers["x-costmesh-tier"] == "small"  # a small-only key is never routed or escalated up
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        await front.sdk(key).chat.completions.create(model="gpt-4o", messages=messages)  # type: ignore[arg-type]
    forged = await front.key()
    _, policy = await front.keys.create("gw-revoked")
    await front.keys.revoke(policy.key_id)
    with pytest.raises(openai.AuthenticationError):
        await front.sdk(forged[:-2] + "zz").chat.completions.create(model="costmesh-small", messages=messages)  # type: ignore[arg-type]
    async with httpx.AsyncClient(base_url=front.base_url) as client:
        other_tenant = await client.post(
            "/v1/chat/completions",
            json={"model": "costmesh-small", "messages": messages},
            headers={"authorization": f"Bearer {forged}", "x-costmesh-tenant": "someone-else"},
        )
    assert other_tenant.status_code == 403 and other_tenant.json()["error"]["type"] == "permission_error"


async def test_a_revoked_key_stops_at_once(front: Front) -> None:
    key, policy = await front.keys.create("gw-revoke")
    sdk = front.sdk(key)
    await sdk.chat.completions.create(model="costmesh-small", messages=[{"role": "user", "content": "hi"}])
    await front.keys.revoke(policy.key_id)
    with pytest.raises(openai.AuthenticationError, match="revoked"):
        await sdk.chat.completions.create(model="costmesh-small", messages=[{"role": "user", "content": "hi"}])


async def test_over_budget_is_429_with_retry_after(front: Front) -> None:
    # One request holds ~$0.00035 (the small tier twice: a 64-token answer and a summary of up to 512) and
    # spends ~$0.000004: $0.0004 admits a dozen or so, then the reservation no longer fits.
    key = await front.key(budget_usd_per_day=0.0004)
    sdk = front.sdk(key)
    outcomes = []
    for i in range(40):
        try:
            await sdk.chat.completions.create(
                model="costmesh-small", messages=[{"role": "user", "content": f"question {i}"}], max_tokens=64
            )
            outcomes.append("ok")
        except openai.RateLimitError as exc:
            outcomes.append("429")
            assert "over its budget" in str(exc) and int(exc.response.headers["retry-after"]) > 0
            break
    assert outcomes[-1] == "429" and outcomes.count("ok") >= 1


async def test_bad_requests_get_openai_errors_never_a_trace(front: Front) -> None:
    key = await front.key()
    auth = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=front.base_url) as client:
        bad_json = await client.post("/v1/chat/completions", content=b"{nope", headers=auth)
        too_big = await client.post(
            "/v1/chat/completions",
            json={"model": "costmesh-small", "messages": [{"role": "user", "content": "x" * 70_000}]},
            headers=auth,
        )
        empty = await client.post(
            "/v1/chat/completions", json={"model": "costmesh-small", "messages": []}, headers=auth
        )
        two = await client.post(
            "/v1/chat/completions",
            json={"model": "costmesh-small", "n": 2, "messages": [{"role": "user", "content": "x"}]},
            headers=auth,
        )
        last_not_user = await client.post(
            "/v1/chat/completions",
            json={"model": "costmesh-small", "messages": [{"role": "assistant", "content": "x"}]},
            headers=auth,
        )
        unknown = await client.get("/v1/nothing", headers=auth)
        no_key = await client.get("/v1/models")
    for response, status in (
        (bad_json, 400),
        (too_big, 413),
        (empty, 400),
        (two, 400),
        (last_not_user, 400),
        (unknown, 404),
        (no_key, 401),
    ):
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert error["message"] and "Traceback" not in error["message"] and error["type"]
    assert two.json()["error"]["param"] == "n"


@pytest.mark.parametrize(
    "body",
    [
        [],
        "text",
        None,
        {"model": 3, "messages": "hi"},
        {"model": "costmesh-small", "messages": [None]},
        {"model": "costmesh-small", "messages": [{"role": "user", "content": {"a": 1}}]},
        {"model": "costmesh-small", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"},
        {"model": "costmesh-small", "messages": [{"role": "user", "content": "x"}], "temperature": 9},
        {"model": "costmesh-small", "messages": [{"role": "user", "content": "x"}], "max_tokens": 10**30},
        {"model": "costmesh-small", "messages": [{"role": "user", "content": "x"}], "stream": "yes"},
        {"model": "costmesh-small", "messages": [{"role": "user", "content": "x"}], "stream_options": [1]},
        {"model": "costmesh-small", "messages": [{"role": "user", "content": "x"}], "response_format": "json"},
        {"model": "costmesh-small", "messages": [{"role": "user", "content": "x"}], "stop": [1, 2]},
        {"model": "costmesh-small", "messages": [{"role": "user", "content": "\u0000" * 10}], "seed": "s"},
    ],
)
async def test_malformed_bodies_are_400s(front: Front, body: object) -> None:
    key = await front.key()
    async with httpx.AsyncClient(base_url=front.base_url) as client:
        response = await client.post(
            "/v1/chat/completions", content=json.dumps(body), headers={"authorization": f"Bearer {key}"}
        )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_a_body_nested_past_the_parsers_recursion_limit_is_a_400(front: Front) -> None:
    key = await front.key()
    async with httpx.AsyncClient(base_url=front.base_url) as client:
        response = await client.post(
            "/v1/chat/completions", content=b"[" * 60_000, headers={"authorization": f"Bearer {key}"}
        )
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]["message"]


async def test_files_and_batches_through_the_sdk(front: Front) -> None:
    key = await front.key(tenant="gw-batch", allow_batch=True)
    sdk = front.sdk(key)
    lines = [
        {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "costmesh-small", "messages": [{"role": "user", "content": "first\u2028line"}]}},
        {"custom_id": "b", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "costmesh-small", "messages": []}},
    ]  # fmt: skip
    # ensure_ascii=False writes U+2028 raw, as JavaScript's JSON.stringify does: one line all the same.
    content = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines).encode()
    uploaded = await sdk.files.create(file=("in.jsonl", content), purpose="batch")
    assert uploaded.bytes == len(content)
    assert (await sdk.files.content(uploaded.id)).read() == content
    batch = await sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    deadline = time.monotonic() + 60
    while batch.status != "completed" and time.monotonic() < deadline:
        await asyncio.sleep(0.3)
        batch = await sdk.batches.retrieve(batch.id)
    assert batch.status == "completed" and batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed, batch.request_counts.failed) == (2, 1, 1)
    assert batch.output_file_id and batch.input_file_id == uploaded.id
    out = [json.loads(line) for line in (await sdk.files.content(batch.output_file_id)).text.splitlines()]
    by_id = {line["custom_id"]: line for line in out}
    assert by_id["a"]["response"]["body"]["choices"][0]["message"]["content"] == '{"answer": 4}'
    assert by_id["b"]["error"]["code"] == "INVALID_ARGUMENT"
    # Another tenant's key sees neither the file nor the batch; a key without batch rights cannot start one.
    stranger = front.sdk(await front.key(tenant="gw-other", allow_batch=True))
    with pytest.raises(openai.NotFoundError):
        await stranger.files.content(uploaded.id)
    with pytest.raises(openai.NotFoundError):
        await stranger.batches.retrieve(batch.id)
    no_batch = front.sdk(await front.key(tenant="gw-batch"))
    with pytest.raises(openai.PermissionDeniedError, match="batch lane"):
        await no_batch.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )


async def test_bad_file_and_batch_requests_say_why(front: Front) -> None:
    key = await front.key(tenant="gw-files", allow_batch=True)
    auth = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=front.base_url, headers=auth) as client:
        not_multipart = await client.post("/v1/files", json={"purpose": "batch"})
        wrong_purpose = await client.post(
            "/v1/files", files={"file": ("a.jsonl", b"{}")}, data={"purpose": "fine-tune"}
        )
        no_file = await client.post(
            "/v1/batches", json={"input_file_id": "file-nope", "endpoint": "/v1/chat/completions"}
        )
        bad_endpoint = await client.post("/v1/batches", json={"input_file_id": "file-x", "endpoint": "/v1/completions"})
        unknown_batch = await client.get("/v1/batches/batch_" + "0" * 32)
        unknown_output = await client.get("/v1/files/file-out-batch_" + "0" * 32 + "/content")
        malformed_batch = await client.get("/v1/batches/queue")  # never reaches a Redis key

        async def chunks() -> AsyncIterator[bytes]:  # no content-length: the limit must hold all the same
            yield b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
            yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\n\r\n'
            for _ in range(40):
                yield b"x" * 100_000
            yield b"\r\n--b--\r\n"

        oversized = await client.post(
            "/v1/files", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"}
        )
        no_lane = await client.post(
            "/v1/files",
            files={"file": ("a.jsonl", b"{}")},
            data={"purpose": "batch"},
            headers={"authorization": f"Bearer {await front.key(tenant='gw-files')}"},
        )
        uploaded = await client.post("/v1/files", files={"file": ("e.jsonl", b"\n\n")}, data={"purpose": "batch"})
        empty_batch = await client.post(
            "/v1/batches", json={"input_file_id": uploaded.json()["id"], "endpoint": "/v1/chat/completions"}
        )
    for response, status in (
        (not_multipart, 400),
        (wrong_purpose, 400),
        (no_file, 404),
        (bad_endpoint, 400),
        (unknown_batch, 404),
        (unknown_output, 404),
        (malformed_batch, 400),
        (empty_batch, 400),
        (oversized, 413),
        (no_lane, 403),
    ):
        assert response.status_code == status, response.text
        assert response.json()["error"]["message"]


async def test_the_gateway_process_serves_as_costmesh_up_starts_it(front: Front, redis_url: str) -> None:
    """`python -m services.gateway` on its own: its channel and stores are made in uvicorn's own loop."""
    port = free_port()
    env = {
        **os.environ,
        "COSTMESH_GATEWAY_PORT": str(port),
        "COSTMESH_GATEWAY_ORCHESTRATOR_ADDR": front.mesh.address("orchestrator"),
        "COSTMESH_GATEWAY_REDIS_URL": redis_url,
    }
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "services.gateway", env=env, cwd=ROOT)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if (await client.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
            key = await front.key()
            answer = await client.post(
                "/v1/chat/completions",
                json={"model": "costmesh-small", "messages": [{"role": "user", "content": "from a process"}]},
                headers={"authorization": f"Bearer {key}"},
            )
        assert answer.status_code == 200, answer.text
    finally:
        proc.terminate()
        # uvicorn finishes in-flight requests and the lifespan's shutdown, then re-raises the SIGTERM.
        assert await asyncio.wait_for(proc.wait(), 20) in (0, -signal.SIGTERM)
