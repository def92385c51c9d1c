"""`training.distill.train` for real: a LoRA adapter fitted in the training environment (.venv-train) on a few
banking77 labels, then served by vLLM (.venv-models) as the students server serves it, at start-up and loaded
at run time."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from launcher.components import model_dtype
from launcher.settings import StackSettings
from tests.helpers import ROOT, free_port

pytestmark = pytest.mark.integration

TRAIN_PYTHON = ROOT / ".venv-train" / "bin" / "python"
SYSTEM = "Classify the banking customer's message into its intent. Answer with the intent name only."
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _labels(n: int) -> list[dict[str, object]]:
    with (ROOT / "bench" / "data" / "banking77" / "train.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    step = len(rows) // n  # spread over the file: neighbouring lines often share an intent
    return [
        {
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": r["text"]}],
            "completion": r["category"],
        }
        for r in rows[::step][:n]
    ]


def _train(data: Path, out: Path, *extra: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    assert TRAIN_PYTHON.exists(), "the training environment is missing: run scripts/setup-train-env.sh"
    base = StackSettings().models_dir / StackSettings().small_model
    command = [str(TRAIN_PYTHON), "-m", "training.distill.train", "--data", str(data), "--base", str(base)]
    return subprocess.run(
        [*command, "--out", str(out), *extra],
        cwd=ROOT,
        env={**os.environ, **OFFLINE},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One short real run (32 examples, one epoch of 4 steps), shared by the tests below."""
    folder = tmp_path_factory.mktemp("distill")
    data = folder / "labels.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in _labels(32)))
    done = _train(data, folder / "run", "--epochs", "1", "--batch-size", "8", "--seed", "1")
    assert done.returncode == 0, done.stderr[-4000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 4 and summary["n_examples"] == 32
    return folder / "run"


def test_training_writes_an_adapter_a_curve_and_a_summary_and_the_loss_falls(run_dir: Path) -> None:
    record = json.loads((run_dir / "train.json").read_text())
    assert len(record["losses"]) == record["steps"] == 4
    assert record["rank"] <= 16 and record["eval_examples"] == 32
    # the same examples, scored before and after: the fit is visible without the noise of single steps
    assert record["eval_loss_after"] < 0.8 * record["eval_loss_before"], record

    adapter = run_dir / "adapter"
    assert (adapter / "adapter_model.safetensors").stat().st_size > 0
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["r"] == record["rank"]
    assert set(config["target_modules"]) == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }

    svg = (run_dir / "loss.svg").read_text()
    import xml.etree.ElementTree as ET

    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert len(root.findall("{http://www.w3.org/2000/svg}polyline")) == 2  # per step and smoothed


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "data file not found"),
        ("\n", "no examples"),
        ('{"messages": [{"role": "user", "content": "hi"}]}\n', "line 1: no completion"),
        ('{"completion": "card_arrival"}\n', "line 1: no messages"),
    ],
)
def test_bad_data_exits_2_with_a_message_and_no_traceback(tmp_path: Path, content: str | None, message: str) -> None:
    data = tmp_path / "labels.jsonl"
    if content is not None:
        data.write_text(content)
    done = _train(data, tmp_path / "run", timeout_s=120)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def students_server(run_dir: Path) -> Iterator[str]:
    """vLLM on a free port with the launcher's flags for the students server, the adapter loaded as `student`."""
    s = StackSettings()
    port = free_port()
    command = [
        str(s.models_python), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(s.models_dir / s.small_model), "--served-model-name", s.small_model,
        "--host", "127.0.0.1", "--port", str(port),
        "--dtype", model_dtype(s), "--enforce-eager", "--max-model-len", "2048",
        "--enable-lora", "--max-lora-rank", "16", "--max-loras", "2",
        "--lora-modules", f"student={run_dir / 'adapter'}",
    ]  # fmt: skip
    env = {
        **os.environ,
        **OFFLINE,
        "VLLM_CPU_KVCACHE_SPACE": str(s.kv_cache_gib),
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
    }
    log = (run_dir / "vllm.log").open("w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while not _healthy(url):
            assert server.poll() is None, f"vLLM exited: {(run_dir / 'vllm.log').read_text()[-4000:]}"
            assert time.monotonic() < deadline, (
                f"vLLM not healthy in 300 s: {(run_dir / 'vllm.log').read_text()[-4000:]}"
            )
            time.sleep(2)
        yield url
    finally:
        _stop(server)
        log.close()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)


def _ask(url: str, model: str) -> str:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "My card still hasn't arrived."}]
    reply = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": model, "messages": messages, "max_tokens": 8, "temperature": 0},
        timeout=120,
    )
    assert reply.status_code == 200, reply.text
    text: str = reply.json()["choices"][0]["message"]["content"]
    assert text.strip(), reply.text
    return text


def test_vllm_serves_the_adapter_from_start_up_and_loads_one_at_run_time(students_server: str, run_dir: Path) -> None:
    models = httpx.get(f"{students_server}/v1/models", timeout=10).json()
    assert "student" in {m["id"] for m in models["data"]}
    _ask(students_server, "student")

    second = run_dir / "adapter-copy"  # another folder, as a second student's adapter would be
    shutil.copytree(run_dir / "adapter", second)
    loaded = httpx.post(
        f"{students_server}/v1/load_lora_adapter", json={"lora_name": "student2", "lora_path": str(second)}, timeout=60
    )
    assert loaded.status_code == 200, loaded.text
    assert "student2" in {m["id"] for m in httpx.get(f"{students_server}/v1/models", timeout=10).json()["data"]}
    _ask(students_server, "student2")
