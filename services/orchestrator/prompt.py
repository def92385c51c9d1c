"""Prompt assembly, static content first so provider prefix caches (OpenAI, vLLM) hit.

Order: system prompt(s), then fixed documents / few-shot examples / retrieved context, then the
history (with any summary), then the user's message. Serialization is deterministic, so the same
static blocks give a byte-identical prefix on every request.
"""

from __future__ import annotations

from collections.abc import Sequence

from costmesh.v1 import common_pb2

_DOC_ORDER = {
    common_pb2.DOCUMENT_KIND_FIXED: 0,
    common_pb2.DOCUMENT_KIND_EXAMPLE: 1,
    common_pb2.DOCUMENT_KIND_UNSPECIFIED: 2,
    common_pb2.DOCUMENT_KIND_CONTEXT: 2,
}
_DOC_HEADINGS = {0: "Reference", 1: "Example", 2: "Context"}
_CONTEXT = 2  # where a kind this module does not know goes (requests are validated: none should arrive)


def _order(doc: common_pb2.Document) -> int:
    return _DOC_ORDER.get(doc.kind, _CONTEXT)


def documents_block(documents: Sequence[common_pb2.Document]) -> str:
    # A stable sort keeps the caller's order within a kind.
    ordered = sorted(documents, key=_order)
    parts = []
    for doc in ordered:
        if not doc.text.strip():
            continue  # dropped by compression (a few-shot example it left out)
        heading = _DOC_HEADINGS[_order(doc)]
        label = f"{heading} {doc.id}" if doc.id else heading
        parts.append(f"[{label}]\n{doc.text.strip()}")
    return "\n\n".join(parts)


def assemble(
    messages: Sequence[common_pb2.Message], documents: Sequence[common_pb2.Document]
) -> list[common_pb2.Message]:
    head = 0
    while head < len(messages) and messages[head].role == common_pb2.ROLE_SYSTEM:
        head += 1
    out = list(messages[:head])
    if documents:
        out.append(common_pb2.Message(role=common_pb2.ROLE_SYSTEM, content=documents_block(documents)))
    out.extend(messages[head:])
    return out
