"""Embeddings, priced per input token: the local MiniLM (the model the orchestrator embeds requests with, so
a document embedded here lands in the same space as the cache's queries) or OpenAI's embeddings API.

Backends are a small Protocol, picked by `COSTMESH_INFERENCE_EMBEDDING_BACKEND` ("local=<model dir>" or
"openai=<base url>"). The batch lane pays the Batch API's share of the price, like a completion.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import openai
from openai import AsyncOpenAI

from services.common.embedding import OnnxMiniLM, load_minilm
from services.common.errors import BackendUnavailable, InvalidInput, MissingConfig, RateLimited
from services.common.openai_embeddings import check_inputs
from services.inference.core import InferenceMetrics
from services.inference.domain import Cost, Usage
from services.inference.pricing import Price, price_of

LOCAL_CHUNK = 64  # texts per ONNX run: bounds the padded batch's memory


@dataclass(frozen=True)
class Embedded:
    vectors: np.ndarray  # (inputs, dimensions), float32
    prompt_tokens: int
    truncated: int  # inputs cut to the model's maximum length
    model: str


class EmbeddingBackend(Protocol):
    name: str
    # Runs on this machine's cores, beside the model servers: batch embeddings then wait for real time.
    shares_cores: bool
    # Its batch-lane calls cost the Batch API's share: the local stand-in is priced as the model it stands
    # in for, as completions are; OpenAI's embeddings here are synchronous calls at the full price.
    batch_priced: bool

    async def embed(self, texts: Sequence[str], timeout_s: float) -> Embedded: ...

    async def close(self) -> None: ...


class LocalMiniLM:
    name = "local"
    shares_cores = True
    batch_priced = True

    def __init__(self, model: OnnxMiniLM) -> None:
        self._model = model
        # One run at a time, held in the worker thread: ONNX already uses the configured threads, and a run
        # whose caller timed out keeps going until it ends, so an asyncio lock would let the next one overlap.
        self._one_at_a_time = threading.Lock()

    async def embed(self, texts: Sequence[str], timeout_s: float) -> Embedded:
        # Tokenizing is CPU work too: all of it off the event loop, which also serves Generate.
        return await asyncio.wait_for(asyncio.to_thread(self._embed, list(texts)), timeout_s)

    def _embed(self, texts: list[str]) -> Embedded:
        with self._one_at_a_time:
            parts, tokens, truncated = [], 0, 0
            for start in range(0, len(texts), LOCAL_CHUNK):
                chunk = texts[start : start + LOCAL_CHUNK]
                counts = self._model.token_counts(chunk)
                tokens += sum(n for n, _ in counts)
                truncated += sum(cut for _, cut in counts)
                parts.append(self._model.embed(chunk))
        return Embedded(np.concatenate(parts), tokens, truncated, self._model.name)

    async def close(self) -> None:
        pass


class OpenAIEmbeddings:
    name = "openai"
    shares_cores = False
    batch_priced = False

    def __init__(self, client: AsyncOpenAI, model: str) -> None:
        self._client = client
        self._model = model

    async def embed(self, texts: Sequence[str], timeout_s: float) -> Embedded:
        try:
            reply = await self._client.embeddings.create(
                model=self._model, input=list(texts), encoding_format="float", timeout=timeout_s
            )
        except openai.RateLimitError as e:
            raise RateLimited("openai embeddings: rate limited") from e
        except openai.BadRequestError as e:
            raise InvalidInput(f"openai rejected the embeddings request: {e.message}") from e
        except (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError) as e:
            # Retrying cannot help: the key or the model name is wrong (FAILED_PRECONDITION, not UNAVAILABLE).
            raise MissingConfig(f"openai embeddings refused ({e.__class__.__name__}): {e.message}") from e
        except openai.OpenAIError as e:
            raise BackendUnavailable(f"openai embeddings unavailable: {e.__class__.__name__}") from e
        rows = sorted(reply.data, key=lambda d: d.index)
        vectors = np.asarray([row.embedding for row in rows], dtype=np.float32)
        return Embedded(vectors, reply.usage.prompt_tokens, 0, reply.model)

    async def close(self) -> None:
        await self._client.close()


def make_embedding_backend(spec: str, threads: int, openai_model: str, api_key: str) -> EmbeddingBackend | None:
    """From "local=<model dir>" or "openai=[base url]"; empty: no embeddings here (Embed is refused)."""
    if not spec:
        return None
    kind, _, arg = spec.partition("=")
    if kind == "local":
        return LocalMiniLM(load_minilm(arg, threads))
    if kind == "openai":
        if not api_key:
            raise MissingConfig("the openai embedding backend needs OPENAI_API_KEY")
        return OpenAIEmbeddings(AsyncOpenAI(base_url=arg or None, api_key=api_key), openai_model)
    raise MissingConfig(f"embedding backend {kind!r} is not one of local, openai")


def embedding_cost(tokens: int, price_model: str, prices: Mapping[str, Price], batch: bool) -> Cost:
    """Input tokens at the embedding row's price; the baseline is the same call in real time (nothing else
    here changes what an embedding costs), so batch pricing is the only saving."""
    price = prices[price_model]
    usage = Usage(tokens, 0)
    cost = price_of(usage, price, batch)
    baseline = price_of(usage, price)
    saved = {"batch": baseline - cost} if baseline > cost else {}
    return Cost(cost_usd=cost, baseline_cost_usd=baseline, price_model=price_model, by_intervention=saved)


class EmbeddingCore:
    """Checks the inputs, embeds them with the backend and prices the call; counted in the tier metrics under
    tier "embedding"."""

    def __init__(
        self, backend: EmbeddingBackend, price_model: str, prices: Mapping[str, Price], metrics: InferenceMetrics
    ) -> None:
        if price_model not in prices:
            raise MissingConfig(f"no price row {price_model!r} for the embedding model")
        self._backend = backend
        self.price_model = price_model
        self.price = prices[price_model]
        self._prices = prices
        self._metrics = metrics

    @property
    def backend(self) -> str:
        return self._backend.name

    @property
    def shares_cores(self) -> bool:
        return self._backend.shares_cores

    @property
    def batch_priced(self) -> bool:
        return self._backend.batch_priced

    async def embed(self, texts: Sequence[str], batch: bool, timeout_s: float) -> tuple[Embedded, Cost]:
        check_inputs(texts)
        try:
            embedded = await self._backend.embed(texts, timeout_s)
        except TimeoutError as e:
            raise BackendUnavailable(f"{self._backend.name} embeddings did not answer in {timeout_s:.1f}s") from e
        cost = embedding_cost(embedded.prompt_tokens, self.price_model, self._prices, batch and self.batch_priced)
        self._metrics.cost.labels("embedding").inc(cost.cost_usd)
        self._metrics.baseline.labels("embedding").inc(cost.baseline_cost_usd)
        self._metrics.tokens.labels("embedding", "prompt").inc(embedded.prompt_tokens)
        return embedded, cost

    async def close(self) -> None:
        await self._backend.close()
