"""`costmesh batch refresh-index --from FILE --weaviate-class NAME`: re-embed a document set on the batch lane
and upsert the vectors into a Weaviate collection (the local stand-in for a team's vector store).

FILE is JSON lines, one document each: {"id": "...", "text": "...", ...}; every other field is kept as the
object's `metadata` (JSON). The documents go through the batch lane as OpenAI /v1/embeddings lines, one
per document, so they are embedded off the real-time path, on the batch quota and at batch prices, by
the stack's embedding model. Results are upserted as they complete (uuid5 of the class and the id, so a
second run updates in place) with a progress bar. Items that fail are reported and left out; the exit
status is 1 if any did.
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import weaviate
from tqdm import tqdm
from weaviate.auth import Auth
from weaviate.classes.config import Configure, DataType, Property, VectorDistances
from weaviate.classes.data import DataObject

from costmesh.v1 import batch_pb2
from services.cli.batch import Client
from services.common.openai_batch import EMBEDDINGS_URL
from services.common.openai_embeddings import EMBEDDING_MODEL

CLASS_NAME = re.compile(r"[A-Z][_0-9A-Za-z]{0,127}")  # Weaviate's rule for collection names
UPSERT_EVERY = 100


@dataclass(frozen=True)
class Document:
    id: str
    text: str
    metadata: dict[str, Any]


@dataclass
class Refreshed:
    batch_id: str = ""
    upserted: int = 0
    failed: int = 0
    cost_usd: float = 0.0
    baseline_cost_usd: float = 0.0


def read_documents(path: Path) -> list[Document]:
    """The documents, or ValueError naming the first bad line (nothing is submitted then)."""
    docs, seen = [], set()
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            raise ValueError(f"{path}:{number}: not JSON: {e}") from None
        if not isinstance(row, dict) or not isinstance(row.get("id"), str) or not isinstance(row.get("text"), str):
            raise ValueError(f'{path}:{number}: each line needs a string "id" and a string "text"')
        if row["id"] in seen:
            raise ValueError(f"{path}:{number}: id {row['id']!r} appears twice")
        seen.add(row["id"])
        docs.append(Document(row["id"], row["text"], {k: v for k, v in row.items() if k not in ("id", "text")}))
    if not docs:
        raise ValueError(f"{path}: no documents")
    return docs


def batch_line(doc: Document) -> str:
    body = {"model": EMBEDDING_MODEL, "input": doc.text}
    return json.dumps({"custom_id": doc.id, "method": "POST", "url": EMBEDDINGS_URL, "body": body})


def object_id(class_name: str, doc_id: str) -> str:
    return str(weaviate.util.generate_uuid5(json.dumps([class_name, doc_id])))


def connect(url: str, grpc_port: int, api_key: str) -> weaviate.WeaviateClient:
    parsed = urlparse(url)
    return weaviate.connect_to_custom(
        http_host=parsed.hostname or "127.0.0.1",
        http_port=parsed.port or 8080,
        http_secure=parsed.scheme == "https",
        grpc_host=parsed.hostname or "127.0.0.1",
        grpc_port=grpc_port,
        grpc_secure=parsed.scheme == "https",
        auth_credentials=Auth.api_key(api_key) if api_key else None,
    )


def ensure_collection(client: weaviate.WeaviateClient, name: str) -> None:
    if client.collections.exists(name):
        return
    client.collections.create(
        name,
        vector_config=Configure.Vectors.self_provided(
            vector_index_config=Configure.VectorIndex.hnsw(distance_metric=VectorDistances.COSINE)
        ),
        properties=[
            Property(name="doc_id", data_type=DataType.TEXT),
            Property(name="text", data_type=DataType.TEXT),
            Property(name="metadata", data_type=DataType.TEXT, skip_vectorization=True),
        ],
    )


def upsert(client: weaviate.WeaviateClient, name: str, rows: list[tuple[Document, list[float]]]) -> None:
    objects = [
        DataObject(
            properties={"doc_id": doc.id, "text": doc.text, "metadata": json.dumps(doc.metadata)},
            vector=vector,
            uuid=uuid.UUID(object_id(name, doc.id)),
        )
        for doc, vector in rows
    ]
    result = client.collections.use(name).data.insert_many(objects)  # insert_many upserts by uuid
    if result.has_errors:
        raise RuntimeError(f"weaviate upsert failed: {next(iter(result.errors.values())).message}")


def results(client: Client, tenant: str, batch_id: str) -> Iterator[batch_pb2.BatchResult]:
    ref = batch_pb2.BatchRef(tenant=tenant, batch_id=batch_id)
    yield from client.stub.StreamBatchResults(ref, metadata=client.metadata)


def refresh(
    batches: Client,
    store: weaviate.WeaviateClient,
    path: Path,
    class_name: str,
    tenant: str,
    timeout_s: float,
    priority: batch_pb2.BatchPriority.ValueType = batch_pb2.BATCH_PRIORITY_LOW,
) -> Refreshed:
    """An index refresh runs at low priority by default: other batch work someone waits on goes first."""
    if not CLASS_NAME.fullmatch(class_name):
        raise ValueError(f"--weaviate-class {class_name!r}: a capital letter, then letters, digits or '_'")
    docs = read_documents(path)
    by_id = {d.id: d for d in docs}
    ensure_collection(store, class_name)
    items = [batch_pb2.BatchItem(openai_line=batch_line(d)) for d in docs]
    status: batch_pb2.BatchStatus = batches.stub.SubmitBatch(
        batch_pb2.SubmitBatchRequest(tenant=tenant, items=items, endpoint=EMBEDDINGS_URL, priority=priority),
        timeout=timeout_s,
        metadata=batches.metadata,
    )
    out = Refreshed(batch_id=status.batch_id)
    pending: list[tuple[Document, list[float]]] = []
    with tqdm(total=len(docs), desc=f"embedding -> {class_name}", unit="doc", file=sys.stderr) as bar:
        for result in results(batches, tenant, status.batch_id):
            if result.HasField("embeddings"):
                pending.append((by_id[result.custom_id], list(result.embeddings.data[0].values)))
            else:
                out.failed += 1
                bar.write(f"{result.custom_id}: {result.error.code}: {result.error.message}", file=sys.stderr)
            if len(pending) >= UPSERT_EVERY:
                upsert(store, class_name, pending)
                out.upserted += len(pending)
                pending = []
            bar.update(1)
    if pending:
        upsert(store, class_name, pending)
        out.upserted += len(pending)
    final: batch_pb2.BatchStatus = batches.stub.GetBatch(
        batch_pb2.BatchRef(tenant=tenant, batch_id=status.batch_id), timeout=30, metadata=batches.metadata
    )
    out.cost_usd, out.baseline_cost_usd = final.cost_usd, final.baseline_cost_usd
    return out
