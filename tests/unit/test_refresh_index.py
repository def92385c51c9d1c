"""refresh-index's input checks and the lines it sends: a bad documents file is refused before anything runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.cli.refresh_index import batch_line, object_id, read_documents
from services.common.openai_embeddings import embeddings_request


def test_documents_keep_their_other_fields_as_metadata(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text('{"id": "a", "text": "Cards arrive in 5 days.", "source": "faq"}\n\n{"id": "b", "text": "x"}\n')
    docs = read_documents(path)
    assert [d.id for d in docs] == ["a", "b"] and docs[0].metadata == {"source": "faq"}
    line = json.loads(batch_line(docs[0]))
    assert line["url"] == "/v1/embeddings" and line["custom_id"] == "a"
    request, _ = embeddings_request(line["body"])  # what the batch lane will parse it as
    assert list(request.input) == ["Cards arrive in 5 days."]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json\n", "not JSON"),
        ('{"id": 1, "text": "x"}\n', 'string "id"'),
        ('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', "appears twice"),
        ("\n", "no documents"),
    ],
)
def test_bad_files_name_the_line(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text(content)
    with pytest.raises(ValueError, match=fragment):
        read_documents(path)


def test_object_ids_are_stable_per_collection_and_document() -> None:
    assert object_id("Docs", "a") == object_id("Docs", "a")
    assert object_id("Docs", "a") != object_id("Other", "a") != object_id("Docs", "b")
