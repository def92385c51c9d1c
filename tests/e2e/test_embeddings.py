"""Embeddings through the running stack: the gateway's /v1/embeddings with the openai SDK, and a document set
re-embedded on the batch lane by `costmesh batch refresh-index` and upserted into Weaviate."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import numpy as np
import openai
import pytest

from services.cli.refresh_index import connect, object_id
from tests.e2e.conftest import RunningStack
from tests.helpers import api_key, costmesh

pytestmark = pytest.mark.e2e
DOCS = [
    "Your new card arrives within five working days of ordering it.",
    "To reset your PIN, open the app and choose Card settings, then Change PIN.",
    "Transfers to another country can take up to three working days.",
    "We charge no fee for the first three cash withdrawals each month.",
    "A payment you do not recognise can be disputed from the transaction's page.",
    "Top-ups by bank transfer show up once the transfer clears.",
]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def sdk(stack: RunningStack, key: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"http://127.0.0.1:{stack.settings.gateway_port}/v1", api_key=key, max_retries=0, timeout=120
    )


def test_the_gateway_answers_the_openai_sdk_in_both_encodings(running_stack: RunningStack) -> None:
    client = sdk(running_stack, api_key(f"emb{uuid.uuid4().hex[:8]}"))
    as_base64 = client.embeddings.create(model="costmesh-embedding", input=DOCS[:2])  # the SDK's default
    as_float = client.embeddings.create(model="costmesh-embedding", input=DOCS[:2], encoding_format="float")
    assert [len(d.embedding) for d in as_base64.data] == [384, 384]
    for a, b in zip(as_base64.data, as_float.data, strict=True):
        assert cosine(np.array(a.embedding), np.array(b.embedding)) > 0.99999
    assert as_float.usage.prompt_tokens > 20
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="text-embedding-ada-002", input="x")
    with pytest.raises(openai.BadRequestError, match="token arrays"):
        client.embeddings.create(model="costmesh-embedding", input=[[1, 2, 3]])


def test_refresh_index_embeds_on_the_batch_lane_and_upserts_into_weaviate(
    running_stack: RunningStack, tmp_path: Path
) -> None:
    tenant = f"emb{uuid.uuid4().hex[:8]}"
    key = api_key(tenant, "--allow-batch")
    docs = tmp_path / "docs.jsonl"
    rows = [{"id": f"d{i}", "text": text, "source": "faq"} for i, text in enumerate(DOCS)]
    rows.append({"id": "empty", "text": "   "})  # a bad document: its own error, the rest still land
    docs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    class_name = f"E2eDocs{uuid.uuid4().hex[:8]}"
    args = ("batch", "refresh-index", "--from", str(docs), "--weaviate-class", class_name, "--key", key)
    done = costmesh(*args, timeout_s=600)
    assert done.returncode == 1, done.stderr  # one document failed
    summary = json.loads(done.stdout)
    assert summary["upserted"] == len(DOCS) and summary["failed"] == 1 and "empty" in done.stderr
    assert 0 < summary["cost_usd"] < summary["baseline_cost_usd"]  # batch prices

    realtime = sdk(running_stack, key).embeddings.create(
        model="costmesh-embedding", input=DOCS, encoding_format="float"
    )
    s = running_stack.settings
    store = connect(f"http://127.0.0.1:{s.weaviate_port}", s.weaviate_grpc_port, s.weaviate_api_key())
    try:
        collection = store.collections.use(class_name)
        for i, live in enumerate(realtime.data):
            stored = collection.query.fetch_object_by_id(object_id(class_name, f"d{i}"), include_vector=True)
            assert stored is not None and stored.properties["text"] == DOCS[i]
            assert json.loads(str(stored.properties["metadata"])) == {"source": "faq"}
            assert cosine(np.array(stored.vector["default"]), np.array(live.embedding)) > 0.999
        again = costmesh(*args, timeout_s=600)  # a second refresh updates in place
        assert again.returncode == 1, again.stderr
        assert collection.aggregate.over_all(total_count=True).total_count == len(DOCS)
    finally:
        if store.collections.exists(class_name):
            store.collections.delete(class_name)
        store.close()


def test_an_embeddings_batch_through_the_openai_batch_api(running_stack: RunningStack) -> None:
    client = sdk(running_stack, api_key(f"emb{uuid.uuid4().hex[:8]}", "--allow-batch"))
    line = {"method": "POST", "url": "/v1/embeddings"}
    lines = [
        {**line, "custom_id": "two", "body": {"model": "text-embedding-3-small", "input": DOCS[:2]}},
        {**line, "custom_id": "blank", "body": {"model": "text-embedding-3-small", "input": [""]}},
        {"custom_id": "chat", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m"}},
    ]
    uploaded = client.files.create(file=("in.jsonl", "\n".join(map(json.dumps, lines)).encode()), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/embeddings", completion_window="24h")
    deadline = time.monotonic() + 300
    while batch.status not in ("completed", "cancelled") and time.monotonic() < deadline:
        time.sleep(1)
        batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed" and batch.output_file_id and batch.endpoint == "/v1/embeddings"
    out = {
        row["custom_id"]: row for row in map(json.loads, client.files.content(batch.output_file_id).text.splitlines())
    }
    body = out["two"]["response"]["body"]
    assert out["two"]["error"] is None and body["object"] == "list" and body["usage"]["prompt_tokens"] > 10
    realtime = client.embeddings.create(model="costmesh-embedding", input=DOCS[:2], encoding_format="float")
    for got, live in zip(body["data"], realtime.data, strict=True):
        assert cosine(np.array(got["embedding"]), np.array(live.embedding)) > 0.999
    assert "empty" in out["blank"]["error"]["message"]
    assert "differs from the batch's endpoint" in out["chat"]["error"]["message"]
