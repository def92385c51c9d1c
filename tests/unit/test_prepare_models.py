"""scripts/prepare_models.py's marker: what the GGUF says it is, and the 0.5B's move to its own name.

The GGUF reader itself (gguf, in .venv-models only) is not importable here; these tests feed the
parsing function fake fields shaped like gguf.GGUFReader's.
"""

from __future__ import annotations

import json
from pathlib import Path

from scripts import prepare_models as pm

FILE_TYPES = {3: "MOSTLY_Q4_1", 15: "MOSTLY_Q4_K_M", 0: "ALL_F32"}


class Field:
    def __init__(self, value: object) -> None:
        self.value = value

    def contents(self) -> object:
        return self.value


def test_gguf_facts_are_the_files_own_name_and_quant() -> None:
    fields = {"general.name": Field("Qwen2.5 Coder 0.5B Instruct AWQ"), "general.file_type": Field(15)}
    assert pm.gguf_facts(fields, FILE_TYPES.__getitem__) == {
        "gguf_name": "Qwen2.5 Coder 0.5B Instruct AWQ",
        "quant": "Q4_K_M",
    }
    assert pm.gguf_facts({"general.file_type": Field(0)}, FILE_TYPES.__getitem__)["quant"] == "F32"


def test_gguf_facts_say_unknown_for_what_the_file_lacks() -> None:
    assert pm.gguf_facts({}, FILE_TYPES.__getitem__) == {"gguf_name": "unknown", "quant": "unknown"}


def test_the_marker_records_source_licence_and_gguf_facts() -> None:
    source = pm.SOURCES["large-1.5b"]
    content = pm.marker_content(source, {"gguf_name": "Qwen2.5 Coder 1.5B Instruct GGUF", "quant": "Q4_K_M"})
    assert content["sha256"] == source.sha256
    assert content["quant"] == "Q4_K_M"
    assert pm.is_current(content, source)


def test_a_marker_written_before_gguf_facts_is_not_current() -> None:
    source = pm.SOURCES["large-1.5b"]
    old = {"packages": list(source.packages), "sha256": source.sha256, "licence": source.licence}
    assert not pm.is_current(old, source)
    assert not pm.is_current(None, source)


def test_every_model_folder_is_named_after_what_its_file_says() -> None:
    assert pm.SOURCES["large-0.5b"].name == "qwen2.5-coder-0.5b-instruct-awq"
    assert pm.SOURCES["large-1.5b"].name == "qwen2.5-coder-1.5b-instruct"  # the path others convert into
    assert "Qwen2.5-Coder-0.5B-Instruct-AWQ" in pm.SOURCES["large-0.5b"].licence


def _old_folder(models_dir: Path, sha256: str) -> Path:
    folder = models_dir / "qwen2.5-0.5b-instruct"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / pm.MARKER).write_text(json.dumps({"sha256": sha256, "licence": "Apache-2.0 (Qwen2.5-0.5B-Instruct)"}))
    return folder


def test_the_old_05b_folder_is_renamed_when_its_sha256_matches(tmp_path: Path) -> None:
    source = pm.SOURCES["large-0.5b"]
    _old_folder(tmp_path, source.sha256)
    assert pm.adopt_former_folder(source, tmp_path)
    assert (tmp_path / source.name / "model.safetensors").read_bytes() == b"weights"
    assert not (tmp_path / "qwen2.5-0.5b-instruct").exists()


def test_an_old_folder_from_another_file_or_a_taken_name_is_left_alone(tmp_path: Path) -> None:
    source = pm.SOURCES["large-0.5b"]
    old = _old_folder(tmp_path, "0" * 64)
    assert not pm.adopt_former_folder(source, tmp_path)
    (old / pm.MARKER).write_text(json.dumps({"sha256": source.sha256}))
    (tmp_path / source.name).mkdir()
    assert not pm.adopt_former_folder(source, tmp_path)
    assert old.exists()
