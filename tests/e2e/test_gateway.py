"""The OpenAI-compatible gateway as `costmesh up` runs it, with the real models behind it, called the way
an existing application calls OpenAI: the openai SDK with a base URL and a key (and httpx for raw SSE)."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import jsonschema
import openai
import pytest

from tests.e2e.conftest import RunningStack
from tests.helpers import api_key, costmesh

pytestmark = pytest.mark.e2e


def base_url(stack: RunningStack) -> str:
    return f"http://127.0.0.1:{stack.settings.gateway_port}"


def sdk(stack: RunningStack, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url(stack)}/v1", api_key=key, max_retries=0, timeout=300)


def tenant() -> str:
    return f"gw{uuid.uuid4().hex[:8]}"


def test_the_sdk_gets_an_answer_and_costmesh_decisions(running_stack: RunningStack) -> None:
    client = sdk(running_stack, api_key(tenant()))
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    raw = client.chat.completions.with_raw_response.create(model="costmesh-auto", messages=messages, max_tokens=32)  # type: ignore[arg-type]
    completion = raw.parse()
    assert "Paris" in (completion.choices[0].message.content or "")
    assert raw.headers["x-costmesh-cache"] == "miss" and raw.headers["x-costmesh-tier"] in ("small", "large")
    assert float(raw.headers["x-costmesh-baseline-usd"]) >= float(raw.headers["x-costmesh-cost-usd"]) > 0
    assert len(raw.headers["x-costmesh-trace-id"]) == 32
    hit = client.chat.completions.with_raw_response.create(model="costmesh-auto", messages=messages, max_tokens=32)  # type: ignore[arg-type]
    assert hit.headers["x-costmesh-cache"] == "exact"
    assert hit.parse().choices[0].message.content == completion.choices[0].message.content
    assert [m.id for m in client.models.list()] == ["costmesh-auto", "costmesh-small", "costmesh-large"]


def test_a_miss_streams_as_it_is_generated_and_a_hit_streams_too(running_stack: RunningStack) -> None:
    key = api_key(tenant())
    body = {
        "model": "costmesh-small",  # a tier set by the request streams the model's own deltas
        "messages": [{"role": "user", "content": "Write two sentences about the sea."}],
        "max_tokens": 48,
        "stream": True,
        "stream_options": {"include_usage": True},
    }

    def stream() -> list[tuple[float, dict[str, object]]]:
        events = []
        started = time.perf_counter()
        with httpx.stream(
            "POST",
            f"{base_url(running_stack)}/v1/chat/completions",
            json=body,
            headers={"authorization": f"Bearer {key}"},
            timeout=300,
        ) as response:
            assert response.status_code == 200, response.read()
            for line in response.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    events.append((time.perf_counter() - started, json.loads(line.removeprefix("data: "))))
        return events

    miss = stream()
    content = [t for t, e in miss if e["choices"] and e["choices"][0]["delta"].get("content")]  # type: ignore[index]
    assert len(content) > 3
    assert content[0] < miss[-1][0] - 0.2  # the first words arrived well before the answer ended
    assert miss[-2][1]["costmesh"]["cache"] == "miss"  # type: ignore[index]
    assert miss[-1][1]["usage"]["completion_tokens"] > 0  # type: ignore[index]
    hit = stream()
    assert hit[-2][1]["costmesh"]["cache"] == "exact"  # type: ignore[index]
    text = "".join(e["choices"][0]["delta"].get("content") or "" for _, e in hit if e["choices"])  # type: ignore[index]
    assert text == "".join(e["choices"][0]["delta"].get("content") or "" for _, e in miss if e["choices"])  # type: ignore[index]


def test_a_json_schema_answer_is_valid_or_escalated(running_stack: RunningStack) -> None:
    client = sdk(running_stack, api_key(tenant()))
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    raw = client.chat.completions.with_raw_response.create(
        model="costmesh-auto",
        messages=[{"role": "user", "content": 'Reply with JSON like {"city": "..."}: the capital of Italy.'}],
        response_format={"type": "json_schema", "json_schema": {"name": "capital", "schema": schema}},
        max_tokens=32,
    )
    answer = raw.parse().choices[0].message.content or ""
    try:
        jsonschema.validate(json.loads(answer), schema)
    except (ValueError, jsonschema.ValidationError):
        # The cheap tier's answer failed the schema: the large tier was asked (and its answer is served).
        assert raw.headers["x-costmesh-escalated"] == "true" or raw.headers["x-costmesh-tier"] == "large"


def test_files_and_batches_onto_the_batch_lane(running_stack: RunningStack) -> None:
    client = sdk(running_stack, api_key(tenant(), "--allow-batch"))
    lines = [
        {
            "custom_id": f"q{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "costmesh-small", "messages": [{"role": "user", "content": q}], "max_tokens": 12},
        }
        for i, q in enumerate(["What is 2 + 2?", "Name a colour."])
    ]
    uploaded = client.files.create(file=("in.jsonl", "\n".join(map(json.dumps, lines)).encode()), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    deadline = time.monotonic() + 600
    while batch.status not in ("completed", "cancelled") and time.monotonic() < deadline:
        time.sleep(1)
        batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed" and batch.output_file_id
    out = [json.loads(line) for line in client.files.content(batch.output_file_id).text.splitlines()]
    assert sorted(line["custom_id"] for line in out) == ["q0", "q1"]
    for line in out:
        assert line["error"] is None and line["response"]["body"]["choices"][0]["message"]["content"].strip()


def test_wrong_revoked_forbidden_and_over_budget_keys(running_stack: RunningStack) -> None:
    messages = [{"role": "user", "content": "Say hi."}]
    with pytest.raises(openai.AuthenticationError):
        sdk(running_stack, "cmk-not-a-key").chat.completions.create(model="costmesh-small", messages=messages)  # type: ignore[arg-type]
    small_only = api_key(tenant(), "--tiers", "small")
    with pytest.raises(openai.PermissionDeniedError):
        sdk(running_stack, small_only).chat.completions.create(model="costmesh-large", messages=messages)  # type: ignore[arg-type]
    created = costmesh("keys", "create", "--tenant", tenant())
    made = json.loads(created.stdout)
    assert costmesh("keys", "revoke", made["key_id"]).returncode == 0
    listed = [json.loads(line) for line in costmesh("keys", "list").stdout.splitlines()]
    assert any(row["key_id"] == made["key_id"] and row["revoked"] for row in listed)
    assert all("key" not in row for row in listed)  # the key itself is never shown again
    with pytest.raises(openai.AuthenticationError, match="revoked"):
        sdk(running_stack, made["key"]).chat.completions.create(model="costmesh-small", messages=messages)  # type: ignore[arg-type]
    broke = sdk(running_stack, api_key(tenant(), "--budget-usd-per-day", "0.000001"))
    with pytest.raises(openai.RateLimitError, match="over its budget") as refused:
        broke.chat.completions.create(model="costmesh-small", messages=messages)  # type: ignore[arg-type]
    assert int(refused.value.response.headers["retry-after"]) > 0
