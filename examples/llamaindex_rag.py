"""Retrieval-augmented answers with LlamaIndex on costmesh: the embeddings and the answer go through the
gateway (OpenAILike), and the retrieved nodes through the compressor before the answer is written.

    costmesh up
    KEY=$(costmesh keys create --tenant demo | python -c 'import json,sys; print(json.load(sys.stdin)["key"])')
    python examples/llamaindex_rag.py --api-key "$KEY" "How much is the toll on the 25 de Abril bridge?"

FOLDER (default: examples/docs) holds the documents, read with SimpleDirectoryReader. Nothing is
downloaded: the embedding model is the stack's (POST /v1/embeddings), and LlamaIndex's tokenizer and NLTK
data ship inside llama-index-core.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from llama_index.core import SimpleDirectoryReader, VectorStoreIndex
from llama_index.core.node_parser import SentenceSplitter

from costmesh.integrations.llamaindex import CompressorPostprocessor, GatewayEmbedding, gateway_llm
from launcher.settings import StackSettings
from services.common.tokens import count_text

DOCS = Path(__file__).resolve().parent / "docs"


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("question")
    parser.add_argument("--api-key", required=True, help="a costmesh key: costmesh keys create --tenant T")
    parser.add_argument("--tenant", default="demo", help="the key's tenant (the compressor's cache is per tenant)")
    parser.add_argument("--folder", type=Path, default=DOCS)
    parser.add_argument("--top-k", type=int, default=4)
    parser.add_argument("--ratio", type=float, default=0.0, help="compression target (tokens before/after); 0: 2.0")
    args = parser.parse_args()

    stack = StackSettings()
    embed = GatewayEmbedding(api_key=args.api_key, port=stack.gateway_port)
    documents = SimpleDirectoryReader(str(args.folder)).load_data()
    index = VectorStoreIndex.from_documents(
        documents, embed_model=embed, transformations=[SentenceSplitter(chunk_size=128, chunk_overlap=32)]
    )
    compressor = CompressorPostprocessor(
        tenant=args.tenant,
        address=f"127.0.0.1:{stack.compressor_port}",
        token=stack.mesh_token(),  # the compressor is a stage service: it takes the stack's mesh token
        target_ratio=args.ratio,
    )
    engine = index.as_query_engine(
        llm=gateway_llm(args.api_key, model="costmesh-auto", port=stack.gateway_port, max_tokens=128),
        embed_model=embed,
        similarity_top_k=args.top_k,
        node_postprocessors=[compressor],
    )
    retrieved = index.as_retriever(similarity_top_k=args.top_k, embed_model=embed).retrieve(args.question)
    response = engine.query(args.question)
    say(str(response).strip())
    before = sum(count_text(n.node.get_content()) for n in retrieved)
    after = sum(count_text(n.node.get_content()) for n in response.source_nodes)
    say(f"\ncontext: {before} tokens retrieved, {after} after compression")
    for n in response.source_nodes:
        say(f"  {n.score or 0.0:.3f}  {n.node.metadata.get('file_name', '?')}  {n.node.node_id}")


if __name__ == "__main__":
    main()
