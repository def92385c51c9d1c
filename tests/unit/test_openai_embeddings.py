"""The /v1/embeddings wire format and the embedding call's price."""

from __future__ import annotations

import base64
import json

import httpx
import numpy as np
import pytest
from openai import AsyncOpenAI
from prometheus_client import CollectorRegistry

from costmesh.v1 import batch_pb2, common_pb2, orchestrator_pb2
from services.common.errors import InvalidInput, MissingConfig
from services.common.openai_batch import batch_output_line
from services.common.openai_embeddings import (
    EMBEDDING_MODEL,
    MAX_INPUTS,
    check_inputs,
    embeddings_body,
    embeddings_request,
)
from services.common.openai_wire import WireError
from services.inference.core import InferenceMetrics
from services.inference.embeddings import EmbeddingCore, OpenAIEmbeddings, embedding_cost
from services.inference.pricing import DEFAULT_PRICES


def test_a_string_or_a_list_of_strings_and_the_encoding() -> None:
    one, encoding = embeddings_request({"model": EMBEDDING_MODEL, "input": "hello"}, tenant="acme")
    assert list(one.input) == ["hello"] and one.tenant == "acme" and encoding == "float"
    many, encoding = embeddings_request({"model": EMBEDDING_MODEL, "input": ["a", "b"], "encoding_format": "base64"})
    assert list(many.input) == ["a", "b"] and encoding == "base64"


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        ({"model": "text-embedding-ada-002", "input": "x"}, "model", "does not exist"),
        ({"model": EMBEDDING_MODEL, "input": [1, 2, 3]}, "input", "token arrays are not supported"),
        ({"model": EMBEDDING_MODEL, "input": []}, "input", "non-empty list"),
        ({"model": EMBEDDING_MODEL, "input": "x", "dimensions": 64}, "dimensions", "one size"),
        ({"model": EMBEDDING_MODEL, "input": "x", "encoding_format": "int8"}, "encoding_format", "base64"),
        ({"model": EMBEDDING_MODEL, "input": "x", "stream": True}, "stream", "unsupported"),
        ({"model": EMBEDDING_MODEL, "input": "\ud800"}, "input", "lone surrogate"),
        ({"model": EMBEDDING_MODEL, "input": ["ok", " "]}, "input", r"input\[1\] is empty"),
    ],
)
def test_bad_bodies_name_the_field(body: dict[str, object], param: str, fragment: str) -> None:
    with pytest.raises(WireError, match=fragment) as caught:
        embeddings_request(body)
    assert caught.value.param == param


def test_base64_is_little_endian_float32_as_the_openai_sdk_decodes_it() -> None:
    vector = [0.25, -1.5, 3.0]
    response = orchestrator_pb2.EmbeddingsResponse(
        data=[common_pb2.Embedding(values=vector)], model="all-minilm-l6-v2", prompt_tokens=3
    )
    body = embeddings_body(response, "base64")
    decoded = np.frombuffer(base64.b64decode(body["data"][0]["embedding"]), dtype="<f4")
    assert decoded.tolist() == vector
    assert embeddings_body(response)["data"][0]["embedding"] == vector
    assert body["usage"] == {"prompt_tokens": 3, "total_tokens": 3} and body["object"] == "list"


def test_inputs_are_checked_before_any_model_runs() -> None:
    with pytest.raises(InvalidInput, match="at least one"):
        check_inputs([])
    with pytest.raises(InvalidInput, match=r"input\[1\] is empty"):
        check_inputs(["ok", "  "])
    with pytest.raises(InvalidInput, match="at most 2048"):
        check_inputs(["x"] * (MAX_INPUTS + 1))


def test_the_batch_lane_pays_the_batch_share_and_books_it_as_the_saving() -> None:
    realtime = embedding_cost(1_000_000, "text-embedding-3-small", DEFAULT_PRICES, batch=False)
    batch = embedding_cost(1_000_000, "text-embedding-3-small", DEFAULT_PRICES, batch=True)
    assert realtime.cost_usd == pytest.approx(0.02) and realtime.by_intervention == {}
    assert batch.cost_usd == pytest.approx(0.01) and batch.baseline_cost_usd == pytest.approx(0.02)
    assert batch.by_intervention == {"batch": pytest.approx(0.01)}


def test_an_embeddings_item_is_written_as_openais_batch_output_line() -> None:
    response = orchestrator_pb2.EmbeddingsResponse(
        request_id="doc-7", data=[common_pb2.Embedding(values=[0.5, 0.25])], model="all-minilm-l6-v2", prompt_tokens=4
    )
    line = batch_output_line(batch_pb2.BatchResult(custom_id="doc-7", index=3, embeddings=response))
    assert line["custom_id"] == "doc-7" and line["error"] is None and line["response"]["status_code"] == 200
    assert line["response"]["body"]["data"] == [{"object": "embedding", "index": 0, "embedding": [0.5, 0.25]}]
    assert line["response"]["body"]["usage"]["prompt_tokens"] == 4


def openai_embeddings(status: int = 200) -> OpenAIEmbeddings:
    """OpenAIEmbeddings on the real SDK, its HTTP answered in OpenAI's documented shape."""

    def answer(request: httpx.Request) -> httpx.Response:
        if status != 200:
            return httpx.Response(
                status, json={"error": {"message": "Incorrect API key", "type": "invalid_request_error"}}
            )
        texts = json.loads(request.content)["input"]
        data = [{"object": "embedding", "index": i, "embedding": [0.1, 0.2]} for i in range(len(texts))]
        usage = {"prompt_tokens": 10 * len(texts), "total_tokens": 10 * len(texts)}
        return httpx.Response(
            200, json={"object": "list", "data": data, "model": "text-embedding-3-small", "usage": usage}
        )

    client = AsyncOpenAI(
        api_key="sk-test",
        base_url="http://openai.test/v1",
        max_retries=0,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(answer)),
    )
    return OpenAIEmbeddings(client, "text-embedding-3-small")


async def test_openai_embeddings_on_the_batch_lane_are_full_price_calls() -> None:
    core = EmbeddingCore(
        openai_embeddings(), "text-embedding-3-small", DEFAULT_PRICES, InferenceMetrics(CollectorRegistry())
    )
    assert not core.shares_cores and not core.batch_priced  # no waiting for real time, no Batch API discount
    _, realtime = await core.embed(["a", "b"], batch=False, timeout_s=5)
    _, batch = await core.embed(["a", "b"], batch=True, timeout_s=5)
    assert batch.cost_usd == pytest.approx(realtime.cost_usd) == pytest.approx(20 * 0.02 / 1e6)
    assert batch.by_intervention == {}


async def test_a_wrong_openai_key_is_failed_precondition_not_retried() -> None:
    with pytest.raises(MissingConfig, match="AuthenticationError"):
        await openai_embeddings(status=401).embed(["a"], timeout_s=5)
